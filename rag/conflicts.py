"""When the evidence disagrees: find the statements that do, so the answer cites each side.

Two sentences *disagree* when they come from different documents, speak about the same
thing (their sentence vectors are close and they share most of their content words) and
differ where a reader would look for the answer:

- polarity: one denies or negates what the other states (``rag.verify.has_negation``);
- number: each states a number the other does not, for the same thing ("300 people" and
  "500 people"), years included;
- date: each names a month the other does not;
- name: each names someone or something the other does not, the rest being the same.

``find_conflict`` checks the sentences the answer rests on against the other relevant
sentences of the retrieved passages (not only the few shown to the model), documents set
aside included. The gates are fixed fractions, chosen from what "the same claim" means and
checked on the clean gold sets for false alarms (eval/README.md); none is fitted to a
question.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from index.normalize import normalize_text
from index.text import STOPWORDS, content_tokens
from rag.evidence import ScoredSentence
from rag.verify import NEGATION_CUES, has_negation

_NUM = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w])|(?<![\w.])\d+(?:[.,]\d+)*(?=[a-zA-Z%])")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
# numbers written as words ("eight U.S. presidents"), read as digits
NUMBER_WORDS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty".split())}
NUMBER_WORDS.update({w: str(10 * i) for i, w in enumerate(
    "thirty forty fifty sixty seventy eighty ninety".split(), start=3)})
MONTHS = frozenset("january february march april may june july august september october "
                   "november december".split())
_NEG = {t for w in NEGATION_CUES for t in content_tokens(w)}


@dataclass(frozen=True)
class ConflictConfig:
    # sentences about the same thing: cosine of their vectors, and the share of the
    # shorter one's content words (numbers and negations left out) found in the other
    similarity: float = 0.5
    overlap: float = 0.4
    # a name clash needs more of the rest in common than a clash of polarity or number
    name_overlap: float = 0.5
    # candidates: the best ``candidates`` sentences of the retrieved passages, each scoring
    # at least ``relative`` of the best sentence's score (0: any of them; being close to
    # what the answer rests on already ties a candidate to the question)
    candidates: int = 12
    relative: float = 0.0


@dataclass(frozen=True)
class Conflict:
    a: ScoredSentence  # the side the answer rests on
    b: ScoredSentence  # the side that disagrees with it
    kind: str  # "polarity", "number", "date" or "name"
    detail: str  # what differs, e.g. "300 / 500"
    strength: float  # the pair's similarity times its overlap, to pick the clearest


def numbers(text: str) -> set[str]:
    """The numbers a text states, separators removed ("1,200" -> "1200"), numbers written
    as words included ("eight" -> "8")."""
    text = normalize_text(text)
    out = {re.sub(r"(?<=\d)[,](?=\d{3})", "", m.group()).rstrip(".,")
           for m in _NUM.finditer(text)}
    return out | {NUMBER_WORDS[w.lower()] for w in _WORD.findall(text)
                  if w.lower() in NUMBER_WORDS}


def months(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(normalize_text(text)) if w.lower() in MONTHS}


def names(text: str) -> set[str]:
    """Capitalised words that are not a sentence's first word, a stopword or a month."""
    out = set()
    for sent in re.split(r"(?<=[.!?:;\"“”])\s+", normalize_text(text)):
        for i, w in enumerate(_WORD.findall(sent)):
            low = w.lower().rstrip("'’s")
            if i and w[0].isupper() and low not in STOPWORDS and low not in MONTHS:
                out.add(low)
    return out


def _claim_tokens(text: str, drop: set[str] = frozenset()) -> set[str]:
    return {t for t in content_tokens(text)
            if t not in _NEG and not t[0].isdigit() and t not in drop}


def overlap(a: str, b: str, drop: set[str] = frozenset()) -> float:
    """Share of the shorter sentence's content words (numbers, negations and ``drop``
    left out) that the other one has."""
    ta, tb = _claim_tokens(a, drop), _claim_tokens(b, drop)
    if not ta or not tb:
        return 0.0
    return len(ta & tb) / min(len(ta), len(tb))


