"""Answer or refuse: one learned, calibrated decision over signals the pipeline has.

The signals (``features``) come from the first generation step (the probability that the
model's reply begins "not in the documents"), the reply's token log-probabilities, the
draft answer (rag.grounding.draft) and the evidence scores. A logistic regression over them gives
the probability that the draft answer is right; below ``threshold`` the question is
refused. ``rag/grounding/decision.json`` holds the fitted model, the data it was fitted on, its
cross-validated metrics and the operating point; ``rag fit-decision`` (eval.decision)
fits it again. A fit holds for one generator on one backend (the same weights give other
probabilities through llama.cpp, transformers or a server). Any other generator is
decided by its own first step: refuse when the refusal is the likelier start (greedy
decoding's choice); and one that gives no probabilities at all (a model server without
log-probabilities) by its reply's own choice. ``decision_note`` says so in the answer.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from index.normalize import normalize_text
from index.text import content_tokens, words
from rag.generate.base import Probe
from rag.grounding.relevance import answer_kind, has_kind, names
from rag.grounding.verify import polarity, stance
from rag.retrieve.evidence import ScoredSentence, is_yes_no
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
    "yes_no",  # the question asks yes or no
    "pool_names_missing",  # share of the question's names in none of the best sentences
    "pool_words_missing",  # share of the question's content words in none of them
    "best_gap",  # how far the best sentence's score leads the second's
    "stance_agreement",  # yes/no: share of the evidence whose negation agrees with the answer
    "stance_mismatch",  # yes/no: the answer's yes or no disagrees with its own sentence
    "premise_missing",  # a "Yes": share of the question's words and numbers its evidence lacks
    "passage_dense",  # best cosine between the question and a retrieved passage
    "flipped",  # a yes/no reply against its evidence, turned around (verify.flip_conflict)
    "reading",  # yes/no: log-odds that the model reads the cited sentences as the draft says
)
# the best-scored sentences whose words the pool signals read (a replay keeps as many)
POOL = 12


_NUM = re.compile(r"\d+(?:[.,]\d+)*")


def _named(name: str, have: set[str]) -> bool:
    """A name is in a text when a word of it begins the name or the name begins it
    ("Normandy", "Norman"); a possessive ("Robert's") counts as its owner."""
    name = re.sub(r"['’]s$", "", name)
    return name in have or any(w.startswith(name) or (len(w) >= 4 and name.startswith(w))
                               for w in have)


# the signals a generator's probabilities give; NaN when it gave none
PROBABILITY_FEATURES = ("refusal_logit", "mean_logprob", "min_logprob", "reading")


def _logit(p: float | None) -> float:
    """Log-odds of ``p``; NaN when there is no probability (never a made-up 0.5)."""
    if p is None:
        return math.nan
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def missing_signals(feats: dict[str, float]) -> list[str]:
    """The signals ``features`` could not compute (the generator gave no probabilities)."""
    return [f for f in PROBABILITY_FEATURES if math.isnan(feats.get(f, math.nan))]


def features(question: str, scored: list[ScoredSentence], evidence: list[Evidence],
             reply_kind: str, probe: Probe | None, draft: Draft,
             passage_dense: Sequence[float | None] = (), reading: float | None = None
             ) -> dict[str, float]:
    """Every signal of ``FEATURES`` for one question. ``reply_kind``: "declined",
    "pointer" or "answer"; ``passage_dense``: the retrieved passages' cosines with the
    question (None for a passage only the lexical search found); ``reading``: P(Yes) of
    the model's reading of the cited sentences (rag.grounding.reading), NaN when the generator gave
    no probabilities, None when the draft was not read."""
    by_n = {e.n: e for e in evidence}
    shown = draft.shown
    cited = [by_n[n] for s in shown for n in s.citations if n in by_n]
    dense = {(s.doc, s.start): s.dense for s in scored}
    if probe is None or probe.p_refusal is None:  # no probabilities from the generator
        lps = probe.logprobs if probe and probe.logprobs else [math.nan]
    else:
        lps = probe.logprobs or [0.0]  # an empty reply
    text = draft.text
    a_tok = content_tokens(text)
    q_tok = set(content_tokens(question))
    kind = answer_kind(question)
    cited_text = " ".join(e.text for e in cited)
    cited_words = set(words(cited_text))
    q_numbers = set(_NUM.findall(normalize_text(question)))
    q_names = set(names(question))
    pool_text = " ".join(s.text for s in scored[:POOL])
    pool_words, pool_tokens = set(words(pool_text)), set(content_tokens(pool_text))
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
        "yes_no": float(is_yes_no(question)),
        "pool_names_missing": (sum(not _named(n, pool_words) for n in q_names) / len(q_names)
                               if q_names else 0.0),
        "pool_words_missing": (sum(t not in pool_tokens for t in q_tok) / len(q_tok)
                               if q_tok else 0.0),
        "best_gap": scored[0].score - scored[1].score if len(scored) > 1 else 0.0,
        "stance_agreement": stance_agreement(question, shown, evidence),
        "stance_mismatch": stance_mismatch(question, shown),
        "premise_missing": premise_missing(question, shown, cited_text),
        "passage_dense": max((d for d in passage_dense if d is not None), default=0.0),
        "flipped": float(draft.source == "quote" and bool(shown) and bool(shown[0].prefix)),
        "reading": reading_signal(question, shown, reading),
    }


def _said(question: str, shown: list) -> str | None:
    """The draft's yes or no: its prefix ("No:") or its first word, for a yes/no
    question."""
    if not shown or not is_yes_no(question):
        return None
    first = shown[0]
    return (first.prefix.rstrip(":,").lower() if first.prefix else polarity(first.text))


def draft_says(question: str, shown: list) -> str | None:
    """A yes/no draft's answer: its "Yes" or "No", else the negation of its first
    sentence; None for other questions and empty drafts."""
    said = _said(question, shown)
    if said is None and shown and is_yes_no(question):
        said = stance([shown[0].text], question)
    return said if said in ("yes", "no") else None


def reading_signal(question: str, shown: list, p_yes: float | None) -> float:
    """The log-odds that the model's reading agrees with the draft's yes or no (clipped
    to +-9.2); 0 when the draft was not read, NaN when the reading gave no
    probability."""
    if p_yes is None:
        return 0.0
    if isinstance(p_yes, float) and math.isnan(p_yes):
        return math.nan
    said = draft_says(question, shown)
    if said is None:
        return 0.0
    lo = _logit(p_yes)
    return lo if said == "yes" else -lo


def stance_mismatch(question: str, shown: list) -> float:
    """1 when a yes/no draft's "Yes" or "No" disagrees with the negation of its own words
    ("Yes, the mayor refused ..."), else 0."""
    said = _said(question, shown)
    if said not in ("yes", "no") or shown[0].quote:
        return 0.0
    return float(stance([shown[0].text], question) != said)


def premise_missing(question: str, shown: list, cited_text: str) -> float:
    """For a "Yes": the share of the question's content words and numbers that the
    evidence it cites lacks (a "Yes" to "... in 1973?" resting on "... in 1971"); else
    0."""
    if _said(question, shown) != "yes":
        return 0.0
    asked = set(content_tokens(question)) | set(_NUM.findall(normalize_text(question)))
    have = set(content_tokens(cited_text)) | set(_NUM.findall(normalize_text(cited_text)))
    return sum(t not in have for t in asked) / len(asked) if asked else 0.0


def stance_agreement(question: str, shown: list, evidence: list[Evidence]) -> float:
    """For a yes/no question: the share of the evidence sentences that answer as the draft
    does, by negation (rag.grounding.verify.stance): "No" with three sentences that deny and one
    that does not is 0.75. 0 for other questions and empty drafts."""
    if not evidence:
        return 0.0
    said = draft_says(question, shown)
    if said is None:
        return 0.0
    return sum(stance([e.text], question) == said for e in evidence) / len(evidence)


@dataclass(frozen=True)
class Coverage:
    """P(the documents cover the question): a logistic regression over standardised
    ``features``, fitted on questions asked of their own documents against questions
    asked of documents that never mention their subject."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        if not (len(self.mean) == len(self.scale) == len(self.coef) == len(self.features)):
            raise ValueError("a coverage model needs one mean, scale and coefficient per "
                             "feature")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown coverage features {unknown}; known: "
                             f"{', '.join(FEATURES)}")

    def probability(self, feats: dict[str, float]) -> float | None:
        """None when a signal it needs is missing (the generator gave no probabilities)."""
        x = np.array([feats[f] for f in self.features], np.float64)
        if np.isnan(x).any():
            return None
        z = (x - np.array(self.mean)) / np.array(self.scale)
        return float(1 / (1 + np.exp(-(z @ np.array(self.coef) + self.intercept))))

    def to_dict(self) -> dict:
        return {"features": list(self.features), "mean": list(self.mean),
                "scale": list(self.scale), "coef": list(self.coef),
                "intercept": self.intercept}

    @classmethod
    def from_dict(cls, d: dict) -> Coverage:
        return cls(tuple(d["features"]), tuple(d["mean"]), tuple(d["scale"]),
                   tuple(d["coef"]), float(d["intercept"]))


