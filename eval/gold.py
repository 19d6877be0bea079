"""The gold set: one JSON object per line, checked against the corpus documents."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

QUESTION_TYPES = ("factoid", "yesno", "multi", "unanswerable")
# the bundled NHS gold set (over the bundled corpus, data/nhs): `rag eval`'s default
GOLD_DEFAULT = Path(__file__).resolve().parent / "nhs_gold.jsonl"


class GoldError(ValueError):
    """A problem with a gold file, worded for the user (one line)."""


@dataclass(frozen=True)
class Evidence:
    doc: str  # document id: path relative to the corpus, forward slashes
    text: str  # exact substring of that document
    start: int | None = None  # its offset in the document, when known (SQuAD)

    def spans(self, doc_text: str) -> list[tuple[int, int]]:
        """Where the evidence lies: its known offset if that matches, else every
        occurrence found with str.find."""
        from eval.metrics import locate

        if self.start is not None and doc_text[self.start:self.start + len(self.text)] \
                == self.text:
            return [(self.start, self.start + len(self.text))]
        return locate(doc_text, self.text)


@dataclass(frozen=True)
class GoldItem:
    id: str
    question: str
    answers: list[str]
    answerable: bool
    evidence: list[Evidence] = field(default_factory=list)
    type: str = ""
    group: str = ""  # e.g. the article: grouped reports and cross-validation

    @property
    def kind(self) -> str:
        """The reporting type: ``type`` if given, else inferred."""
        if self.type:
            return self.type
        if not self.answerable:
            return "unanswerable"
        from eval.metrics import is_yes_no_gold

        return "yesno" if is_yes_no_gold(self.answers) else "factoid"


def parse_item(obj: object, where: str) -> GoldItem:
    if not isinstance(obj, dict):
        raise GoldError(f"{where}: expected a JSON object")
    for key in ("id", "question"):
        if not isinstance(obj.get(key), (str, int)) or str(obj.get(key)).strip() == "":
            raise GoldError(f"{where}: missing or empty field {key!r}")
    answerable = obj.get("answerable", True)
    if not isinstance(answerable, bool):
        raise GoldError(f"{where}: 'answerable' must be true or false")
    answers = obj.get("answers", [])
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise GoldError(f"{where}: 'answers' must be a list of strings")
    if answerable and not answers:
        raise GoldError(f"{where}: an answerable question needs at least one answer")
    evidence = []
    for ev in obj.get("evidence", []) or []:
        if not isinstance(ev, dict) or not isinstance(ev.get("doc"), str) \
                or not isinstance(ev.get("text"), str) or not ev["text"]:
            raise GoldError(f"{where}: each evidence needs a 'doc' and a non-empty 'text'")
        start = ev.get("start")
        evidence.append(Evidence(ev["doc"], ev["text"], start if isinstance(start, int) else None))
    qtype = obj.get("type", "") or ""
    if not isinstance(qtype, str):
        raise GoldError(f"{where}: 'type' must be a string")
    group = obj.get("group", "") or ""
    if not isinstance(group, str):
        raise GoldError(f"{where}: 'group' must be a string")
    return GoldItem(str(obj["id"]), str(obj["question"]), answers, answerable, evidence, qtype,
                    group)


def jsonl_objects(path: Path) -> Iterator[tuple[dict, str]]:
    """Each non-blank line of a JSONL gold file, parsed, with "file:line" for errors."""
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"gold file not found: {path}")
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldError(f"{where}: not valid JSON ({exc.msg})") from None
        yield obj, where


def load_gold(path: Path) -> list[GoldItem]:
    """Read a JSONL gold file; errors name the file and line."""
    items, seen = [], set()
    for obj, where in jsonl_objects(path):
        item = parse_item(obj, where)
        if item.id in seen:
            raise GoldError(f"{where}: duplicate id {item.id!r}")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise GoldError(f"gold file {path} holds no questions")
    return items


def check_evidence(items: list[GoldItem], documents: dict[str, str]) -> None:
    """Every evidence text must be an exact substring of its document."""
    for item in items:
        for ev in item.evidence:
            if ev.doc not in documents:
                raise GoldError(f"question {item.id}: evidence document {ev.doc!r} is not in "
                                f"the corpus")
            if ev.text not in documents[ev.doc]:
                raise GoldError(f"question {item.id}: evidence text not found in {ev.doc}: "
                                f"{ev.text[:60]!r}")


# ---- conversations -----------------------------------------------------------------
@dataclass(frozen=True)
class ChatTurn:
    """One turn of a gold conversation: ``item`` holds the question as asked in the
    conversation (a follow-up may lean on earlier turns), ``standalone`` the same
    question written to stand alone."""

    conversation: str
    turn: int
    item: GoldItem
    standalone: str

    @property
    def follow_up(self) -> bool:
        """The question needs the conversation to be understood."""
        return self.item.question.strip() != self.standalone.strip()

    def standalone_item(self) -> GoldItem:
        from dataclasses import replace

        return replace(self.item, question=self.standalone)


def is_chat_gold(path: Path) -> bool:
    """Whether a JSONL gold file holds conversations (its first object has a
    ``conversation`` field)."""
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    obj = json.loads(line)
                    return isinstance(obj, dict) and "conversation" in obj
    except (OSError, json.JSONDecodeError, UnicodeDecodeError):
        return False
    return False


def load_chat_gold(path: Path) -> list[ChatTurn]:
    """Read a multi-turn gold file: one turn a line, each a gold question (``id``,
    ``question``, ``answers``, ``answerable``, ``evidence``) with ``conversation`` (its
    id), ``turn`` (1, 2, ... in order) and ``standalone`` (the question written to stand
    alone; the question itself when it does). Returned in conversation and turn order;
    errors name the file and line."""
    turns: list[ChatTurn] = []
    seen: set[str] = set()
    for obj, where in jsonl_objects(path):
        item = parse_item(obj, where)
        conv, turn = obj.get("conversation"), obj.get("turn")
        if not isinstance(conv, (str, int)) or str(conv).strip() == "":
            raise GoldError(f"{where}: missing or empty field 'conversation'")
        if not isinstance(turn, int) or isinstance(turn, bool) or turn < 1:
            raise GoldError(f"{where}: 'turn' must be a whole number from 1")
        standalone = obj.get("standalone", item.question)
        if not isinstance(standalone, str) or not standalone.strip():
            raise GoldError(f"{where}: 'standalone' must be the question written to stand "
                            f"alone")
        if item.id in seen:
            raise GoldError(f"{where}: duplicate id {item.id!r}")
        seen.add(item.id)
        turns.append(ChatTurn(str(conv), turn, item, standalone))
    if not turns:
        raise GoldError(f"gold file {path} holds no questions")
    turns.sort(key=lambda t: (t.conversation, t.turn))
    for a, b in zip(turns, turns[1:], strict=False):
        if a.conversation == b.conversation and a.turn == b.turn:
            raise GoldError(f"{path}: conversation {a.conversation!r} has turn {a.turn} twice")
    order = list(dict.fromkeys(t.conversation for t in turns))
    for conv in order:
        numbers = [t.turn for t in turns if t.conversation == conv]
        if numbers != list(range(1, len(numbers) + 1)):
            raise GoldError(f"{path}: conversation {conv!r} must number its turns 1, 2, ...; "
                            f"got {numbers}")
    return turns
