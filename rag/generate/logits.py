"""Logits processors for the backends that compute the logits in this process (llama.cpp,
transformers): the probe's recorder, fixed biases, and how llama-cpp-python takes both."""

from __future__ import annotations

import numpy as np

from rag.generate.base import Probe


class ProbeRecorder:
    """A logits processor (numpy scores over the vocabulary, one call per step) that fills
    a ``Probe``: ``refusal_ids`` are the token ids that begin the refusal."""

    def __init__(self, probe: Probe, refusal_ids: set[int]) -> None:
        self.probe = probe
        self.refusal_ids = sorted(refusal_ids)
        self._prev: np.ndarray | None = None  # last step's log-probabilities
        self._n_prompt: int | None = None

    def __call__(self, input_ids, scores):
        logp = _log_softmax(np.asarray(scores, np.float64))
        if self._n_prompt is None:
            self._n_prompt = len(input_ids)
            if self.refusal_ids:
                self.probe.p_refusal = float(np.exp(logp[self.refusal_ids]).sum())
                if self.probe.suppress:
                    scores[self.refusal_ids] = -np.inf
                    self.probe.suppressed = True
        elif self._prev is not None and len(input_ids) > self._n_prompt:
            self.probe.logprobs.append(float(self._prev[int(input_ids[-1])]))
        self._prev = logp
        return scores


class BiasProcessor:
    """A logits processor that adds fixed biases (token id -> logit change) at every step,
    as llama.cpp's ``logit_bias`` does."""

    def __init__(self, bias: dict[int, float]) -> None:
        self.ids = np.array(sorted(bias), dtype=np.intp)
        self.values = np.array([bias[i] for i in sorted(bias)], dtype=np.float32)

    def __call__(self, input_ids, scores):
        scores[self.ids] += self.values
        return scores


def llama_sampling(processors: list | None, bias: dict[int, float] | None) -> dict:
    """The ``logits_processor`` and ``logit_bias`` arguments for llama-cpp-python. Given
    both, llama-cpp-python 0.3.36 drops both (``LogitsProcessorList.extend`` returns None,
    so the call runs with no processor at all): the bias then goes into the processor
    list instead, after the others, which see the logits before it."""
    if processors and bias:
        from llama_cpp import LogitsProcessorList

        return {"logits_processor": LogitsProcessorList([*processors, BiasProcessor(bias)]),
                "logit_bias": None}
    return {"logits_processor": processors or None, "logit_bias": bias or None}


def _log_softmax(x: np.ndarray) -> np.ndarray:
    m = x[np.isfinite(x)].max()
    return x - (m + np.log(np.exp(x - m).sum()))
