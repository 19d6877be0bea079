"""Follow-up questions in a conversation: a follow-up that leans on earlier turns ("What
did she do before?", "And the other body?") is rewritten by the local generator into
a standalone question, which retrieval and the verified answer then use.

A rewrite costs a short generation, so it happens only when the question needs it
(``needs_rewrite``): there are earlier turns, and the question refers back to them (a
personal or demonstrative pronoun, a leading conjunction such as "and", "what about") or
is too short to stand alone and names nothing. The generator is kept from writing the
question's pronouns (``pronouns_to_replace``), so it names what they stand for instead
of echoing the question. A reply that is no new question (the question echoed, an
earlier question repeated, an answer) is not used: the follow-up is then answered as
asked and retrieved with the conversation's last question beside it
(``fallback_search``). The earlier turns are only ever read to rewrite the question or
to search: they are never evidence, and never cited."""

from __future__ import annotations

import re
from collections.abc import Sequence

from index.text import content_tokens
from rag.errors import QuestionError
from rag.grounding.relevance import names
from rag.grounding.verify import CITE

# English words that point back to something said before: closed word classes
# (personal, possessive and demonstrative pronouns, pro-forms), not topic words
PRONOUNS = frozenset("""
he him his himself she her hers herself it its itself they them their theirs themselves
this that these those
""".split())
REFERRING = PRONOUNS | frozenset("""
there then former latter other others same such one ones another else also too either
neither both
""".split())
# openings that continue an earlier question ("And ...?", "What about ...?")
CONTINUING = re.compile(r"^\s*(and|or|but|so|also|what about|how about|same for|then)\b",
                        re.IGNORECASE)
# a question with fewer content words than this cannot carry its own subject
MIN_CONTENT_WORDS = 3
# earlier turns the rewrite prompt shows (user and assistant messages), and how much of each
HISTORY_MESSAGES = 4
TURN_CHARS = 300
REWRITE_MAX_TOKENS = 48
# the status event that announces the standalone question, before the sources
SEARCHING = "Searching for: "
_CITE = re.compile(r"\s*" + CITE.pattern)  # a citation marker and the space before it
_WORD_ANY = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")

CONDENSE_SYSTEM = (
    "You rewrite the last question of a conversation so that it can be understood "
    "without the conversation. Replace pronouns and fill in the words it leaves out, "
    "taking them from the conversation; keep its other words. Do not answer it. Reply "
    "with the rewritten question only.\n\n"
    "Example\nConversation:\nUser: When did the ferry to Lannoch start running?\n"
    "Assistant: The ferry started running in 1903 [1].\n"
    "Last question: Who owned it?\n"
    "Rewritten: Who owned the ferry to Lannoch?\n\n"
    "Example\nConversation:\nUser: Who chairs the Valmere water board?\n"
    "Assistant: Ines Castell chairs the water board [1].\n"
    "Last question: and the harbour trust?\n"
    "Rewritten: Who chairs the Valmere harbour trust?"
)


def needs_rewrite(question: str, history: Sequence[dict] | None) -> bool:
    """Whether ``question`` leans on the earlier turns: there are some, and it refers
    back (a referring word, a continuing opening) or is too short to stand alone and
    names nothing."""
    if not history or not any(t.get("role") == "user" for t in history):
        return False
    q = question.strip()
    if CONTINUING.match(q):
        return True
    if _words(q) & REFERRING:
        return True
    # a short question that names something ("Who chairs Valmere?") carries its subject
    return len(content_tokens(q)) < MIN_CONTENT_WORDS and not names(q)


def pronouns_to_replace(question: str) -> list[str]:
    """The pronouns of ``question`` (as in ``needs_rewrite``): its rewrite names what they
    stand for, so the generator is kept from writing them again (``avoid``); a model
    that would echo the question has to resolve them instead."""
    return sorted(_words(question) & PRONOUNS)


def _words(question: str) -> set[str]:
    """The question's words, lower-cased; words written in capitals are names or
    acronyms ("IT", "US"), never pronouns, and are left out."""
    return {w.lower() for w in _WORD_ANY.findall(question) if not w.isupper() or len(w) == 1}


def _clean_turn(text: str) -> str:
    text = " ".join(_CITE.sub("", text).split())
    return text if len(text) <= TURN_CHARS else text[:TURN_CHARS].rsplit(" ", 1)[0] + " …"


