"""Tiny deterministic stand-ins for plumbing tests. Capabilities are also tested on the
real models (see the ``model`` marker)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator

import numpy as np

from index.text import content_tokens


class HashEmbedder:
    """Bag of stemmed words hashed into ``dim`` buckets, L2-normalised. Texts sharing
    words get similar vectors, so retrieval tests are meaningful and repeatable."""

    def __init__(self, dim: int = 64, name: str = "test/hash-embedder") -> None:
        self.name = name
        self._dim = dim
        self.calls = 0
        self.embedded = 0

    @property
    def dim(self) -> int:
        return self._dim

    def warm_up(self) -> None:
        pass

    def _vec(self, text: str) -> np.ndarray:
        v = np.zeros(self._dim, dtype=np.float32)
        for tok in content_tokens(text) or ["<empty>"]:
            h = int(hashlib.md5(tok.encode()).hexdigest(), 16)
            v[h % self._dim] += 1.0
        return v / np.linalg.norm(v)

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        self.embedded += len(texts)
        if not texts:
            return np.zeros((0, self._dim), np.float32)
        return np.vstack([self._vec(t) for t in texts])

    def embed_query(self, text: str) -> np.ndarray:
        return self._vec(text)


class ScriptedGenerator:
    """Replies with a fixed text, in pieces, whatever the prompt: for testing what the
    pipeline does with a model's output. Records the messages it was sent. With
    ``p_refusal`` it reports that first-step probability to a probe, as a model would;
    with ``cite_best`` its "[1]" points at the prompt's line it copies from."""

    def __init__(self, reply: str, name: str = "test/scripted",
                 p_refusal: float | None = None, cite_best: bool = False) -> None:
        self.reply = reply
        self.cite_best = cite_best
        self.name = name
        self.p_refusal = p_refusal
        self.messages: list = []
        self.max_tokens: int | None = None

    def warm_up(self) -> None:
        pass

    def stream(self, messages, max_tokens: int = 200, temperature: float = 0.0,
               stop=None, probe=None) -> Iterator[str]:
        self.messages.append(messages)
        self.max_tokens = max_tokens
        reply = (cite_best_line(self.reply, messages[-1]["content"]) if self.cite_best
                 else self.reply)
        pieces = [reply[i:i + 4] for i in range(0, len(reply), 4)]
        if probe is not None and self.p_refusal is not None:
            probe.p_refusal, probe.suppressed = self.p_refusal, True
            probe.logprobs.extend([-0.1] * len(pieces))
        yield from pieces


def always_answer():
    """A decision that answers whatever the signals (plumbing tests of other parts)."""
    from rag.grounding.decision import DecisionModel

    return DecisionModel(("support",), (0.0,), (1.0,), (0.0,), 10.0, threshold=0.5,
                         generator="test/scripted")


def never_answer():
    """A decision that refuses whatever the signals."""
    from rag.grounding.decision import DecisionModel

    return DecisionModel(("support",), (0.0,), (1.0,), (0.0,), -10.0, threshold=0.5,
                         generator="test/scripted")


class ChatGenerator(ScriptedGenerator):
    """A scripted model that also rewrites follow-up questions: the rewrite prompt
    (rag.answer.conversation) gets ``rewrite``, every other prompt ``reply`` (a list: one after the
    other, the last one repeated)."""

    def __init__(self, reply: str | list[str], rewrite: str, **kw) -> None:
        self.replies = list(reply) if isinstance(reply, list) else [reply]
        super().__init__(self.replies[0], cite_best=True, **kw)
        self.rewrite = rewrite
        self.rewrites: list = []
        self.avoided: list = []  # the words each rewrite was to avoid

    def stream(self, messages, max_tokens: int = 200, temperature: float = 0.0,
               stop=None, probe=None, avoid=None) -> Iterator[str]:
        from rag.answer.conversation import CONDENSE_SYSTEM

        if messages[0]["content"] == CONDENSE_SYSTEM:
            self.rewrites.append(messages)
            self.avoided.append(list(avoid or []))
            yield from (self.rewrite[i:i + 4] for i in range(0, len(self.rewrite), 4))
            return
        self.reply = self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]
        yield from super().stream(messages, max_tokens, temperature, stop, probe)


def cite_best_line(reply: str, prompt: str) -> str:
    """``reply`` with its "[1]" pointing at the prompt's numbered line that shares the most
    words with it, as a model that cites the sentence it copies would."""
    words = set(re.findall(r"\w+", reply.lower()))
    lines = re.findall(r"^\[(\d+)\] (.*)$", prompt, re.M)
    if "[1]" not in reply or not lines:
        return reply
    n, _ = max(lines, key=lambda nl: len(words & set(re.findall(r"\w+", nl[1].lower()))))
    return reply.replace("[1]", f"[{n}]")
