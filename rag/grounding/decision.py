"""Answer or refuse: one learned, calibrated decision over signals the pipeline has.

The signals (rag.grounding.signals) come from the first generation step (the probability that the
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
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np

from rag.grounding.signals import FEATURES, missing_signals

DECISION_FILE = Path(__file__).resolve().parent / "decision.json"


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