@dataclass(frozen=True)
class DecisionModel:
    """A logistic regression over standardised ``features``: P(the draft answer is right).
    A draft at or above ``threshold`` is answered with confidence, else shown as a
    caution, unless the question is refused: when ``coverage`` (P(the documents cover the
    question)) is below ``low``, or, without a coverage model, when P(right) is.
    ``generator`` and ``backend``: the model it was fitted for and how it ran ("" for the
    fallback that follows the model's own first step)."""

    features: tuple[str, ...] = ()
    mean: tuple[float, ...] = ()
    scale: tuple[float, ...] = ()
    coef: tuple[float, ...] = ()
    intercept: float = 0.0
    threshold: float = 0.5
    generator: str = ""
    meta: dict = field(default_factory=dict, compare=False)
    low: float | None = None  # None: the same as ``threshold`` (no caution grade)
    backend: str = "llama"
    coverage: Coverage | None = None
    # t_high for yes/no questions (chosen for the same precision on them alone); None:
    # ``threshold``
    yes_no_threshold: float | None = None

    def __post_init__(self) -> None:
        n = len(self.features)
        if not (len(self.mean) == len(self.scale) == len(self.coef) == n):
            raise ValueError("a decision model needs one mean, scale and coefficient per "
                             "feature")
        unknown = [f for f in self.features if f not in FEATURES]
        if unknown:
            raise ValueError(f"unknown decision features {unknown}; known: "
                             f"{', '.join(FEATURES)}")
        for t in (self.threshold, self.yes_no_threshold):
            if t is not None and not 0.0 <= t <= 1.0:
                raise ValueError(f"threshold must be in [0, 1], got {t}")
        top = 1.0 if self.coverage is not None else self.threshold  # low's scale
        if self.low is not None and not 0.0 <= self.low <= top:
            raise ValueError(f"the refusal threshold must be in [0, {top}], got {self.low}")

    @property
    def caution_at(self) -> float:
        """Below it the question is refused: on the coverage scale when there is a
        coverage model, else on P(right)."""
        return self.threshold if self.low is None else self.low

    def covers(self, feats: dict[str, float]) -> float | None:
        """P(the documents cover the question), when there is a coverage model."""
        return None if self.coverage is None else self.coverage.probability(feats)

    def answer_at(self, yes_no: bool = False) -> float:
        """t_high: for a yes/no question its own, when fitted, else ``threshold``."""
        return self.yes_no_threshold if yes_no and self.yes_no_threshold is not None \
            else self.threshold

    def grade(self, confidence: float, shown: bool, coverage: float | None = None,
              yes_no: bool = False) -> str:
        """"answer", "caution" or "refused" for a draft of this ``confidence`` (and
        ``coverage``; ``yes_no``: the question's form); a draft with nothing to show is
        refused. A decision not fitted for its generator never answers with confidence:
        its drafts are cautions at best."""
        refuse_on = coverage if self.coverage is not None and coverage is not None \
            else confidence
        if not shown or refuse_on < self.caution_at:
            return "refused"
        if confidence < self.answer_at(yes_no) or not self.fitted:
            return "caution"
        return "answer"

    @property
    def fitted(self) -> bool:
        return bool(self.features)

    def calibrated_for(self, generator: str, backend: str) -> bool:
        """Whether this decision was fitted for ``generator`` running on ``backend``
        (the fallback never is)."""
        return self.fitted and self.generator == generator and self.backend == backend

    def probability(self, feats: dict[str, float]) -> float:
        """P(the draft is right). Without a fit, or without the probabilities a fit needs
        (``missing_signals``), the fallback: 1 - P(refusal) at the first step; with no
        probabilities at all, the reply's own choice: 0 when it declined, else 1."""
        if not self.fitted or set(missing_signals(feats)) & set(self.features):
            if feats.get("declined"):
                return 0.0
            logit = feats.get("refusal_logit", math.nan)
            if math.isnan(logit):
                return 1.0
            return 1.0 - 1 / (1 + math.exp(-logit))
        x = np.array([feats[f] for f in self.features], np.float64)
        z = (x - np.array(self.mean)) / np.array(self.scale)
        return float(1 / (1 + np.exp(-(z @ np.array(self.coef) + self.intercept))))

    def to_dict(self) -> dict:
        return {"generator": self.generator, "backend": self.backend,
                "features": list(self.features),
                "mean": list(self.mean), "scale": list(self.scale), "coef": list(self.coef),
                "intercept": self.intercept, "threshold": self.threshold,
                "yes_no_threshold": self.yes_no_threshold, "low": self.low,
                "coverage": None if self.coverage is None else self.coverage.to_dict(),
                "meta": self.meta}

    @classmethod
    def from_dict(cls, d: dict) -> DecisionModel:
        return cls(tuple(d["features"]), tuple(d["mean"]), tuple(d["scale"]),
                   tuple(d["coef"]), float(d["intercept"]), float(d["threshold"]),
                   d.get("generator", ""), d.get("meta", {}), d.get("low"),
                   d.get("backend", "llama"),
                   Coverage.from_dict(d["coverage"]) if d.get("coverage") else None,
                   d.get("yes_no_threshold"))


