"""From the model's reply to a draft answer: its own verified words, or the sentence it
points to, quoted exactly.

The reply is generated with the refusal's first token taken away (rag.generate.base.Probe),
so it is the model's best attempt even when it would rather decline; whether to show the
draft at all is decided afterwards (rag.grounding.decision). Here:

- a reply that is only a citation ("[2]") points to the sentence that answers: it is
  quoted;
- the model's sentences are verified against the evidence they cite (rag.grounding.verify); the
  supported ones are the draft;
- when none is supported, the sentence the reply cites is quoted (else the best-scored
  evidence sentence); so is the best evidence when the reply still declines in words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rag.generate.base import Probe
from rag.generate.prompts import REFUSAL_TOKEN
from rag.grounding.decision import DecisionModel
from rag.grounding.signals import features
from rag.grounding.verify import (
    CITE,
    VerifyConfig,
    flip_conflict,
    quote,
    split_answer,
    verify_answer,
)
from rag.retrieve.evidence import ScoredSentence, is_yes_no
from rag.types import Draft, Evidence

IDK = re.compile(r"\b(i don'?t know|not in (the )?documents|cannot (be )?(answer|determine)"
                 r"|no (relevant )?information|not (mentioned|provided|stated))\b", re.I)


def declined(text: str) -> bool:
    """Whether a reply says the evidence does not answer."""
    return REFUSAL_TOKEN.lower() in text.lower() or bool(IDK.search(text) and
                                                         not CITE.search(text))


def reply_kind(text: str) -> str:
    """"declined", "pointer" (only citations, no words) or "answer"."""
    if declined(text):
        return "declined"
    return "answer" if split_answer(text) else "pointer"


def pointed(text: str, evidence: list[Evidence]) -> Evidence | None:
    """The first evidence sentence the reply cites, if any."""
    by_n = {e.n: e for e in evidence}
    for m in CITE.finditer(text):
        for n in re.split(r"\s*[,;]\s*", m.group(1)):
            if int(n) in by_n:
                return by_n[int(n)]
    return None


@dataclass(frozen=True)
class DraftRules:
    """The hand-written checks a draft may take. Each is kept only for its measured gain
    (rag fit-decision measures each one switched off; eval/README.md lists the gains)."""

    yes_no: bool = True  # a yes/no answer against its evidence is turned around


def make_draft(question: str, evidence: list[Evidence], reply: str,
               cfg: VerifyConfig | None = None, rules: DraftRules | None = None) -> Draft:
    """The draft answer for ``reply`` (see the module's text)."""
    rules = rules or DraftRules()
    if not evidence:
        return Draft([], "declined")
    kind = reply_kind(reply)
    if kind != "answer":
        target = (pointed(reply, evidence) if kind == "pointer" else None) or evidence[0]
        return Draft([quote(target)], kind)
    yes_no = is_yes_no(question) and rules.yes_no
    checked = verify_answer(reply, question, evidence, cfg, yes_no=yes_no)
    if any(s.supported for s in checked):
        return Draft(checked, "model")
    flipped = flip_conflict(evidence, checked) if yes_no else None
    if flipped is not None:
        return Draft([flipped] + checked, "quote")
    target = pointed(reply, evidence) or evidence[0]
    return Draft([quote(target)] + checked, "quote")


@dataclass(frozen=True)
class Settled:
    """A draft with its decision: ``confidence`` is P(the draft is right), ``coverage``
    P(the documents cover the question), ``grade`` "answer", "caution" or "refused"
    (rag.grounding.decision)."""

    draft: Draft
    features: dict[str, float]
    confidence: float
    grade: str
    coverage: float | None = None  # P(the documents cover the question), when decided

    @property
    def answered(self) -> bool:
        """Shown to the user, with confidence or as a caution."""
        return self.grade != "refused"


def settle(question: str, scored: list[ScoredSentence], evidence: list[Evidence],
           reply: str, probe: Probe | None, decision: DecisionModel,
           cfg: VerifyConfig | None = None, rules: DraftRules | None = None,
           passage_dense: Sequence[float | None] = (), reading: float | None = None
           ) -> Settled:
    """Everything after generation, with no model: the draft, its signals, the decision.
    ``passage_dense``: the retrieved passages' cosines with the question; ``reading``:
    the model's P(Yes) over the sentences a yes/no draft cites (rag.grounding.reading), None
    before it is read. The eval replays it on stored replies (eval.decision)."""
    draft = make_draft(question, evidence, reply, cfg, rules)
    feats = features(question, scored, evidence, reply_kind(reply), probe, draft,
                     passage_dense, reading)
    p = decision.probability(feats)
    cover = decision.covers(feats)
    grade = decision.grade(p, bool(draft.shown), cover, bool(feats["yes_no"]))
    return Settled(draft, feats, p, grade, cover)