def _number_slots(text: str, num: str) -> set[str]:
    """What a number counts: the content words just after it ("300 people" -> {"peopl"},
    "131 elected MSPs" -> {"elect", "msp"}), a written number's digits found too."""
    text = normalize_text(text).replace(",", "")
    out: set[str] = set()
    words = [w for w, n in NUMBER_WORDS.items() if n == num]
    for pat in [re.escape(num)] + [rf"\b{w}\b" for w in words]:
        for m in re.finditer(pat + r"[\s-]*((?:[A-Za-z%£$€]+[\s-]*){1,2})", text, re.I):
            out |= set(content_tokens(m.group(1)))
    return out


def _number_clash(a: str, b: str, ov: float, cfg: ConflictConfig) -> str | None:
    """A number of one that the other replaces: for the same thing (the words after it
    match, and the sentences share some words) or in sentences that share most words."""
    na, nb = numbers(a), numbers(b)
    if not na or not nb or na == nb:
        return None
    for x in na:
        for y in nb:
            if x == y or (x in nb and y in na):
                continue
            if ov >= cfg.overlap / 2 and _number_slots(a, x) & _number_slots(b, y):
                return f"{x} / {y}"
    only_a, only_b = na - nb, nb - na
    if only_a and only_b and ov >= cfg.overlap:
        return f"{', '.join(sorted(only_a))} / {', '.join(sorted(only_b))}"
    return None


def disagreement(a: str, b: str, cfg: ConflictConfig | None = None
                 ) -> tuple[str, str, float] | None:
    """(kind, detail, overlap) when sentence ``b`` disagrees with ``a``, else None. The
    caller checks that they are about the same thing (vectors)."""
    cfg = cfg or ConflictConfig()
    ov = overlap(a, b)
    detail = _number_clash(a, b, ov, cfg)
    if detail:
        return "number", detail, ov
    ma, mb = months(a), months(b)
    if ma and mb and ma != mb and ov >= cfg.overlap:
        detail = f"{', '.join(sorted(ma - mb) or ma)} / {', '.join(sorted(mb - ma) or mb)}"
        return "date", detail, ov
    if has_negation(a) != has_negation(b) and ov >= cfg.overlap:
        return "polarity", "denies / states" if has_negation(a) else "states / denies", ov
    xa, xb = names(a), names(b)
    if xa - xb and xb - xa:
        ov_rest = overlap(a, b, drop={t for n in xa ^ xb for t in content_tokens(n)})
        if ov_rest >= cfg.name_overlap:
            return "name", f"{', '.join(sorted(xa - xb))} / {', '.join(sorted(xb - xa))}", \
                ov_rest
    return None


def find_conflict(anchors: Sequence[ScoredSentence], scored: Sequence[ScoredSentence],
                  embed: Callable[[list[str]], np.ndarray],
                  cfg: ConflictConfig | None = None) -> Conflict | None:
    """The clearest disagreement between a sentence of ``anchors`` (what the answer rests
    on) and a relevant sentence of another document among ``scored`` (best first), or
    None. ``embed`` gives L2-normalised sentence vectors (cached by the caller)."""
    cfg = cfg or ConflictConfig()
    if not anchors or not scored:
        return None
    floor = scored[0].score * cfg.relative
    cands = [s for s in scored[:cfg.candidates] if s.score >= floor]
    pairs = [(a, b) for a in anchors for b in cands
             if b.doc != a.doc and (b.doc, b.start) != (a.doc, a.start)]
    if not pairs:
        return None
    texts = list(dict.fromkeys([normalize_text(s.text) for p in pairs for s in p]))
    vecs = dict(zip(texts, embed(texts), strict=True))
    best: Conflict | None = None
    for a, b in pairs:
        sim = float(vecs[normalize_text(a.text)] @ vecs[normalize_text(b.text)])
        if sim < cfg.similarity:
            continue
        found = disagreement(a.text, b.text, cfg)
        if found is None:
            continue
        kind, detail, ov = found
        c = Conflict(a, b, kind, detail, sim * ov)
        if best is None or c.strength > best.strength:
            best = c
    return best
