"""Beyond one machine, end to end with real models (default test run, ~1 minute each):
the index in Qdrant local mode, the model behind a real llama.cpp server on loopback,
and the HTTP API served by uvicorn on loopback."""

import json
import threading

import httpx
import pytest

from index import vectorstores
from index.builder import build_index
from rag.config import Settings
from rag.pipeline import Pipeline
from rag.served import OpenAIGenerator
from tests.conftest import DHSC_DOC, NHS_CORPUS
from tests.serving.conftest import free_port, wait_for

pytestmark = pytest.mark.model
Q = "Did the health department confirm the taskforce?"


def assert_cited_exactly(answer: dict) -> None:
    assert not answer["refused"], answer["refusal_reason"]
    assert answer["citations"], answer
    assert any(c["doc"] == DHSC_DOC for c in answer["citations"])
    for c in answer["citations"]:
        with open(NHS_CORPUS / c["doc"], encoding="utf-8", newline="") as f:
            assert f.read()[c["start"]:c["end"]] == c["text"]


def test_qdrant_local_mode_end_to_end(tmp_path, real_embedder, small_generator):
    pytest.importorskip("qdrant_client")
    idx = tmp_path / "idx"
    try:
        report = build_index(NHS_CORPUS, idx, real_embedder,
                             store_spec=vectorstores.qdrant_spec(idx))
        assert report.total_chunks > 0 and (idx / "qdrant").is_dir()
        pipe = Pipeline(Settings(corpus=NHS_CORPUS, index=idx, max_tokens=64),
                        embedder=real_embedder,
                        generator=small_generator)
        assert pipe.retriever.data.vectors.kind == "qdrant"
        assert_cited_exactly(pipe.ask(Q).to_dict())
    finally:
        vectorstores.close_clients()


@pytest.fixture(scope="module")
def served_pipeline(real_index, real_embedder, llama_server):
    gen = OpenAIGenerator(llama_server, "smollm2-135m", timeout=60)
    return Pipeline(Settings(corpus=NHS_CORPUS, index=real_index, max_tokens=64),
                    embedder=real_embedder,
                    generator=gen)


def test_llama_cpp_server_drives_the_pipeline(served_pipeline):
    assert_cited_exactly(served_pipeline.ask(Q).to_dict())


def test_http_api_on_loopback_with_real_models(served_pipeline):
    pytest.importorskip("uvicorn")
    import uvicorn

    from rag.api import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(served_pipeline, token="t0k"),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/v1/health", timeout=30)
        auth = {"Authorization": "Bearer t0k"}
        r = httpx.post(f"{base}/v1/ask", json={"question": Q}, headers=auth, timeout=120)
        assert r.status_code == 200
        assert_cited_exactly(r.json())

        events = []
        with httpx.stream("POST", f"{base}/v1/chat/completions", headers=auth, timeout=120,
                          json={"messages": [{"role": "user", "content": Q}],
                                "stream": True}) as s:
            assert s.status_code == 200
            events = [ln[6:] for ln in s.iter_lines() if ln.startswith("data: ")]
        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        final = chunks[-1]
        assert final["choices"][0]["finish_reason"] == "stop" and final["citations"]
        assert "[1]" in text or "[2]" in text
        assert_cited_exactly({"refused": final["refused"], "refusal_reason": "",
                              "citations": final["citations"]})
    finally:
        server.should_exit = True
        thread.join(10)
