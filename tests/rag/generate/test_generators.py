"""The probe on real generators: the first step's refusal probability, its suppression and
the token log-probabilities, read by a logits processor during the one generation."""

import math
import re

import numpy as np
import pytest

from rag.generate.base import Probe, refusal_starts
from rag.generate.logits import BiasProcessor, ProbeRecorder, llama_sampling
from rag.generate.prompts import REFUSAL_TOKEN, verified_messages
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
    messages = [{"role": "user", "content": "Repeat this sentence exactly: The keeper of "
                                            "the lighthouse rang the bell at noon."}]
    plain = "".join(small_generator.stream(messages, max_tokens=24))
    kept_out = "".join(small_generator.stream(messages, max_tokens=24, avoid=["the"]))
    assert re.search(r"\bthe\b", plain, re.I)
    assert kept_out.strip() and not re.search(r"\bthe\b", kept_out, re.I), kept_out


def test_a_bias_beside_processors_goes_into_the_processor_list():
    rec = ProbeRecorder(Probe(REFUSAL_TOKEN), {2})
    args = llama_sampling([rec], {1: -100.0})
    assert args["logit_bias"] is None and list(args["logits_processor"])[0] is rec
    bias = list(args["logits_processor"])[1]
    assert isinstance(bias, BiasProcessor)
    scores = bias([0], np.zeros(3, np.float32))
    assert list(scores) == [0.0, -100.0, 0.0]
    assert llama_sampling(None, {1: -1.0}) == {"logits_processor": None,
                                               "logit_bias": {1: -1.0}}
    assert llama_sampling([rec], None)["logit_bias"] is None


REPEAT = [{"role": "user", "content": "Repeat this sentence exactly: The keeper of the "
                                      "lighthouse rang the bell at noon."}]


@pytest.mark.model
def test_llama_cpp_drops_a_processor_and_a_bias_given_together(small_generator):
    """Why ``llama_sampling`` exists: llama-cpp-python 0.3.36, given both, runs with
    neither (``LogitsProcessorList.extend`` returns None). If this fails, the library
    was fixed and the guard may go."""
    from llama_cpp import LogitsProcessorList

    probe = Probe(REFUSAL_TOKEN)
    rec = ProbeRecorder(probe, small_generator.refusal_ids(REFUSAL_TOKEN))
    bias = small_generator.avoid_ids(["the"])
    with small_generator._lock:
        out = small_generator._llm.create_chat_completion(
            messages=REPEAT, max_tokens=24, temperature=0.0, top_k=1,
            logits_processor=LogitsProcessorList([rec]), logit_bias=bias)
    assert probe.p_refusal is None  # the processor never ran
    assert re.search(r"\bthe\b", out["choices"][0]["message"]["content"], re.I)


@pytest.mark.model
def test_a_probe_and_avoided_words_both_take_effect(small_generator):
    probe = Probe(REFUSAL_TOKEN)
    reply = "".join(small_generator.stream(REPEAT, max_tokens=24, probe=probe,
                                           avoid=["the"]))
    assert probe.p_refusal is not None and probe.suppressed and probe.logprobs
    assert reply.strip() and not re.search(r"\bthe\b", reply, re.I), reply
