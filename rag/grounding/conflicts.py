"""When the sources disagree: two documents that answer the same question differently.

A disagreement is decided from the question and the answer each source gives to it, not
from any two similar sentences:

1. What the question asks for: yes or no (``is_yes_no``), or a number, a date, a
   duration or a name (``rag.grounding.relevance.answer_kind``); for a "what"/"which" question, the
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
from rag.grounding.verify import CITE, NEGATION_CUES, stance
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
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_NEG = {t for w in NEGATION_CUES for t in content_tokens(w)}
_WHICH = re.compile(r"\s*(which|what)\s+(?!(is|are|was|were|do|does|did|has|have|had|can|"
                    r"could|will|would|should|may|might|must)\b)[a-z]", re.I)
_CURRENCY = re.compile(r"[£$€¥]\s*$")


@dataclass(frozen=True)
class ConflictConfig:
    # the rival names this share of the question's names ("Bolton" for "Simon Bolton")
    names: float = 0.6
    # the rival is close to the sentence the answer cites (cosine of their vectors)
    similarity: float = 0.5
    # and holds this share of the question's words that the cited sentence holds
    # (idf-weighted, ``ScoredSentence.lexical``)
    coverage: float = 0.3
    # a polarity clash needs the same claim: this share of the shorter sentence's
    # content words (negations and numbers left out) in the other
    claim_overlap: float = 0.6
    # a name clash, the same share of the words besides the names
    name_claim_overlap: float = 0.5
    # a number clash, this share of the words
    number_claim_overlap: float = 0.4
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


def _number_list(text: str) -> list[tuple[float, int]]:
    """(value, end offset) of each number a text states, scaled ("£2.3m" -> 2300000.0),
    written ones included ("eight" -> 8.0), in order."""
    text = normalize_text(text)
    out = []
    for m in _NUMBER.finditer(text):
        scale = (m.group(2) or "").lower()
        out.append((float(m.group(1).replace(",", "")) * _SCALE.get(scale, 1.0), m.end()))
    for m in re.finditer(r"[A-Za-z]+", text):
        if m.group().lower() in NUMBER_WORDS:
            out.append((float(NUMBER_WORDS[m.group().lower()]), m.end()))
    return sorted(out, key=lambda x: x[1])


def numbers(text: str) -> set[float]:
    """The numbers a text states (``_number_list``)."""
    return {v for v, _ in _number_list(text)}


def _is_year(x: float) -> bool:
    return x.is_integer() and 1000 <= x <= 2100


def same_number(x: float, y: float, tolerance: float) -> bool:
    """Years and small counts exactly; other numbers within ``tolerance``."""
    if x == y:
        return True
    if _is_year(x) or _is_year(y) or max(x, y) < 100:
        return False
    return abs(x - y) <= tolerance * max(abs(x), abs(y))


def counted(question: str) -> set[str]:
    """What a "how many/much" question counts: the content word after it ("How many
    people attended?" -> {"peopl"}), empty when there is none."""
    m = re.search(r"\bhow (?:many|much)\s+([A-Za-z][\w'-]*)", normalize_text(question), re.I)
    return set(content_tokens(m.group(1))) if m else set()


def unit(text: str, start: int, end: int) -> str:
    """What a number at text[start:end] measures: "money" after a currency sign or before
    "pounds"/"dollars"/"euros", "percent", else the content word after it ("" if none)."""
    after = content_tokens(" ".join(text[end:].split()[:2]))
    if _CURRENCY.search(text[:start]) or (after and after[0] in _MONEY):
        return "money"
    if text[end - 1:end] == "%" or (after and after[0] in ("percent", "per")):
        return "percent"
    return after[0] if after else ""


_MONEY = {"pound", "dollar", "euro", "yen", "pence", "cent"}


def _slot_numbers(text: str, question: str, slot: set[str]) -> list[tuple[float, str]]:
    """(value, unit) of the numbers of ``text`` the question does not state and, when
    ``slot`` is known, that count it (one of its words within the next three words)."""
    text = normalize_text(text)
    asked = numbers(question)
    out = []
    found = [(m.start(), m.end(), float(m.group(1).replace(",", "")) *
              _SCALE.get((m.group(2) or "").lower(), 1.0)) for m in _NUMBER.finditer(text)]
    found += [(m.start(), m.end(), float(NUMBER_WORDS[m.group().lower()]))
              for m in re.finditer(r"[A-Za-z]+", text) if m.group().lower() in NUMBER_WORDS]
    for start, end, value in sorted(found):
        if _is_year(value) or value in asked:
            continue
        after = set(content_tokens(" ".join(text[end:].split()[:3])))
        if not slot or after & slot:
            out.append((value, unit(text, start, end)))
    return out


def _values(text: str, kind: str, question: str, known: set[str] | None = None,
            slot: set[str] = frozenset()) -> list:
    """The values of ``kind`` in ``text`` that the question does not state, in order
    (``known``: names seen elsewhere, to tell a name from a capitalised first word;
    ``slot``: what a number must count)."""
    if kind in ("number", "duration"):
        return _slot_numbers(text, question, slot)
    if kind == "date":
        w, asked = words(text), set(words(question))
        years = [x for x in dict.fromkeys(v for v, _ in _number_list(text))
                 if _is_year(x) and x not in numbers(question)]
        return years + [m for m in dict.fromkeys(w) if m in MONTHS and m not in asked]
    asked_names = set(names(question))
    # a capitalised first word is a name when it is one of the known names, in any form
    # ("Greens" beside "Green Party")
    known = set(known or ()) | {t.lower() for t in re.findall(r"[A-Z][\w'’-]*",
                                                             normalize_text(text))
                                if any(_same_name(t.lower(), k) for k in known or ())}
    return list(dict.fromkeys(n for n in names(text, known) if n not in asked_names
                              and n not in STOPWORDS and n not in MONTHS
                              and re.sub(r"['’]s$", "", n) not in WEEKDAYS))


def _same(x, y, kind: str, tolerance: float) -> bool:
    if kind in ("number", "duration"):
        return same_number(x[0], y[0], tolerance)
    if kind == "date":
        return x == y
    return _same_name(x, y)


def _agree(a: list, b: list, kind: str, tolerance: float) -> bool:
    """The two sides agree when their first two values meet (a person's two names, a
    superset, another facet beside the same answer). Numbers compare only in the unit of
    the answer's first; dates compare years when both give one, else months."""
    if kind in ("number", "duration"):
        b = [y for y in b if y[1] == a[0][1]]
        if not b:
            return True  # the rival's numbers measure something else
        return any(same_number(x[0], y[0], tolerance) for x in a[:2] for y in b[:2])
    if kind == "date":  # the years; the months too when the years meet
        ya, yb = [x for x in a if isinstance(x, float)], [x for x in b if isinstance(x, float)]
        ma, mb = [x for x in a if isinstance(x, str)], [x for x in b if isinstance(x, str)]
        if ya and yb and not set(ya[:2]) & set(yb[:2]):
            return False
        return not (ma and mb) or bool(set(ma[:2]) & set(mb[:2]))
    return any(_same(x, y, kind, tolerance) for x in a[:2] for y in b[:2])


def _same_name(x: str, y: str) -> bool:
    x, y = re.sub(r"['’]s$", "", x), re.sub(r"['’]s$", "", y)
    return x == y or (min(len(x), len(y)) >= 4 and (x.startswith(y) or y.startswith(x)))


def _named(name: str, text_names: set[str], text_words: set[str]) -> bool:
    return any(_same_name(name, n) for n in text_names | text_words)


def claim_overlap(a: str, b: str, drop: set[str] = frozenset()) -> float:
    """Share of the shorter sentence's content words (numbers, negations and ``drop``
    left out) that the other one has."""
    def claim(t: str) -> set[str]:
        return {x for x in content_tokens(t) if x not in _NEG and not x[0].isdigit()
                and x not in drop}
    ta, tb = claim(a), claim(b)
    return len(ta & tb) / min(len(ta), len(tb)) if ta and tb else 0.0


def slot(question: str, answer: str) -> str | None:
    """What kind of answer the question asks for (see the module's text)."""
    if is_yes_no(question):
        return "polarity"
    kind = answer_kind(question)
    if kind is not None:
        return kind
    # "Which team ...?", "What company ...?": a name, when the answer gives one
    if _WHICH.match(normalize_text(question)) and _values(answer, "name", question):
        return "name"
    return None


def _fmt(values: list) -> str:
    def one(v) -> str:
        v = v[0] if isinstance(v, tuple) else v
        return f"{v:g}" if isinstance(v, float) else str(v)
    return ", ".join(one(v) for v in values[:2])


def rival_answer(question: str, answer: str, a: ScoredSentence, b: ScoredSentence,
                 cfg: ConflictConfig | None = None) -> tuple[str, str] | None:
    """(kind, detail) when ``b`` answers ``question`` otherwise than ``answer``, which
    rests on ``a``; None when it agrees or does not answer it (the caller checks that
    the two sentences are close)."""
    cfg = cfg or ConflictConfig()
    answer = CITE.sub(" ", answer)
    kind = slot(question, answer)
    if kind is None:
        return None
    q_names = set(names(question))
    b_names, b_words = set(names(f"{b.title}. {b.text}")), set(words(f"{b.title} {b.text}"))
    if q_names and sum(_named(n, b_names, b_words) for n in q_names) < \
            cfg.names * len(q_names):
        return None  # about something else
    # does not answer this question (a yes/no rival may deny in other words: "denied"
    # for "confirm"; its claim must then be the same, below)
    if kind != "polarity" and b.lexical < cfg.coverage * a.lexical:
        return None
    if kind == "polarity":  # the sentence the answer rests on against the rival, alike
        yes = stance([a.text], question) == "yes"
        if yes == (stance([b.text], question) == "yes"):
            return None
        if claim_overlap(a.text, b.text) < cfg.claim_overlap:
            return None  # not the same claim, negated
        ya = {x for x in numbers(a.text) if _is_year(x)}
        yb = {x for x in numbers(b.text) if _is_year(x)}
        if ya and yb and not ya & yb:
            return None  # another year's event
        return "polarity", "yes / no" if yes else "no / yes"
    # every capitalised word of the answer is a name there, sentence-initial ones too
    known = set(names(a.text)) | b_names | {
        t.lower() for t in re.findall(r"[A-Z][\w'’-]*", normalize_text(answer))
        if t.lower() not in STOPWORDS}
    what = counted(question) if kind == "number" else set()
    mine = _values(answer, kind, question, known, what)
    theirs = _values(b.text, kind, question, known, what)
    if kind == "name":
        if any(_named(x, set(theirs), b_words) for x in mine[:2]):
            return None  # the rival names the answer too
        # what the rival names besides the common ground of the two sentences
        ground = set(names(a.text, known))
        theirs = [x for x in theirs if not _named(x, ground, set())]
    if not mine or not theirs or _agree(mine, theirs, kind, cfg.tolerance):
        return None
    if kind == "date" and claim_overlap(a.text, b.text) < cfg.name_claim_overlap:
        return None  # another event's date
    if kind == "number" and claim_overlap(a.text, b.text) < cfg.number_claim_overlap:
        return None  # another count
    if kind == "name":  # the same claim around the names: the words besides them
        drop = {t for n in set(mine) | set(theirs) | set(names(a.text)) | b_names
                for t in content_tokens(n)}
        if claim_overlap(a.text, b.text, drop) < cfg.name_claim_overlap:
            return None
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
    cands = [s for s in scored if s.doc not in docs][:cfg.candidates]
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
