"""The ``openai`` backend against stub servers and a real llama.cpp server on loopback."""

import json
import time

import pytest

from rag.config import Settings
from rag.errors import GenerationError, ModelError
from rag.generators import make_generator
from rag.served import OpenAIGenerator
from tests.serving.conftest import free_port

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
