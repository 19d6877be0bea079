"""The model's own reading of a yes/no draft: asked apart from the answer, with only the
sentences the draft cites, does the evidence say yes or no?

One token at temperature 0: P(the reply begins "Yes") at the first step, read from the
logits (``Probe``). The decision reads it as the log-odds of the draft's own yes or no
(``rag.grounding.signals.features``, signal ``reading``); a draft whose evidence the model reads
the other way is less likely right. Other questions, and drafts with nothing to show,
are not read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from rag.generate.base import Generator, Messages, Probe
from rag.retrieve.evidence import is_yes_no
from rag.types import Draft, Evidence

READING_SYSTEM = ("You read one piece of evidence and answer a yes/no question about it "
                  "with Yes or No only. Answer No when the evidence denies or contradicts "
                  "what the question asks about.")


def reading_version() -> str:
    """A hash of the reading's prompt: a stored reading holds for this prompt only."""
    return hashlib.sha256(READING_SYSTEM.encode()).hexdigest()[:12]


def reading_messages(question: str, texts: Sequence[str]) -> Messages:
    evidence = " ".join(" ".join(texts).split())
    return [{"role": "system", "content": READING_SYSTEM},
            {"role": "user", "content": f"Evidence: {evidence}\nQuestion: {question}\n"
                                        "Answer Yes or No."}]


def cited_texts(draft: Draft, evidence: Sequence[Evidence]) -> list[str]:
    """The evidence sentences the draft's shown sentences cite, once each, in order."""
    by_n = {e.n: e.text for e in evidence}
    ns = dict.fromkeys(n for s in draft.shown for n in s.citations if n in by_n)
    return [by_n[n] for n in ns]


def needs_reading(question: str, draft: Draft, evidence: Sequence[Evidence]) -> bool:
    return is_yes_no(question) and bool(cited_texts(draft, evidence))


def read_yes_no(generator: Generator, question: str, texts: Sequence[str]) -> float | None:
    """P(Yes) for ``question`` over ``texts``; None when the generator gives no
    probabilities (the decision then treats the signal as missing)."""
    probe = Probe("Yes", suppress=False)
    for _ in generator.stream(reading_messages(question, texts), max_tokens=1,
                              temperature=0.0, probe=probe):
        pass
    return probe.p_refusal