FALLBACK = DecisionModel()


@cache
def _load(path: str) -> DecisionModel:
    return DecisionModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))


def decision_for(generator: str, backend: str = "llama", path: Path | None = None
                 ) -> DecisionModel:
    """The decision fitted for ``generator`` (a packaged model name) on ``backend``
    ("llama", "transformers", "openai"), else ``FALLBACK``: a served model never gets a
    fit made on llama.cpp's probabilities."""
    path = Path(path or DECISION_FILE)
    if not path.is_file():
        return FALLBACK
    model = _load(str(path))
    return model if model.calibrated_for(generator, backend) else FALLBACK


NOT_CALIBRATED = "decision: not calibrated for this"


def decision_note(decision: DecisionModel, generator: str, backend: str,
                  feats: dict[str, float], path: Path | None = None) -> str:
    """What an answer says about the decision that settled it: "" when it was fitted for
    this generator on this backend and had every signal; else which rule decided
    instead, beginning "decision: not calibrated for this backend" (the fit is for the
    same model run another way), "... for this model", or "decision: ..." when the
    generator gave no probabilities."""
    no_probabilities = bool(missing_signals(feats))
    rule = ("the generator gave no probabilities, so the reply's own choice decided"
            if no_probabilities else "the model's first-step refusal probability decided")
    if decision.calibrated_for(generator, backend):
        if not set(missing_signals(feats)) & set(decision.features):
            return ""
        return f"decision: {rule} (the fitted decision needs them)"
    fit = decision
    if not fit.fitted:
        path = Path(path or DECISION_FILE)
        fit = _load(str(path)) if path.is_file() else FALLBACK
    what = "backend" if fit.fitted and fit.generator == generator else "model"
    fitted = (f"fitted for {fit.generator} on {fit.backend}, this is {generator} on "
              f"{backend or 'another backend'}" if fit.fitted else
              f"none is fitted for {generator}")
    return f"{NOT_CALIBRATED} {what} ({fitted}); {rule}"
