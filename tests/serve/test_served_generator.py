"""The ``openai`` backend against stub servers and a real llama.cpp server on loopback."""

import json
import math
import time

import pytest

from rag.config import Settings
from rag.errors import GenerationError, ModelError
from rag.generate.backends import make_generator, served_generator
from rag.generate.base import Probe
from rag.generate.prompts import REFUSAL_TOKEN, verified_messages
from rag.generate.served import NO_LOGPROBS, NO_TOKENIZER, OpenAIGenerator
from rag.types import Evidence
from tests.serve.conftest import free_port

MESSAGES = [{"role": "user", "content": "Say hello."}]


def _chunks(*pieces: str) -> list[str]:
    events = [json.dumps({"object": "chat.completion.chunk",
                          "choices": [{"index": 0, "delta": {"content": p}}]})
              for p in pieces]
    return events + ["[DONE]"]


def test_streams_pieces_and_sends_the_openai_request(stub_server):
    server = stub_server(lambda path, body: (200, {}, _chunks("Hel", "lo", " [1].")))
    gen = OpenAIGenerator(server.url, "my-model")
    assert "".join(gen.stream(MESSAGES, max_tokens=7, stop=["\n\n"])) == "Hello [1]."
    assert server.requests == [("POST", "/v1/chat/completions")]


def test_server_down_is_a_clear_error_quickly():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    gen = OpenAIGenerator(url, "m", retries=2, backoff=0.05)
    t = time.perf_counter()
    with pytest.raises(GenerationError) as err:
        list(gen.stream(MESSAGES))
    assert time.perf_counter() - t < 5
    msg = str(err.value)
    assert url in msg and "3 attempts" in msg and "--llm-url" in msg and "\n" not in msg
    with pytest.raises(GenerationError, match="not reachable"):
        gen.warm_up()


def test_500_is_retried_a_bounded_number_of_times_then_a_clear_error(stub_server):
    server = stub_server(lambda path, body: (500, {}, {"error": {"message": "CUDA OOM"}}))
    gen = OpenAIGenerator(server.url, "m", retries=2, backoff=0.01)
    with pytest.raises(GenerationError, match=r"failed after 3 attempts \(HTTP 500: CUDA OOM"):
        list(gen.stream(MESSAGES))
    assert len(server.requests) == 3


def test_500_then_success_recovers(stub_server):
    calls = []

    def handler(path, body):
        calls.append(path)
        return (503, {}, b"busy") if len(calls) == 1 else (200, {}, _chunks("ok"))

    gen = OpenAIGenerator(stub_server(handler).url, "m", retries=1, backoff=0.01)
    assert "".join(gen.stream(MESSAGES)) == "ok"


def test_4xx_is_not_retried_and_names_the_model(stub_server):
    server = stub_server(lambda path, body: (404, {}, {"error": "model 'x' not found"}))
    with pytest.raises(GenerationError, match=r"HTTP 404: model 'x' not found.*--model 'x'"):
        list(OpenAIGenerator(server.url, "x", retries=3, backoff=0.01).stream(MESSAGES))
    assert len(server.requests) == 1


def test_error_event_mid_stream_is_reported(stub_server):
    events = _chunks("a")[:1] + [json.dumps({"error": {"message": "context overflow"}})]
    server = stub_server(lambda path, body: (200, {}, events))
    with pytest.raises(GenerationError, match="context overflow"):
        list(OpenAIGenerator(server.url, "m").stream(MESSAGES))


def test_a_silent_server_times_out_instead_of_hanging(stub_server):
    def handler(path, body):
        time.sleep(2)
        return 200, {}, _chunks("late")

    gen = OpenAIGenerator(stub_server(handler).url, "m", timeout=0.5)
    with pytest.raises(GenerationError, match="sent nothing for"):
        list(gen.stream(MESSAGES))


def test_backend_needs_a_url_and_reads_it_from_the_settings(monkeypatch):
    with pytest.raises(ModelError, match="--llm-url"):
        make_generator("m", "openai")
    monkeypatch.setenv("RAG_LLM_URL", "http://127.0.0.1:1/v1")
    gen = make_generator("m", "openai")
    assert isinstance(gen, OpenAIGenerator) and gen.url == "http://127.0.0.1:1/v1"
    assert Settings(backend="openai").backend == "openai"


@pytest.mark.model
def test_real_llama_cpp_server_streams_text(llama_server):
    gen = OpenAIGenerator(llama_server, "smollm2-135m")
    gen.warm_up()
    text = "".join(gen.stream(MESSAGES, max_tokens=8))
    assert text.strip()


# ---- the probe: log-probabilities and the refusal's first token ----------------------
def _probed(*pieces: str, logprobs: bool = True) -> list[str]:
    """A stream whose first piece comes with its top alternatives (the refusal's start
    "NOT" at 0.25) when ``logprobs``."""
    def entry(p):
        return {"content": [{"token": p, "logprob": -0.5, "top_logprobs": [
            {"token": p, "logprob": -0.5}, {"token": "NOT", "logprob": math.log(0.25)}]}]}
    events = [json.dumps({"choices": [{"index": 0, "delta": {"content": p},
                                       "logprobs": entry(p) if logprobs else None}]})
              for p in pieces]
    return events + ["[DONE]"]


