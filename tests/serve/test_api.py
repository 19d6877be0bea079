"""The HTTP API (serve.api) over a fakes-based pipeline, through FastAPI's TestClient."""

import json
import threading
import time

import pytest
from fastapi.testclient import TestClient  # noqa: E402

from rag.config import Settings  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from serve.api import create_app  # noqa: E402
from tests.conftest import DHSC_DOC, NHS_CORPUS  # noqa: E402
from tests.fakes import HashEmbedder, ScriptedGenerator, always_answer  # noqa: E402

REPLY = "No. The DHSC told Healthcare IT News there were no plans and no need [1]."
Q = "Did the health department confirm the taskforce?"


def fake_pipeline(index_dir, reply: str = REPLY, generator=None) -> Pipeline:
    pipe = Pipeline(Settings(corpus=NHS_CORPUS, index=index_dir), embedder=HashEmbedder(),
                    generator=generator or ScriptedGenerator(reply, cite_best=True))
    pipe.index()
    return pipe


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return fake_pipeline(tmp_path_factory.mktemp("api-idx"))


@pytest.fixture(scope="module")
def client(pipe):
    return TestClient(create_app(pipe))


def test_ask_returns_exactly_the_cli_answer_object(client, pipe):
    r = client.post("/v1/ask", json={"question": Q, "k": 4})
    assert r.status_code == 200
    body = r.json()
    expected = pipe.ask(Q, k=4).to_dict()
    assert set(body) == set(expected)
    for key in ("answer", "refused", "citations", "retrieved", "sentences", "mode"):
        assert body[key] == expected[key]
    assert not body["refused"] and body["citations"][0]["doc"] == DHSC_DOC
    text = (NHS_CORPUS / DHSC_DOC).read_text(encoding="utf-8")
    for c in body["citations"]:
        assert text[c["start"]:c["end"]] == c["text"]
    assert len(body["retrieved"]) == 4


def test_naive_mode(client):
    assert client.post("/v1/ask", json={"question": Q, "answer_mode": "naive"}
                       ).json()["mode"] == "naive"


@pytest.mark.parametrize("body,status,fragment", [
    ({"question": "   "}, 400, "the question is empty"),
    ({}, 422, "question: Field required"),
    ({"question": Q, "k": 0}, 422, "k: Input should be greater than or equal to 1"),
    ({"question": Q, "answer_mode": "wild"}, 422, "answer_mode"),
    ({"question": Q, "extra": 1}, 422, "extra"),
])
def test_bad_requests_get_a_clear_message(client, body, status, fragment):
    r = client.post("/v1/ask", json=body)
    assert r.status_code == status
    assert fragment in r.json()["detail"] and "\n" not in r.json()["detail"]


