"""Does a supported sentence answer the question, or only repeat its words?

The support judge (``rag.verify.support``) sees whether a sentence's words are in its
evidence, not whether the sentence answers the question asked. Three lexical checks,
general to any corpus, catch the common ways a supported sentence misses:

- wh-type: "who/whose/where" wants a name, "how many/how much" a number, "when/what year" a
  date, "how long" a duration, each beyond the words of the question itself;
- inverted relation: "Who replaced X?" is not answered by a sentence whose subject is X
  ("X took over from Y");
- swapped entity: "Who is the CEO of A?" is not answered by evidence that pairs the role
  with another name ("CEO of B", "B chair"); a quoted sentence, whose own answer is
  unknown, only by the role's owner ("CEO of B").
"""

from __future__ import annotations

import re

from index.normalize import normalize_text
from index.text import STOPWORDS, stem, words

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’&-]*")
_MONTHS = ("january february march april may june july august september october november "
           "december jan feb mar apr jun jul aug sep sept oct nov dec monday tuesday "
           "wednesday thursday friday saturday sunday").split()
_DATE_WORDS = set(_MONTHS) | set("century centuries decade decades year years ago "
                                 "bc ad bce ce noon midday midnight morning mornings "
                                 "afternoon afternoons evening evenings night nights tonight "
                                 "today tomorrow yesterday daily weekly monthly yearly "
                                 "annually weekend weekends dawn dusk am pm o'clock spring "
                                 "summer autumn winter".split())
_NUMBER_WORDS = set("one two three four five six seven eight nine ten eleven twelve "
                    "thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty "
                    "thirty forty fifty sixty seventy eighty ninety hundred hundreds "
                    "thousand thousands million millions billion billions dozen dozens "
                    "half".split())
_DURATION_WORDS = set("second seconds minute minutes hour hours day days week weeks month "
                      "months year years decade decades century centuries".split())
# role abbreviations are titles, like "chair", not names: in "Who is the CFO of Acme?" the
# name is Acme, and "CEO" is the role the swapped-entity check pairs with it
_TITLES = set("ceo cfo coo cto cio cmo ciso cdo md vp mp mep pm".split())
_AUX = set("is are was were am be been do does did has have had will would can could "
           "should shall may might must".split())


def answer_kind(question: str) -> str | None:
    """What the question asks for: "name", "number", "date", "duration" or None."""
    q = normalize_text(question).lower()
    if re.match(r"\s*(who|whom|whose|where)\b", q) or re.search(
            r"\b(what|which) (is|was|are|were) (the|his|her|its|their) names?( of\b|\s*\?)", q):
        return "name"
    if re.search(r"\bhow (many|much)\b", q):
        return "number"
    if re.search(r"\bhow long\b", q):
        return "duration"
    if re.match(r"\s*when\b", q) or re.search(r"\b(what|which) (year|date|month|day|decade|"
                                              r"century)\b", q):
        return "date"
    return None


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize_text(text))


def _capitalised(tok: str) -> bool:
    return tok[0].isupper() or (any(c.isdigit() for c in tok) and any(c.isalpha() for c in tok))


def names(text: str, known: set[str] | None = None) -> list[str]:
    """Capitalised tokens (lower-cased) that are names: not first in a sentence, unless
    the token is all capitals, mixes letters and digits, or is in ``known``."""
    out = []
    for sent in re.split(r"(?<=[.!?:;\"“”])\s+", normalize_text(text)):
        toks = _tokens(sent)
        for i, tok in enumerate(toks):
            low = tok.lower()
            if not _capitalised(tok) or low in STOPWORDS or low in _TITLES:
                continue
            if i == 0 and not (tok.isupper() and len(tok) > 1) and not any(
                    c.isdigit() for c in tok) and low not in (known or set()):
                continue
            out.append(low)
    return out


