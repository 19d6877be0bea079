"""What a question asks for and what a sentence names: signals of the answer-or-refuse
decision (rag.grounding.decision), not gates.

- ``answer_kind``: "who/whose/where" wants a name, "how many/how much" a number, "when/what
  year" a date, "how long" a duration; ``has_kind``: whether a sentence holds one beyond
  the question's own words (the decision's ``kind_missing``).
- ``names``: the capitalised names of a text, role abbreviations ("CFO", "MP") left out
  (the decision's ``names_missing``).

The relevance gates that once rejected supported sentences here (wrong wh-type, inverted
relation, swapped entity) did not add answer accuracy across articles and were removed
(eval/README.md).
"""

from __future__ import annotations

import re

from index.normalize import normalize_text
from index.text import STOPWORDS, words

_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9'’&-]*")
# Where a capital may start a clause and so says nothing about a name: after a full stop,
# ?, !, a colon, a semicolon or a quotation mark. This is a name scan, not sentence
# splitting (that is index.chunking.split_sentences, pysbd): pysbd keeps 'The plan:
# Trusts merge in May.' in one sentence, which would make "Trusts" a name; and names()
# runs on every sentence of the pool for each question, where pysbd costs about half a
# millisecond a call.
_CLAUSE_START = re.compile(r"(?<=[.!?:;\"“”])\s+")
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
# role abbreviations are titles, like "chair", not names
_TITLES = set("ceo cfo coo cto cio cmo ciso cdo md vp mp mep pm".split())

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
    for sent in _CLAUSE_START.split(normalize_text(text)):
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