def test_malformed_json_is_422(client):
    r = client.post("/v1/ask", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422 and "invalid request" in r.json()["detail"]


def test_chat_completion_carries_answer_and_citations(client):
    r = client.post("/v1/chat/completions", json={
        "model": "anything", "temperature": 0.3,
        "messages": [{"role": "system", "content": "be brief"},
                     {"role": "user", "content": "What did the health department say?"},
                     {"role": "assistant", "content": "It denied the plans."},
                     {"role": "user", "content": [{"type": "text", "text": Q}]}]})
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    content = body["choices"][0]["message"]["content"]
    assert "[1]" in content and body["refused"] is False
    assert body["citations"][0]["n"] == 1 and body["citations"][0]["doc"] == DHSC_DOC


def test_chat_stream_is_openai_sse_with_a_final_citation_chunk(client):
    plain = client.post("/v1/chat/completions",
                        json={"messages": [{"role": "user", "content": Q}]}).json()
    with client.stream("POST", "/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": Q}], "stream": True}
                       ) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    chunks = [json.loads(ln[6:]) for ln in lines[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop"
    assert last["citations"] == plain["citations"] and last["refused"] is False


def test_chat_without_a_user_message_or_with_an_empty_one_is_400(client):
    r = client.post("/v1/chat/completions",
                    json={"messages": [{"role": "system", "content": "hi"}]})
    assert r.status_code == 400 and "no user message" in r.json()["detail"]
    r = client.post("/v1/chat/completions",
                    json={"messages": [{"role": "user", "content": ""}], "stream": True})
    assert r.status_code == 400 and "empty" in r.json()["detail"]
    assert client.post("/v1/chat/completions", json={"messages": []}).status_code == 422


def test_health_and_openapi(client, pipe):
    h = client.get("/v1/health").json()
    assert h == {"status": "ok", "index": str(pipe.settings.index_path), "index_ready": True,
                 "model": "test/scripted", "version": "1",
                 "queue": {"waiting": 0, "limit": 32, "slots": 1}}
    schema = client.get("/openapi.json").json()
    assert {"/v1/ask", "/v1/chat/completions", "/v1/health"} <= set(schema["paths"])
    ask = schema["paths"]["/v1/ask"]["post"]
    assert ask["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/AnswerOut")
    assert client.get("/docs").status_code == 200


def test_bearer_token(pipe):
    c = TestClient(create_app(pipe, token="s3cret"))
    assert c.post("/v1/ask", json={"question": Q}).status_code == 401
    assert c.post("/v1/ask", json={"question": Q},
                  headers={"Authorization": "Bearer nope"}).status_code == 401
    assert c.post("/v1/ask", json={"question": Q},
                  headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert c.get("/v1/health").status_code == 200


def test_missing_index_is_503_with_the_fix(tmp_path):
    pipe = Pipeline(Settings(corpus=NHS_CORPUS, index=tmp_path / "none"),
                    embedder=HashEmbedder(), generator=ScriptedGenerator(REPLY))
    r = TestClient(create_app(pipe)).post("/v1/ask", json={"question": Q})
    assert r.status_code == 503 and "rag index" in r.json()["detail"]


class SlowGenerator(ScriptedGenerator):
    """Fails loudly if two generations overlap."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.active = 0
        self.overlaps = 0

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        self.active += 1
        self.overlaps += self.active > 1
        time.sleep(0.05)
        yield from super().stream(messages, max_tokens, temperature, stop)
        self.active -= 1


def test_concurrent_requests_queue(tmp_path):
    gen = SlowGenerator(REPLY)
    client = TestClient(create_app(fake_pipeline(tmp_path / "idx", generator=gen)))
    results: list[int] = []

    def call(stream: bool) -> None:
        r = client.post("/v1/chat/completions" if stream else "/v1/ask",
                        json={"messages": [{"role": "user", "content": Q}], "stream": True}
                        if stream else {"question": Q})
        results.append(r.status_code)

    threads = [threading.Thread(target=call, args=(i % 2 == 0,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    # six answers, each a yes/no draft read once more by the model, one call at a time
    assert results == [200] * 6 and gen.overlaps == 0 and len(gen.messages) == 12


class GatedGenerator(ScriptedGenerator):
    """Holds the model until ``gate`` is set; ``started`` tells that it holds it."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.gate = threading.Event()
        self.started = threading.Event()

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        self.started.set()
        assert self.gate.wait(30), "the test never opened the gate"
        yield from super().stream(messages, max_tokens, temperature, stop)


FERRY = "When does the ferry to the island leave?"
FERRY_REPLY = "The ferry to the island leaves at noon every day [1]."


def ferry_pipeline(tmp_path, generator, **settings) -> Pipeline:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text("Ferry timetable\n\nThe ferry to the island leaves at "
                                      "noon every day. Tickets cost four pounds.\n")
    (corpus / "bus.txt").write_text("Night buses\n\nThe night bus was cancelled by the "
                                    "council in May.\n")
    pipe = Pipeline(Settings(corpus=corpus, index=tmp_path / "idx", **settings),
                    embedder=HashEmbedder(), generator=generator,
                    decision=always_answer())
    pipe.index()
    return pipe


def _sse(client, question=FERRY):
    """The parsed chunks of one streamed chat completion."""
    with client.stream("POST", "/v1/chat/completions",
                       json={"messages": [{"role": "user", "content": question}],
                             "stream": True}) as r:
        assert r.status_code == 200, r.read()
        lines = [ln for ln in r.iter_lines() if ln]
    assert lines[-1] == "data: [DONE]"
    return [json.loads(ln[6:]) for ln in lines[:-1]]


def test_stream_sends_the_sources_before_the_answer(tmp_path):
    client = TestClient(create_app(ferry_pipeline(tmp_path, ScriptedGenerator(FERRY_REPLY))))
    chunks = _sse(client)
    kinds = ["sources" if "sources" in c else "content" if c["choices"][0]["delta"].get(
        "content") else "other" for c in chunks]
    assert "sources" in kinds and kinds.index("sources") < kinds.index("content")
    sources = next(c["sources"] for c in chunks if "sources" in c)
    assert sources and {"doc", "start", "end", "text", "score"} <= set(sources[0])
    assert sources[0]["doc"] == "ferry.txt"


def test_full_queue_is_503_with_retry_after_and_waiting_clients_see_their_place(tmp_path):
    gen = GatedGenerator(FERRY_REPLY)
    pipe = ferry_pipeline(tmp_path, gen, queue_limit=1)
    client = TestClient(create_app(pipe))
    first: list = []
    holder = threading.Thread(target=lambda: first.append(
        client.post("/v1/ask", json={"question": FERRY})))
    holder.start()
    assert gen.started.wait(10)
    second: list = []
    waiter = threading.Thread(target=lambda: second.append(_sse(client)))
    waiter.start()
    deadline = time.monotonic() + 10
    while pipe.queue.waiting < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert client.get("/v1/health").json()["queue"] == {"waiting": 1, "limit": 1, "slots": 1}
    for body in ({"question": FERRY}, {"messages": [{"role": "user", "content": FERRY}],
                                       "stream": True}):
        path = "/v1/ask" if "question" in body else "/v1/chat/completions"
        r = client.post(path, json=body)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1
        assert "busy" in r.json()["detail"]
    gen.gate.set()
    holder.join(30)
    waiter.join(30)
    assert first[0].status_code == 200
    chunks = second[0]
    positions = [c["queue_position"] for c in chunks if "queue_position" in c]
    assert positions and positions[0] == 1
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert pipe.queue.admitted == 0 and pipe.queue.waiting == 0


def test_ask_gives_the_page_of_a_pdf_citation(tmp_path):
    from tests import docfiles

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    docfiles.write_pdf(corpus / "dome.pdf", [["Observatory report."], ["Visitors rose."],
                                             ["The observatory dome was repainted green."]])
    (corpus / "bus.txt").write_text("The night bus was cancelled by the council in May.\n")
    pipe = Pipeline(Settings(corpus=corpus, index=tmp_path / "idx"), embedder=HashEmbedder(),
                    generator=ScriptedGenerator("The observatory dome was repainted green "
                                                "[1].", cite_best=True),
                    decision=always_answer())
    pipe.index()
    body = TestClient(create_app(pipe)).post(
        "/v1/ask", json={"question": "What colour was the observatory dome repainted?"}).json()
    c = body["citations"][0]
    assert (c["doc"], c["page"]) == ("dome.pdf", 3)
    assert "dome.pdf · page 3" in c["provenance"]
    assert {p["doc"]: p["page"] for p in body["retrieved"]} == {"dome.pdf": 1, "bus.txt": None}
    schema = TestClient(create_app(pipe)).get("/openapi.json").json()["components"]["schemas"]
    assert "page" in schema["CitationOut"]["properties"]