def has_kind(sentence: str, kind: str | None, question: str, context: str = "") -> bool:
    """Whether ``sentence`` holds an answer of ``kind`` that is not in the question.
    ``context`` (the evidence) tells names from capitalised first words."""
    if kind is None:
        return True
    asked = set(words(question))
    toks = [t for t in words(sentence) if t not in asked]
    if kind == "number":
        return any(any(c.isdigit() for c in t) or t in _NUMBER_WORDS for t in toks)
    if kind == "date":  # a number word too: "at nine", "in nineteen twenty"
        return any(any(c.isdigit() for c in t) or t in _DATE_WORDS or t.rstrip("s") in
                   _DATE_WORDS or t in _NUMBER_WORDS for t in toks)
    if kind == "duration":
        return any(t in _DURATION_WORDS for t in toks)
    known = set(names(context)) | set(names(sentence))
    return any(n not in asked for n in names(sentence, known))


# "X was replaced by Y", "X is run by Y": X comes first, but Y did it
_PASSIVE = re.compile(r"\b(?:is|are|was|were|been|being|be)\b[^.;:]*?\bby\b", re.I)


def inverted(question: str, sentence: str) -> bool:
    """"Who <verb> X?" answered by a sentence that starts with X (X is its subject, not
    the passive's object)."""
    m = re.match(r"\s*who\s+(\w+)", normalize_text(question), re.I)
    if not m or m.group(1).lower() in _AUX or _PASSIVE.search(normalize_text(sentence)):
        return False
    q_names = set(names(question))
    toks = [t.lower() for t in _tokens(sentence)[:3]]
    while toks and toks[0] in STOPWORDS:
        toks.pop(0)
    return bool(toks) and toks[0] in q_names


_CLAUSE = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’&-]*|[,;:()\[\]\"“”.!?]")


def _near_names(toks: list[str], i: int, is_name: set[str]) -> set[str]:
    """Names next to token ``i`` (function words skipped, punctuation not crossed), one
    content word each side."""
    out = set()
    for step in (-1, 1):
        j = i + step
        while 0 <= j < len(toks) and toks[j].lower() in STOPWORDS:
            j += step
        if 0 <= j < len(toks) and toks[j].lower() in is_name:
            out.add(toks[j].lower())
    return out


def _role_pairs(text: str, known: set[str], near=_near_names) -> dict[str, set[str]]:
    """Stemmed common word -> the names ``near`` it (by default right next to it: "chairs
    NHSX" -> chair: nhsx)."""
    toks = _CLAUSE.findall(normalize_text(text))
    is_name = set(names(text, known))
    pairs: dict[str, set[str]] = {}
    for i, tok in enumerate(toks):
        low = tok.lower()
        if low in STOPWORDS or low in is_name or not low.isalpha():
            continue
        got = near(toks, i, is_name)
        if got:
            pairs.setdefault(stem([low])[0], set()).update(got)
    return pairs


def swapped_entity(question: str, sentence: str, evidence_texts: list[str]) -> bool:
    """The question pairs a common word with a name ("chairs NHSX") and the evidence
    pairs that word only with other names ("NHSD chair"), the answer's own names aside."""
    known = set(names(" ".join(evidence_texts)))
    q_pairs = _role_pairs(question, known)
    if not q_pairs:
        return False
    q_names = set(names(question, known))
    own = set(names(sentence, known))
    for role in q_pairs:
        near: set[str] = set()
        for t in evidence_texts:
            near |= _role_pairs(t, known).get(role, set())
        near -= own
        if near and not near & q_names:
            return True
    return False


RELEVANCE_CHECKS = ("type", "inverted", "entity")


def relevance_problem(question: str, sentence: str, evidence_texts: list[str],
                      checks: tuple[str, ...] = RELEVANCE_CHECKS) -> str:
    """Why ``sentence`` (supported by ``evidence_texts``) does not answer ``question``:
    "type", "inverted" or "entity", among the ``checks`` asked for; "" when none of them
    objects."""
    context = " ".join(evidence_texts)
    if "type" in checks and not has_kind(sentence, answer_kind(question), question, context):
        return "type"
    if "inverted" in checks and inverted(question, sentence):
        return "inverted"
    if "entity" in checks and swapped_entity(question, sentence, evidence_texts):
        return "entity"
    return ""
