"""When the sources disagree: two documents that answer the same question differently.

A disagreement is decided from the question and the answer each source gives to it, not
from any two similar sentences:

1. What the question asks for: yes or no (``is_yes_no``), or a number, a date, a
   duration or a name (``rag.relevance.answer_kind``); for a "what"/"which" question, the
   kind of value the answer gives. A question whose answer is none of these is never
   called disputed.
2. The answer's value: the values of that kind in the answer shown (its own words or
   its quote) that the question does not already state; for a yes/no question, its
   polarity.
3. A rival: a sentence of another document that is relevant to the question by the test
   the answer passed (every name of the question in it, most of its words, close to the
   sentence the answer cites) and gives a value of the same kind for the same thing.
4. Agreement is the default: the rival agrees when any of its values matches one of the
   answer's (a number within ``tolerance``, "about 300" and "296"; a year exactly; a
   name by any of its words, "Spain" and "Spain's"), and a superset or a different facet
   is agreement. Only a rival whose values all differ, or whose polarity is the opposite
   with the same claim, disagrees.

The gates are fixed fractions chosen from what "the same question" means, measured for
false alarms on clean multi-document sets (eval/README.md); none is fitted to a question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.normalize import normalize_text
from index.text import STOPWORDS, content_tokens, words
from rag.grounding.relevance import answer_kind, names
from rag.grounding.verify import NEGATION_CUES, has_negation
from rag.retrieve.evidence import ScoredSentence, is_yes_no

# a number with its scale: "£2.3m", "2.3 million", "38,400", "12%"
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*(?:\.\d+)?)\s*(%|percent|per cent|"
                     r"(?:thousand|million|billion|trillion|bn|m|k)\b)?", re.I)
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9,
          "trillion": 1e12}
NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({w: 10 * i for i, w in enumerate(
    "thirty forty fifty sixty seventy eighty ninety".split(), start=3)})
MONTHS = ("january february march april may june july august september october november "
          "december").split()
_NEG = {t for w in NEGATION_CUES for t in content_tokens(w)}


@dataclass(frozen=True)
class ConflictConfig:
    # the rival is close to the sentence the answer cites (cosine of their vectors)
    similarity: float = 0.5
    # and holds this share of the question's words that the cited sentence holds
    # (idf-weighted, ``ScoredSentence.lexical``)
    coverage: float = 0.8
    # a polarity clash needs the same claim: this share of the shorter sentence's
    # content words (negations and numbers left out) in the other
    claim_overlap: float = 0.6
    # numbers within this relative difference are the same ("nearly 300", "296")
    tolerance: float = 0.05
    candidates: int = 12


@dataclass(frozen=True)
class Conflict:
    a: ScoredSentence  # the side the answer rests on
    b: ScoredSentence  # the side that answers otherwise
    kind: str  # "polarity", "number", "date" or "name"
    detail: str  # what differs, e.g. "300 / 500"
    strength: float  # the rival's similarity to the answer's sentence


def numbers(text: str) -> set[float]:
    """The numbers a text states, scaled ("£2.3m" -> 2300000.0), written ones included
    ("eight" -> 8.0)."""
    text = normalize_text(text)
    out = set()
    for m in _NUMBER.finditer(text):
        value = float(m.group(1).replace(",", ""))
        scale = (m.group(2) or "").lower()
        out.add(value * _SCALE.get(scale, 1.0))
    out |= {float(NUMBER_WORDS[w]) for w in words(text) if w in NUMBER_WORDS}
    return out


def _is_year(x: float) -> bool:
    return x.is_integer() and 1000 <= x <= 2100


def same_number(x: float, y: float, tolerance: float) -> bool:
    """Years and small counts exactly; other numbers within ``tolerance``."""
    if x == y:
        return True
    if _is_year(x) or _is_year(y) or max(x, y) < 100:
        return False
    return abs(x - y) <= tolerance * max(abs(x), abs(y))


def _values(text: str, kind: str, question: str, known: set[str] | None = None) -> set:
    """The values of ``kind`` in ``text`` that the question does not state (``known``:
    names seen elsewhere, to tell a name from a capitalised first word)."""
    if kind in ("number", "duration"):
        asked = numbers(question)
        return {x for x in numbers(text) if not _is_year(x) and x not in asked}
    if kind == "date":
        w, asked = set(words(text)), set(words(question))
        return ({x for x in numbers(text) if _is_year(x)} - numbers(question)) | \
            {m for m in MONTHS if m in w and m not in asked}
    asked_names = set(names(question))
    return {n for n in names(text, known) if n not in asked_names and n not in STOPWORDS
            and n not in MONTHS}


def _agree(a: set, b: set, kind: str, tolerance: float) -> bool:
    if kind in ("number", "duration"):
        return any(same_number(x, y, tolerance) for x in a for y in b)
    if kind == "date":  # the years, else the months, must meet
        ya, yb = {x for x in a if isinstance(x, float)}, {x for x in b if isinstance(x, float)}
        if ya and yb:
            return bool(ya & yb)
        ma, mb = a - ya, b - yb
        return not (ma and mb) or bool(ma & mb)
    return any(_same_name(x, y) for x in a for y in b)


def _same_name(x: str, y: str) -> bool:
    x, y = re.sub(r"['’]s$", "", x), re.sub(r"['’]s$", "", y)
    return x == y or (min(len(x), len(y)) >= 4 and (x.startswith(y) or y.startswith(x)))


def _named(name: str, text_names: set[str], text_words: set[str]) -> bool:
    return any(_same_name(name, n) for n in text_names | text_words)


def claim_overlap(a: str, b: str) -> float:
    """Share of the shorter sentence's content words (numbers and negations left out)
    that the other one has."""
    def claim(t: str) -> set[str]:
        return {x for x in content_tokens(t) if x not in _NEG and not x[0].isdigit()}
    ta, tb = claim(a), claim(b)
    return len(ta & tb) / min(len(ta), len(tb)) if ta and tb else 0.0


def slot(question: str, answer: str) -> str | None:
    """What kind of answer the question asks for (see the module's text)."""
    if is_yes_no(question):
        return "polarity"
    kind = answer_kind(question)
    if kind is not None:
        return kind
    if _values(answer, "name", question):
        return "name"
    if _values(answer, "number", question):
        return "number"
    return None


def _fmt(values: set) -> str:
    return ", ".join(sorted(f"{v:g}" if isinstance(v, float) else str(v) for v in values))


def rival_answer(question: str, answer: str, a: ScoredSentence, b: ScoredSentence,
                 cfg: ConflictConfig | None = None) -> tuple[str, str] | None:
    """(kind, detail) when ``b`` answers ``question`` otherwise than ``answer``, which
    rests on ``a``; None when it agrees or does not answer it (the caller checks that
    the two sentences are close)."""
    cfg = cfg or ConflictConfig()
    kind = slot(question, answer)
    if kind is None:
        return None
    q_names = set(names(question))
    b_names, b_words = set(names(b.text)), set(words(b.text))
    if not all(_named(n, b_names, b_words) for n in q_names):
        return None  # about something else
    if b.lexical < cfg.coverage * a.lexical:
        return None  # does not answer this question
    if kind == "polarity":
        said = words(answer)
        yes = said[0] == "yes" if said and said[0] in ("yes", "no") else not has_negation(answer)
        if yes == (not has_negation(b.text)):
            return None
        if claim_overlap(a.text, b.text) < cfg.claim_overlap:
            return None
        ya = {x for x in numbers(a.text) if _is_year(x)}
        yb = {x for x in numbers(b.text) if _is_year(x)}
        if ya and yb and not ya & yb:
            return None  # another year's event
        return "polarity", "yes / no" if yes else "no / yes"
    # every capitalised word of the answer is a name there, sentence-initial ones too
    known = set(names(a.text)) | b_names | {
        t.lower() for t in re.findall(r"[A-Z][\w'’-]*", normalize_text(answer))
        if t.lower() not in STOPWORDS}
    mine = _values(answer, kind, question, known)
    theirs = _values(b.text, kind, question, known)
    if not mine or not theirs or _agree(mine, theirs, kind, cfg.tolerance):
        return None
    if kind == "name" and claim_overlap(a.text, b.text) < cfg.claim_overlap:
        return None  # a name clash needs the same claim around it
    return ("date" if kind == "date" else "name" if kind == "name" else "number"), \
        f"{_fmt(mine)} / {_fmt(theirs)}"


def find_conflict(question: str, answer: str, anchors: Sequence[ScoredSentence],
                  scored: Sequence[ScoredSentence], embed: Callable[[list[str]], np.ndarray],
                  cfg: ConflictConfig | None = None) -> Conflict | None:
    """The clearest rival to ``answer`` (which cites ``anchors``) among the best
    ``candidates`` sentences of ``scored`` from other documents, or None. ``embed``
    gives L2-normalised sentence vectors (cached by the caller)."""
    cfg = cfg or ConflictConfig()
    if not anchors or not scored or slot(question, answer) is None:
        return None
    docs = {a.doc for a in anchors}
    cands = [s for s in scored[:cfg.candidates] if s.doc not in docs]
    if not cands:
        return None
    texts = list(dict.fromkeys(normalize_text(s.text) for s in [*anchors, *cands]))
    vecs = dict(zip(texts, embed(texts), strict=True))
    best: Conflict | None = None
    for a in anchors:
        for b in cands:
            sim = float(vecs[normalize_text(a.text)] @ vecs[normalize_text(b.text)])
            if sim < cfg.similarity:
                continue
            found = rival_answer(question, answer, a, b, cfg)
            if found is not None and (best is None or sim > best.strength):
                best = Conflict(a, b, found[0], found[1], sim)
    return best
