"""Answer or refuse: one learned, calibrated decision over signals the pipeline has.

The signals (``features``) come from the first generation step (the probability that the
model's reply begins "not in the documents"), the reply's token log-probabilities, the
draft answer (rag.draft) and the evidence scores. A logistic regression over them gives
the probability that the draft answer is right; below ``threshold`` the question is
refused. ``rag/decision.json`` holds the fitted model, the data it was fitted on, its
cross-validated metrics and the operating point; ``rag fit-decision`` (eval.decision)
fits it again. A generator the file was not fitted for is decided by its own first step:
refuse when the refusal is the likelier start (greedy decoding's choice).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from index.normalize import normalize_text
from index.text import content_tokens, words
from rag.evidence import ScoredSentence
from rag.generators import Probe
from rag.relevance import answer_kind, has_kind, names
from rag.types import Draft, Evidence

DECISION_FILE = Path(__file__).resolve().parent / "decision.json"

# every signal the decision may use; a fitted model names the ones it kept
FEATURES = (
    "refusal_logit",  # log-odds of the refusal at the first step
    "mean_logprob",  # mean log-probability of the reply's tokens
    "min_logprob",  # the least likely token of the reply
    "declined",  # the reply still declines in words (after the refusal's start was removed)
    "pointer",  # the reply is only a citation: "[2]"
    "quoted",  # the draft quotes evidence instead of the model's own words
    "support",  # share of the answer's content words found in what it cites
    "cited_first",  # the answer cites the best-scored evidence sentence
    "best_score",  # best evidence sentence score (dense + lexical)
    "best_dense",  # best cosine between the question and an evidence sentence
    "best_lexical",  # best idf-weighted share of the question's words in a sentence
    "cited_dense",  # cosine of the cited sentence
    "cited_lexical",  # question-word share of the cited sentence
    "kind_missing",  # the question asks for a name/number/date the answer does not hold
    "numbers_missing",  # a number the question states is not in what the answer cites
    "names_missing",  # share of the question's names that what the answer cites lacks
    "echo",  # share of the answer's content words that the question already has
    "answer_words",  # log of the answer's length in words
)


_NUM = re.compile(r"\d+(?:[.,]\d+)*")


def _named(name: str, have: set[str]) -> bool:
    """A name is in a text when a word of it begins the name or the name begins it
    ("Normandy", "Norman"); a possessive ("Robert's") counts as its owner."""
    name = re.sub(r"['’]s$", "", name)
    return name in have or any(w.startswith(name) or (len(w) >= 4 and name.startswith(w))
                               for w in have)


def _logit(p: float | None) -> float:
    p = 0.5 if p is None else min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def features(question: str, scored: list[ScoredSentence], evidence: list[Evidence],
             reply_kind: str, probe: Probe | None, draft: Draft) -> dict[str, float]:
    """Every signal of ``FEATURES`` for one question. ``reply_kind``: "declined",
    "pointer" or "answer"."""
    by_n = {e.n: e for e in evidence}
    shown = draft.shown
    cited = [by_n[n] for s in shown for n in s.citations if n in by_n]
    dense = {(s.doc, s.start): s.dense for s in scored}
    lps = (probe.logprobs if probe else []) or [0.0]
    text = draft.text
    a_tok = content_tokens(text)
    q_tok = set(content_tokens(question))
    kind = answer_kind(question)
    cited_text = " ".join(e.text for e in cited)
    cited_words = set(words(cited_text))
    q_numbers = set(_NUM.findall(normalize_text(question)))
    q_names = set(names(question))
    return {
        "refusal_logit": _logit(probe.p_refusal if probe else None),
        "mean_logprob": float(np.mean(lps)),
        "min_logprob": float(np.min(lps)),
        "declined": float(reply_kind == "declined"),
        "pointer": float(reply_kind == "pointer"),
        "quoted": float(any(s.quote for s in shown)),
        "support": max((s.score for s in shown), default=0.0),
        "cited_first": float(bool(cited) and cited[0].n == 1),
        "best_score": scored[0].score if scored else 0.0,
        "best_dense": max((s.dense for s in scored), default=0.0),
        "best_lexical": max((s.lexical for s in scored), default=0.0),
        "cited_dense": max((dense.get((e.doc, e.start), 0.0) for e in cited), default=0.0),
        "cited_lexical": max((e.lexical for e in cited), default=0.0),
        "kind_missing": float(kind is not None and not has_kind(
            text, kind, question, " ".join(e.text for e in cited))),
        "numbers_missing": float(bool(q_numbers - set(_NUM.findall(normalize_text(cited_text))))),
        "names_missing": (sum(not _named(n, cited_words) for n in q_names) / len(q_names)
                          if q_names else 0.0),
        "echo": (sum(t in q_tok for t in a_tok) / len(a_tok)) if a_tok else 1.0,
        "answer_words": math.log1p(len(text.split())),
    }


@dataclass(frozen=True)
class DecisionModel:
    """A logistic regression over standardised ``features``: P(the draft answer is right).
    A draft at or above ``threshold`` is answered with confidence; below it, at or above
    ``low``, it is shown as a caution; below ``low`` the question is refused.
    ``generator``: the model it was fitted for ("" when it is the fallback that follows
    the model's own first step)."""

    features: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    coef: tuple[float, ...] = ()
    intercept: float = 0.0
    threshold: float = 0.5
    generator: str = ""
    meta: dict = field(default_factory=dict, compare=False)
    low: float | None = None  # None: the same as ``threshold`` (no caution grade)

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise ValueError("a decision model needs one mean, scale and coefficient per "
                             "feature")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown decision features {unknown}; known: "
                             f"{', '.join(FEATURES)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.low is not None and not 0.0 <= self.low <= self.threshold:
            raise ValueError(f"the caution threshold must be in [0, threshold="
                             f"{self.threshold}], got {self.low}")

    @property
    def caution_at(self) -> float:
        """The lowest confidence shown as a caution (below it: refused)."""
        return self.threshold if self.low is None else self.low

    def grade(self, confidence: float, shown: bool) -> str:
        """"answer", "caution" or "refused" for a draft of this ``confidence``; a draft
        with nothing to show is refused. A decision not fitted for its generator never
        answers with confidence: its drafts are cautions at best."""
        if not shown or confidence < self.caution_at:
            return "refused"
        if confidence < self.threshold or not self.fitted:
            return "caution"
        return "answer"

    @property
    def fitted(self) -> bool:
        return bool(self.features)

    def probability(self, feats: dict[str, float]) -> float:
        """P(the draft is right). The fallback: 1 - P(refusal) at the first step, or the
        reply's own choice (0 when it declined) if the generator gave no probabilities."""
        if not self.fitted:
            if feats.get("declined"):
                return 0.0
            p_ref = 1 / (1 + math.exp(-feats.get("refusal_logit", 0.0)))
            return 1.0 - p_ref
        x = np.array([feats[f] for f in self.features], np.float64)
        z = (x - np.array(self.mean)) / np.array(self.scale)
        return float(1 / (1 + np.exp(-(z @ np.array(self.coef) + self.intercept))))

    def to_dict(self) -> dict:
        return {"generator": self.generator, "features": list(self.features),
                "mean": list(self.mean), "scale": list(self.scale), "coef": list(self.coef),
                "intercept": self.intercept, "threshold": self.threshold, "low": self.low,
                "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> DecisionModel:
        return cls(tuple(d["features"]), tuple(d["mean"]), tuple(d["scale"]),
                   tuple(d["coef"]), float(d["intercept"]), float(d["threshold"]),
                   d.get("generator", ""), d.get("meta", {}), d.get("low"))


FALLBACK = DecisionModel()


@cache
def _load(path: str) -> DecisionModel:
    return DecisionModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def decision_for(generator: str, path: Path | None = None) -> DecisionModel:
    """The fitted decision for ``generator`` (a packaged model name), else ``FALLBACK``."""
    path = Path(path or DECISION_FILE)
    if not path.is_file():
        return FALLBACK
    model = _load(str(path))
    return model if model.generator == generator else FALLBACK
