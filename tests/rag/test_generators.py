"""The probe on real generators: the first step's refusal probability, its suppression and
the token log-probabilities, read by a logits processor during the one generation."""

import math

import numpy as np
import pytest

from rag.generators import Probe, ProbeRecorder, refusal_starts
from rag.prompts import REFUSAL_TOKEN, verified_messages
from rag.types import Evidence

EVIDENCE = [Evidence(1, "a.txt", "A", 0, 60,
                     "The Tollan bridge was opened in 1904 by Mayor Ruth Ames.", 1.0)]


def test_refusal_starts_cover_the_letter_cases():
    assert refusal_starts("NOT IN DOCUMENTS") == ["NOT", "not", "Not"]


def test_the_recorder_reads_and_suppresses_the_first_step_only():
    probe = Probe("NOT IN DOCUMENTS")
    rec = ProbeRecorder(probe, {2})
    scores = np.log(np.array([0.1, 0.2, 0.7], np.float32))
    out = rec([5, 6], scores.copy())
    assert probe.p_refusal == pytest.approx(0.7, abs=1e-6)
    assert out[2] == -np.inf and probe.suppressed
    second = rec([5, 6, 1], np.log(np.array([0.5, 0.25, 0.25], np.float32)))
    assert np.isfinite(second).all()  # later steps are left alone
    # the chosen first token (1) is scored under the distribution before suppression
    assert probe.logprobs == [pytest.approx(math.log(0.2), abs=1e-6)]


@pytest.mark.model
def test_a_real_model_reports_the_refusal_and_answers_instead(small_generator):
    probe = Probe(REFUSAL_TOKEN)
    messages = verified_messages("What colour is the Tollan bridge?", EVIDENCE)
    reply = "".join(small_generator.stream(messages, max_tokens=24, probe=probe))
    assert probe.suppressed and 0.0 < probe.p_refusal < 1.0
    assert not reply.upper().startswith("NOT")
    assert probe.logprobs and all(lp <= 0.0 for lp in probe.logprobs)
    plain = Probe(REFUSAL_TOKEN, suppress=False)
    again = "".join(small_generator.stream(messages, max_tokens=24, probe=plain))
    assert plain.p_refusal == pytest.approx(probe.p_refusal, abs=1e-3)
    assert not plain.suppressed and isinstance(again, str)


def test_a_real_model_keeps_the_avoided_words_out(small_generator):
    import re

    messages = [{"role": "user", "content": "Repeat this sentence exactly: The keeper of "
                                            "the lighthouse rang the bell at noon."}]
    plain = "".join(small_generator.stream(messages, max_tokens=24))
    kept_out = "".join(small_generator.stream(messages, max_tokens=24, avoid=["the"]))
    assert re.search(r"\bthe\b", plain, re.I)
    assert kept_out.strip() and not re.search(r"\bthe\b", kept_out, re.I), kept_out