def _server(stub_server, tokenize: bool = True, logprobs: bool = True):
    bodies = []

    def handler(path, body):
        if path == "/extras/tokenize":
            if not tokenize:
                return 404, {}, {"detail": "Not Found"}
            ids = {"": [], "NOT": [18083, 5], "not": [451], "Not": [2749]}
            return 200, {}, {"tokens": ids[body["input"]]}
        if path == "/tokenize":
            return 404, {}, {"detail": "Not Found"}
        bodies.append(body)
        return 200, {}, _probed("The", " bridge [1].", logprobs=logprobs)

    return stub_server(handler), bodies


def test_the_refusal_start_is_taken_away_by_the_servers_own_token_ids(stub_server):
    server, bodies = _server(stub_server)
    gen = OpenAIGenerator(server.url, "m")
    probe = Probe(REFUSAL_TOKEN)
    assert "".join(gen.stream(MESSAGES, probe=probe)) == "The bridge [1]."
    assert bodies[0]["logit_bias"] == {"18083": -100.0, "451": -100.0, "2749": -100.0}
    assert bodies[0]["logprobs"] is True and bodies[0]["top_logprobs"] == 20
    assert probe.suppressed and probe.p_refusal == pytest.approx(0.25) and not probe.note
    assert probe.logprobs == [-0.5, -0.5]
    plain = Probe(REFUSAL_TOKEN, suppress=False)
    list(gen.stream(MESSAGES, probe=plain))
    assert "logit_bias" not in bodies[1] and not plain.suppressed


def test_a_server_without_token_ids_says_it_cannot_suppress(stub_server, caplog):
    server, bodies = _server(stub_server, tokenize=False)
    probe = Probe(REFUSAL_TOKEN)
    list(OpenAIGenerator(server.url, "m").stream(MESSAGES, probe=probe))
    assert "logit_bias" not in bodies[0]
    assert not probe.suppressed and probe.p_refusal == pytest.approx(0.25)
    assert probe.note == NO_TOKENIZER and NO_TOKENIZER in caplog.text


def test_token_ids_are_asked_again_after_the_server_was_unreachable():
    gen = OpenAIGenerator(f"http://127.0.0.1:{free_port()}/v1", "m")
    assert gen.refusal_bias(REFUSAL_TOKEN) is None
    assert REFUSAL_TOKEN not in gen._refusal_ids  # not remembered as "no tokenizer"


def test_a_server_without_logprobs_answers_unsuppressed_with_a_named_fallback(stub_server):
    server, bodies = _server(stub_server, logprobs=False)
    gen = OpenAIGenerator(server.url, "m")
    probe = Probe(REFUSAL_TOKEN)
    assert "".join(gen.stream(MESSAGES, probe=probe)) == "The bridge [1]."
    # asked with the bias, no log-probabilities came back: asked again without it
    assert "logit_bias" in bodies[0] and "logit_bias" not in bodies[1]
    assert probe.p_refusal is None and not probe.suppressed and probe.note == NO_LOGPROBS
    assert gen.logprobs is False
    again = Probe(REFUSAL_TOKEN)
    list(gen.stream(MESSAGES, probe=again))
    assert len(bodies) == 3 and "logit_bias" not in bodies[2] and again.note == NO_LOGPROBS


def test_the_api_key_is_a_secret_sent_only_as_the_bearer_token(stub_server):
    seen = []
    server = stub_server(lambda path, body: (200, {}, _chunks("ok")))
    original = server.handler

    def handler(path, body):
        seen.append(path)
        return original(path, body)

    server.handler = handler
    s = Settings(llm_url=server.url, model="m", llm_api_key="k3y-s3cret")
    assert "k3y-s3cret" not in repr(s) and "k3y-s3cret" not in str(s.model_dump(mode="json"))
    gen = served_generator(s)
    assert gen._headers == {"Authorization": "Bearer k3y-s3cret"}
    assert "".join(gen.stream(MESSAGES)) == "ok" and seen == ["/v1/chat/completions"]


@pytest.mark.model
def test_a_real_llama_cpp_server_gives_the_first_step_probability_and_suppresses_it(
        llama_server):
    """The mechanism on llama-cpp-python's server, with "The" standing in for the refusal
    (SmolLM2 seldom begins with NOT, but begins this reply with "The"): its ids come from
    the server's tokenizer, the bias takes it away, and its probability is read as it was
    before the bias."""
    evidence = [Evidence(1, "a.txt", "A", 0, 60,
                         "The Tollan bridge was opened in 1904 by Mayor Ruth Ames.", 1.0)]
    messages = verified_messages("What colour is the Tollan bridge?", evidence)
    gen = OpenAIGenerator(llama_server, "smollm2-135m")
    plain = Probe("The answer", suppress=False)
    first = "".join(gen.stream(messages, max_tokens=12, probe=plain))
    assert first.startswith("The") and 0.2 < plain.p_refusal < 1.0, (first, plain)
    assert plain.logprobs and not plain.suppressed
    probe = Probe("The answer")
    reply = "".join(gen.stream(messages, max_tokens=12, probe=probe))
    assert probe.suppressed and not probe.note, probe.note
    assert probe.p_refusal == pytest.approx(plain.p_refusal, abs=1e-3)  # before the bias
    assert reply.strip() and not reply.lower().startswith("the"), reply
    assert gen.refusal_bias(REFUSAL_TOKEN)  # and the real refusal has its ids too