def condense_messages(question: str, history: Sequence[dict]) -> list[dict[str, str]]:
    """The rewrite prompt: fixed instructions with two examples, then the last turns of
    the conversation (citation marks dropped, long answers cut) and the question."""
    lines = [f"{'User' if t['role'] == 'user' else 'Assistant'}: {_clean_turn(t['content'])}"
             for t in list(history)[-HISTORY_MESSAGES:]]
    user = ("Conversation:\n" + "\n".join(lines) +
            f"\nLast question: {' '.join(question.split())}\nRewritten:")
    return [{"role": "system", "content": CONDENSE_SYSTEM}, {"role": "user", "content": user}]


def condense_samples() -> list[list[dict[str, str]]]:
    """Two rewrite prompts on made-up turns: what they share is the fixed part of every
    rewrite prompt (the generator keeps it in its prompt cache)."""
    a = [{"role": "user", "content": "Where is the mill?"},
         {"role": "assistant", "content": "By the river [1]."}]
    b = [{"role": "user", "content": "Who painted the chapel?"},
         {"role": "assistant", "content": "Oskar Venn [2]."}]
    return [condense_messages("When was it built?", a),
            condense_messages("and the roof?", b)]


def parse_rewrite(text: str, question: str,
                  history: Sequence[dict] | None = None) -> str | None:
    """The standalone question in the model's reply: its first non-empty line without a
    label or quotes. None when the reply is no rewrite: not one question (empty, a
    statement from a model that answered instead, two questions run together), far
    longer than the question, the question itself, or an earlier question repeated."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = re.sub(r"^(rewritten|standalone)( question)?\s*:\s*", "", line, flags=re.I)
    line = line.strip().strip("\"'\u201c\u201d").strip()
    if not line.endswith("?") or line.count("?") > 1 or \
            len(line) > 3 * len(question) + 120:
        return None
    earlier = {_key(t["content"]) for t in history or [] if t.get("role") == "user"}
    if _key(line) in earlier | {_key(question)}:
        return None
    return line


def rewrite_question(generator, question: str, history: Sequence[dict],
                     avoid_pronouns: bool = True) -> str | None:
    """Have ``generator`` (a ``rag.generate.local.Generator``) rewrite the follow-up
    ``question`` to stand alone; None when its reply is no usable rewrite
    (``parse_rewrite``). With ``avoid_pronouns`` the question's pronouns are kept out of
    the reply: it has to say what they stand for (a model tends to echo the question)."""
    avoid = pronouns_to_replace(question) if avoid_pronouns else []
    kwargs = {"avoid": avoid} if avoid else {}
    text = "".join(generator.stream(condense_messages(question, history),
                                    max_tokens=REWRITE_MAX_TOKENS, temperature=0.0,
                                    stop=["\n"], **kwargs))
    return parse_rewrite(text, question, history)


def fallback_search(question: str, history: Sequence[dict]) -> str:
    """What to retrieve for a follow-up the model could not rewrite: the last earlier
    question with this one, so the passages are about what the conversation is about."""
    last = next((t["content"] for t in reversed(list(history)) if t.get("role") == "user"),
                "")
    return f"{' '.join(last.split())} {question}".strip()


def _key(text: str) -> str:
    return " ".join(_WORD_ANY.findall(text.lower()))


def history_turns(answer: dict) -> list[dict[str, str]]:
    """The two turns an answer (``Answer.to_dict()``) adds to a conversation's history:
    the question as it was searched (a follow-up already resolved, so later rewrites
    start from it) and the answer's text."""
    question = answer.get("standalone_question") or answer["question"]
    return [{"role": "user", "content": question},
            {"role": "assistant", "content": answer["answer"]}]


def check_question(question: str, max_chars: int) -> str:
    """The question, stripped: ``QuestionError`` when it is empty or longer than
    ``max_chars``."""
    q = (question or "").strip()
    if not q:
        raise QuestionError("the question is empty; type a question about your documents")
    if len(q) > max_chars:
        raise QuestionError(
            f"the question has {len(q)} characters; the limit is "
            f"{max_chars} (set RAG_MAX_QUESTION_CHARS to change it)")
    return q


def check_history(history: Sequence[dict] | None) -> list[dict[str, str]]:
    """Earlier turns of a conversation, oldest first: ``{"role": "user" or
    "assistant", "content": text}`` each; ``QuestionError`` names the first that is not."""
    turns = []
    for i, turn in enumerate(history or []):
        role = turn.get("role") if isinstance(turn, dict) else None
        content = turn.get("content") if isinstance(turn, dict) else None
        if role not in ("user", "assistant") or not isinstance(content, str):
            raise QuestionError(f"history turn {i + 1} must be {{'role': 'user' or "
                                f"'assistant', 'content': text}}")
        turns.append({"role": role, "content": content})
    return turns
