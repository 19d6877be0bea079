"""Evaluation metrics as pure functions: answer accuracy, retrieval, citations, latency.

Every definition here is restated in eval/README.md and in each run's report.md.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Iterable, Sequence

from index.normalize import normalize_text
from index.text import content_tokens, words
from rag.grounding.verify import CITE

SUPPORT_THRESHOLD = 0.6  # share of a sentence's content words its cited texts must hold
F1_CORRECT = 0.5  # token F1 at or above which an answer counts as correct

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = set(string.punctuation) | set("‘’“”–—…")
_NUM = re.compile(r"\d+(?:[.,]\d+)*")
# The judge's own negation cues, kept apart from the product's (rag.grounding.verify
# NEGATION_CUES) on purpose: the judge scores the product, so a word added to the
# product's list to change what it answers ("unable" was) must not move the yardstick it
# is measured by; a change to this list is a change to the metric, made and reported
# as one.
NEGATION_CUES = frozenset(
    "no not never none neither nor denied denies deny denying rejected rejects reject "
    "refused refuses dismissed false untrue without cannot can't won't didn't doesn't "
    "isn't wasn't aren't weren't hasn't haven't".split())


# ---- answers -----------------------------------------------------------------------
def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = CITE.sub(" ", text.lower())
    text = "".join(" " if ch in _PUNCT else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(pred: str, golds: Sequence[str]) -> float:
    p = normalize_answer(pred)
    return float(any(p == normalize_answer(g) for g in golds))


def _f1(pred: str, gold: str) -> float:
    p, g = normalize_answer(pred).split(), normalize_answer(gold).split()
    common = sum((Counter(p) & Counter(g)).values())
    if not p or not g or common == 0:
        return float(p == g)
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def token_f1(pred: str, golds: Sequence[str]) -> float:
    return max((_f1(pred, g) for g in golds), default=0.0)


def contains(pred: str, golds: Sequence[str]) -> float:
    """1 if some normalised gold answer occurs, on word boundaries, in the normalised answer."""
    p = f" {normalize_answer(pred)} "
    return float(any(normalize_answer(g) and f" {normalize_answer(g)} " in p for g in golds))


_LIST_SEP = re.compile(r",\s+(?:and\s+)?|\s+and\s+")


def list_items(gold: str) -> list[str]:
    """The normalised names of a gold answer that lists names ("Simon Bolton and Matthew
    Gould", "Denmark, Iceland and Norway"); one item for any other answer ("10th and 11th
    centuries", "chief information officer of NHS Test and Trace")."""
    parts = [re.sub(r"^(?:the|a|an)\s+", "", p.strip()) for p in _LIST_SEP.split(gold)]
    if len(parts) > 1 and all(p[:1].isupper() for p in parts):
        return [normalize_answer(p) for p in parts]
    return [normalize_answer(gold)]


def matches(pred: str, gold: str) -> bool:
    """A gold that lists names matches when every name occurs in the answer: naming one
    of two chief executives is not the answer. Any other gold matches by containment or
    token F1 >= ``F1_CORRECT``."""
    items = list_items(gold)
    if len(items) > 1:
        p = f" {normalize_answer(pred)} "
        return all(f" {i} " in p for i in items)
    return bool(contains(pred, [gold])) or _f1(pred, gold) >= F1_CORRECT


def answer_polarity(text: str) -> str | None:
    """'yes'/'no' from a leading yes/no word; otherwise 'no' if a negation cue occurs,
    'yes' for any other non-empty answer; None for an empty one."""
    w = words(CITE.sub(" ", text))
    if not w:
        return None
    if w[0] in ("yes", "no"):
        return w[0]
    if any(t in NEGATION_CUES for t in w) or "n't" in normalize_text(text):
        return "no"
    return "yes"


def is_yes_no_gold(answers: Sequence[str]) -> bool:
    return bool(answers) and normalize_answer(answers[0]) in ("yes", "no")


def score_answer(pred: str, golds: Sequence[str], refused: bool) -> dict:
    """Per-question answer metrics for an answerable question.

    ``correct``: for yes/no gold (first answer is yes or no), the polarity matches; otherwise
    a gold answer ``matches``. A refusal is wrong (and a false refusal)."""
    yes_no = is_yes_no_gold(golds)
    out = {"em": 0.0, "f1": 0.0, "contains": 0.0, "correct": False, "contradiction": False,
           "polarity": None, "yes_no": yes_no}
    if refused:
        return out
    out["em"], out["f1"], out["contains"] = (exact_match(pred, golds), token_f1(pred, golds),
                                             contains(pred, golds))
    if yes_no:
        gold = normalize_answer(golds[0])
        pol = answer_polarity(pred)
        out["polarity"] = pol
        out["correct"] = pol == gold
        out["contradiction"] = pol is not None and pol != gold
    else:
        out["correct"] = any(matches(pred, g) for g in golds)
    return out


# ---- retrieval ---------------------------------------------------------------------
def locate(doc_text: str, evidence: str) -> list[tuple[int, int]]:
    """Every (start, end) where ``evidence`` occurs in ``doc_text`` (str.find)."""
    spans, i = [], doc_text.find(evidence)
    while i >= 0 and evidence:
        spans.append((i, i + len(evidence)))
        i = doc_text.find(evidence, i + 1)
    return spans


def passage_has(passage: dict, doc: str, spans: Iterable[tuple[int, int]]) -> bool:
    """The passage (doc, start, end) holds one occurrence of the evidence entirely."""
    return passage["doc"] == doc and any(
        passage["start"] <= s and e <= passage["end"] for s, e in spans)


def retrieval_scores(retrieved: Sequence[dict], evidence: Sequence[tuple[str, list]],
                     k: int) -> dict:
    """``evidence``: (doc, occurrences) per gold evidence text. Returns recall_all (every
    evidence is in some top-k passage), recall_any (at least one is) and rr (1/rank of the
    first passage holding any evidence, 0 if none)."""
    top = list(retrieved)[:k]
    found = [any(passage_has(p, d, spans) for p in top) for d, spans in evidence]
    rr = 0.0
    for rank, p in enumerate(top, 1):
        if any(passage_has(p, d, spans) for d, spans in evidence):
            rr = 1.0 / rank
            break
    return {"recall_all": float(bool(found) and all(found)),
            "recall_any": float(any(found)), "rr": rr}


# ---- citations ---------------------------------------------------------------------
def split_cited(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the [n] numbers they carry; markers removed from the text.
    A marker just after a sentence's full stop belongs to that sentence. The sentences are
    the project's one segmenter's (rag.grounding.verify.split_answer, pysbd)."""
    from rag.grounding.verify import split_answer

    return split_answer(answer)


def lexical_support(sentence: str, texts: Sequence[str],
                    threshold: float = SUPPORT_THRESHOLD) -> bool:
    """Share of the sentence's content words found in ``texts`` >= threshold, and every
    number of the sentence appears in them."""
    joined = " ".join(texts)
    have = set(content_tokens(joined))
    need = content_tokens(sentence)
    share = sum(t in have for t in need) / len(need) if need else 1.0
    nums = set(_NUM.findall(joined))
    return share >= threshold and all(n in nums for n in _NUM.findall(sentence))


def citation_scores(answer: str, cited: dict[int, str], judge=lexical_support) -> dict:
    """ALCE citation recall and precision (Gao et al. 2023) for one answer.

    recall: share of sentences whose cited texts, concatenated, support them (a sentence
    without citations is unsupported). precision: share of citations that are relevant; a
    citation in an unsupported sentence is not; in a supported sentence it is irrelevant
    when it alone does not support the sentence and the others still do."""
    sents = split_cited(answer)
    supported = n_cites = relevant = 0
    for sent, ns in sents:
        ns = [n for n in ns if n in cited] + [n for n in ns if n not in cited]
        n_cites += len(ns)
        texts = [cited.get(n, "") for n in ns]
        if not ns or not judge(sent, texts):
            continue
        supported += 1
        for i in range(len(ns)):
            alone = judge(sent, [texts[i]])
            rest = texts[:i] + texts[i + 1:]
            irrelevant = not alone and bool(rest) and judge(sent, rest)
            relevant += not irrelevant
    return {"sentences": len(sents), "supported": supported, "citations": n_cites,
            "relevant": relevant,
            "citation_recall": supported / len(sents) if sents else None,
            "citation_precision": relevant / n_cites if n_cites else None}


def citation_validity(citations: Sequence[dict], documents: dict[str, str]) -> dict:
    """A citation is valid when its text equals its document's characters [start:end]."""
    valid = sum(1 for c in citations
                if c["doc"] in documents and 0 <= c["start"] <= c["end"]
                and documents[c["doc"]][c["start"]:c["end"]] == c["text"])
    return {"citations": len(citations), "valid": valid,
            "citation_validity": valid / len(citations) if citations else None}


def gold_sentences(doc_text: str, spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The gold evidence of a span as a sentence: the sentences of the document (its
    lines split by pysbd, index.chunking.split_sentences) that the span touches; a span
    that is already one or more whole sentences stays itself."""
    from index.chunking import split_sentences

    sents = split_sentences(doc_text, max_words=10_000)
    out = []
    for s, e in spans:
        touched = [(a, b) for a, b in sents if a < max(e, s + 1) and s < b]
        out.append((min(a for a, _ in touched), max(b for _, b in touched)) if touched
                   else (s, e))
    return out


def citation_judge(citations: Sequence[dict], gold: Sequence[tuple[str, int, int]]
                   ) -> dict:
    """The independent citation judge: a citation is correct when its span overlaps a
    gold evidence span of the question (same document). It looks only at positions, never
    at words, so it shares nothing with the verifier's support rule.
    ``gold``: (doc, start, end) spans, e.g. from ``gold_sentences``."""
    correct = sum(1 for c in citations if any(
        c["doc"] == d and c["start"] < e and s < c["end"] for d, s, e in gold))
    return {"citations": len(citations), "citations_correct": correct,
            "answer_cites_gold": bool(correct)}


# ---- aggregation -------------------------------------------------------------------
def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile, q in [0, 100]."""
    v = sorted(x for x in values if x is not None)
    if not v:
        return None
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def mean(values: Iterable[float | None]) -> float | None:
    v = [float(x) for x in values if x is not None]
    return sum(v) / len(v) if v else None
