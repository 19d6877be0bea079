"""What every generator shares: the ``Generator`` protocol, the ``Probe`` a generation fills
about itself, and the forms of the words a reply may begin or must avoid. The backends
(``rag.generate.local``: llama.cpp, transformers; ``rag.generate.served``: a served model)
import it; it imports none of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

Messages = list[dict[str, str]]


@dataclass
class Probe:
    """What a generation reports about itself, read from the logits it computes anyway.

    ``refusal`` is the reply that means "the evidence does not answer". A generator that
    can read its logits sets ``p_refusal``, the probability that the reply begins with it
    (any letter case) at the first step, and, with ``suppress``, takes that first token
    away, so the reply is the model's best attempt at an answer; ``logprobs`` are the
    log-probabilities of the tokens it chose (the last one may be missing), under the
    distribution before suppression.
    A generator that cannot leave ``p_refusal`` None and ``suppressed`` False, and says
    why in ``note`` (shown with the answer)."""

    refusal: str
    suppress: bool = True
    p_refusal: float | None = None
    suppressed: bool = False
    logprobs: list[float] = field(default_factory=list)
    note: str = ""


# the logit bias that keeps a token out of a reply (``avoid``)
AVOID_BIAS = -100.0


class Generator(Protocol):
    name: str
    backend: str  # "llama", "transformers" or "openai": what a decision is fitted for

    def warm_up(self) -> None: ...

    def stream(self, messages: Messages, max_tokens: int = 200, temperature: float = 0.0,
               stop: list[str] | None = None, probe: Probe | None = None,
               avoid: Sequence[str] | None = None) -> Iterator[str]:
        """The reply's text in pieces. ``probe``: record the refusal's probability and the
        token log-probabilities; ``avoid``: words the reply must not use (where the
        backend can bias tokens)."""
        ...


def avoid_forms(words: Sequence[str]) -> list[str]:
    """How each of ``words`` may appear as one token: lower-case or capitalised, with or
    without a leading space."""
    return [text for w in words for form in dict.fromkeys([w, w.capitalize()])
            for text in (form, " " + form)]


def refusal_starts(refusal: str) -> list[str]:
    """The ways a reply may begin the refusal: its first word in each letter case."""
    first = refusal.split()[0] if refusal.split() else refusal
    return list(dict.fromkeys([first, first.lower(), first.capitalize(), first.upper()]))
