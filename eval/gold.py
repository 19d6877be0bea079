"""The gold set: one JSON object per line, checked against the corpus documents."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

QUESTION_TYPES = ("factoid", "yesno", "multi", "unanswerable")


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
    return GoldItem(str(obj["id"]), str(obj["question"]), answers, answerable, evidence, qtype)


def load_gold(path: Path) -> list[GoldItem]:
    """Read a JSONL gold file; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"gold file not found: {path}")
    items, seen = [], set()
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldError(f"{where}: not valid JSON ({exc.msg})") from None
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
