"""The configuration matrix: every store, path, shell and generator a user can pick
answers one question about data/nhs with a verified citation (not refused, citing the
DHSC article, each citation's text exactly the document's characters at its span).

    store      folder index | Qdrant local mode | pgvector on a real local PostgreSQL
    path       the background worker | the shell's own process
    shell      rag ask | rag chat (piped) | POST /v1/ask | POST /v1/chat/completions |
               the Gradio API (gradio_client)
    generator  SmolLM2 through llama.cpp in-process | SmolLM2 served by
               ``python -m llama_cpp.server`` through the OpenAI-compatible backend

Not the full cross product: each value of each axis, and the set-ups docs/deploy.md
walks through (PostgreSQL with the worker for ``rag ask`` and ``rag chat``, ``rag api``
with a served model; a served model through the worker). Worker cells run the real
``rag`` command in a subprocess and share one worker (one data home for the module);
in-process cells drive the same command objects in this process, over the session's
models. The walk-through of docs/deploy.md is one test, its commands as written there.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from index.builder import build_index
from index.stores.vectors import close_clients, qdrant_spec
from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import DHSC_DOC, NHS_CORPUS, REPO
from tests.serve.conftest import free_port, wait_for
from tests.workers import stop_workers

pytestmark = pytest.mark.model

Q = "Did the health department confirm the taskforce?"
DOCS_Q = "Did DHSC confirm the taskforce?"  # docs/deploy.md's question
FOLLOW = "Who denied it?"
MODEL = "smollm2-135m"


def check_cited(answer: dict, cell: str) -> None:
    """The cell's answer is an answer (not a refusal) citing the DHSC article, and every
    citation is the document's exact characters at its span."""
    assert not answer["refused"], f"{cell}: refused ({answer.get('refusal_reason')})"
    assert answer["citations"], f"{cell}: no citation in {answer['answer']!r}"
    assert any(c["doc"] == DHSC_DOC for c in answer["citations"]), (cell, answer["citations"])
    for c in answer["citations"]:
        with open(NHS_CORPUS / c["doc"], encoding="utf-8", newline="") as f:
            assert f.read()[c["start"]:c["end"]] == c["text"], (cell, c)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ---- the worker: the real command in a subprocess ------------------------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Iterator[Path]:
    """The data home of this module's worker cells: one worker, stopped at the end."""
    path = tmp_path_factory.mktemp("matrix-home")
    yield path
    stop_workers([path])


def rag(home: Path, *args: str, stdin: str | None = None, env: dict | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess:
    """``rag ARGS`` as a user runs it, through the background worker."""
    full = {k: v for k, v in os.environ.items() if k != "RAG_PG_URL"}
    full.update(RAG_HOME=str(home), HF_HUB_OFFLINE="1", RAG_WORKER="1",
                PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "cli", *args], input=stdin, text=True,
                          capture_output=True, env=full, cwd=REPO, timeout=timeout)


def worker_state(home: Path) -> dict:
    out = rag(home, "worker", "status", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def qdrant_index(tmp_path_factory, real_embedder) -> Path:
    """The NHS corpus with its vectors in Qdrant local mode, for the worker (local mode
    locks its folder: one process at a time)."""
    pytest.importorskip("qdrant_client", reason="needs pip install 'cited-rag[qdrant]'")
    idx = tmp_path_factory.mktemp("matrix-qdrant") / "idx"
    build_index(NHS_CORPUS, idx, real_embedder, store_spec=qdrant_spec(idx))
    close_clients()  # the worker opens it
    return idx


def test_worker_folder_rag_ask_llama(home, real_index):
    out = rag(home, "ask", Q, "--index", str(real_index), "--model", MODEL, "--json")
    assert out.returncode == 0, out.stderr
    check_cited(json.loads(out.stdout), "folder/worker/rag ask/llama")
    assert worker_state(home)["requests"] >= 1


def test_worker_folder_rag_chat_llama(home, real_index):
    """Two piped turns through the worker: the follow-up is rewritten with the history."""
    out = rag(home, "chat", "--index", str(real_index), "--model", MODEL, "--json",
              stdin=f"{Q}\n{FOLLOW}\n")
    assert out.returncode == 0, out.stderr
    first, follow = json_lines(out.stdout)
    check_cited(first, "folder/worker/rag chat/llama")
    assert "rewrite_s" in follow["timings"] and follow["question"] == FOLLOW
    for c in follow["citations"]:
        assert (NHS_CORPUS / c["doc"]).read_text(encoding="utf-8")[c["start"]:c["end"]] \
            == c["text"]


def test_worker_qdrant_rag_ask_llama(home, qdrant_index):
    out = rag(home, "ask", Q, "--index", str(qdrant_index), "--model", MODEL, "--json")
    assert out.returncode == 0, out.stderr
    check_cited(json.loads(out.stdout), "qdrant/worker/rag ask/llama")


def test_worker_folder_rag_ask_served(home, real_index, llama_server):
    out = rag(home, "ask", Q, "--index", str(real_index), "--llm-url", llama_server,
              "--model", MODEL, "--json")
    assert out.returncode == 0, out.stderr
    answer = json.loads(out.stdout)
    check_cited(answer, "folder/worker/rag ask/served")
    assert any(n.startswith("decision: not calibrated") for n in answer["notes"])


def test_deploy_walkthrough_through_the_worker(home, pg_server, llama_server, tmp_path):
    """docs/deploy.md, "Replicas on one PostgreSQL", as written: the index into
    PostgreSQL by RAG_PG_URL, then ``rag ask`` and ``rag chat`` (through the worker) and
    ``rag api`` on the served model, each answering with a citation; the password
    appears in no output, log or file."""
    url = pg_server.create_database("walkthrough")
    env = {"RAG_PG_URL": url}
    docs = tmp_path / "docs"
    docs.mkdir()
    for f in NHS_CORPUS.iterdir():
        (docs / f.name).write_bytes(f.read_bytes())
    out = rag(home, "index", str(docs), "--store", "pgvector", env=env)
    assert out.returncode == 0, out.stderr
    assert "(schema cited_rag): 2 added" in out.stdout
    again = rag(home, "index", str(docs), env=env)  # RAG_PG_URL set: the same index
    assert again.returncode == 0 and "2 unchanged" in again.stdout, again.stderr

    asked = rag(home, "ask", DOCS_Q, "--model", MODEL, env=env)
    assert asked.returncode == 0, asked.stderr
    cited = [ln for ln in asked.stdout.splitlines() if ln.startswith("[1] ")]
    assert cited and DHSC_DOC in cited[0], asked.stdout
    asked = rag(home, "ask", DOCS_Q, "--model", MODEL, "--json", env=env)
    check_cited(json.loads(asked.stdout), "pgvector/worker/rag ask/llama")

    chat = rag(home, "chat", "--model", MODEL, "--json", stdin=f"{DOCS_Q}\n", env=env)
    assert chat.returncode == 0, chat.stderr
    check_cited(json_lines(chat.stdout)[0], "pgvector/worker/rag chat/llama")
    state = worker_state(home)
    assert any(p["index"].startswith("postgresql://postgres@127.0.0.1:")
               for p in state["pipelines"]), state["pipelines"]

    with rag_api(home, env, "--auth", "s3cret", "--llm-url", llama_server,
                 "--model", MODEL) as base:
        auth = {"Authorization": "Bearer s3cret"}
        health = httpx.get(f"{base}/v1/health", timeout=30).json()
        assert health["index_ready"] and health["index"].endswith("(schema cited_rag)")
        r = httpx.post(f"{base}/v1/ask", json={"question": DOCS_Q}, headers=auth, timeout=300)
        assert r.status_code == 200, r.text
        check_cited(r.json(), "pgvector/rag api/v1/ask/served")
        final, text = chat_completion(base, DOCS_Q, auth)
        check_cited(final, "pgvector/rag api/v1/chat/completions/served")
        assert all(f"[{c['n']}]" in text for c in final["citations"]), text

    password = pg_server.password
    for o in (out, again, asked, chat):
        assert password not in o.stdout + o.stderr
    assert password not in json.dumps(state)
    for f in home.rglob("*"):  # the worker's log, the api's log, caches: no password
        if f.is_file() and not f.is_socket():
            assert password.encode() not in f.read_bytes(), f


@contextmanager
def rag_api(home: Path, env: dict, *args: str) -> Iterator[str]:
    """``rag api ARGS`` in a subprocess on a free port; yields its base URL."""
    port = free_port()
    full = dict(os.environ, RAG_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO),
                **env)
    log = home / f"api-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "api", "--port", str(port),
                                 *args], stdout=out, stderr=subprocess.STDOUT, env=full,
                                cwd=REPO)
    base = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for(f"{base}/v1/health", proc, timeout=180)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"rag api did not start ({exc}): {log.read_text()[-2000:]}")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)


def chat_completion(base: str, question: str, headers: dict | None = None
                    ) -> tuple[dict, str]:
    """A streamed ``/v1/chat/completions``: the final chunk (with ``citations`` and
    ``refused``) and the joined content."""
    with httpx.stream("POST", f"{base}/v1/chat/completions", headers=headers or {},
                      timeout=300, json={"messages": [{"role": "user", "content": question}],
                                         "stream": True}) as s:
        assert s.status_code == 200, s.read()
        events = [ln[6:] for ln in s.iter_lines() if ln.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    final = chunks[-1]
    assert final["choices"][0]["finish_reason"] == "stop"
    return {"refused": final["refused"], "citations": final["citations"], "answer": text,
            "refusal_reason": ""}, text


# ---- in this process: the same commands over the session's models --------------------
@pytest.fixture
def shells(monkeypatch, in_process, real_embedder, small_generator):
    """``rag ask`` and ``rag chat`` answer in this process, their pipelines made over the
    session's MiniLM and SmolLM2 (a served model: its own generator, from the settings)."""
    import cli.common

    def make(settings: Settings) -> Pipeline:
        generator = None if settings.backend == "openai" else small_generator
        return Pipeline(settings, embedder=real_embedder, generator=generator)

    monkeypatch.setattr(cli.common, "make_pipeline", make)
    from cli.main import app

    def run(*args: str, stdin: str | None = None):
        result = CliRunner().invoke(app, list(args), input=stdin)
        assert result.exit_code == 0, (result.output, result.exception)
        return result.stdout

    yield run
    close_clients()


@pytest.fixture(scope="module")
def local_qdrant_index(tmp_path_factory, real_embedder) -> Path:
    pytest.importorskip("qdrant_client", reason="needs pip install 'cited-rag[qdrant]'")
    idx = tmp_path_factory.mktemp("matrix-qdrant-local") / "idx"
    report = build_index(NHS_CORPUS, idx, real_embedder,
                         store_spec=qdrant_spec(idx))
    assert report.total_chunks > 0 and (idx / "qdrant").is_dir()
    yield idx
    close_clients()


def test_in_process_folder_rag_ask_llama(shells, real_index):
    out = shells("ask", Q, "--index", str(real_index), "--model", MODEL, "--json",
                 "--no-worker")
    check_cited(json.loads(out), "folder/in-process/rag ask/llama")


def test_in_process_folder_rag_chat_llama(shells, real_index):
    out = shells("chat", "--index", str(real_index), "--model", MODEL, "--json",
                 "--no-worker", stdin=f"{Q}\n")
    check_cited(json_lines(out)[0], "folder/in-process/rag chat/llama")


def test_in_process_qdrant_rag_ask_llama(shells, local_qdrant_index):
    out = shells("ask", Q, "--index", str(local_qdrant_index), "--model", MODEL, "--json")
    check_cited(json.loads(out), "qdrant/in-process/rag ask/llama")


def test_in_process_pgvector_rag_ask_served(shells, pg_server, real_embedder, llama_server,
                                            monkeypatch):
    url = pg_server.create_database("matrix_in_process")
    from index.stores.pg_builder import build_pg_index
    from index.stores.pgvector import PgIndex

    build_pg_index(NHS_CORPUS, PgIndex(url), real_embedder)
    monkeypatch.setenv("RAG_PG_URL", url)
    out = shells("ask", Q, "--llm-url", llama_server, "--model", MODEL, "--json")
    check_cited(json.loads(out), "pgvector/in-process/rag ask/served")


@contextmanager
def api_server(pipeline: Pipeline) -> Iterator[str]:
    """The HTTP API over ``pipeline``, served by uvicorn on loopback in this process."""
    import uvicorn

    from serve.api import create_app

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(pipeline), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/v1/health", timeout=30)
        yield base
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("generator", ["llama", "served"])
def test_in_process_folder_http_api(generator, real_index, real_embedder, small_generator,
                                    request):
    if generator == "served":
        from rag.generate.served import OpenAIGenerator

        gen = OpenAIGenerator(request.getfixturevalue("llama_server"), MODEL, timeout=60)
    else:
        gen = small_generator
    pipe = Pipeline(Settings(corpus=NHS_CORPUS, index=real_index, model=MODEL),
                    embedder=real_embedder, generator=gen)
    with api_server(pipe) as base:
        r = httpx.post(f"{base}/v1/ask", json={"question": Q}, timeout=300)
        assert r.status_code == 200, r.text
        check_cited(r.json(), f"folder/in-process/v1/ask/{generator}")
        final, text = chat_completion(base, Q)
        check_cited(final, f"folder/in-process/v1/chat/completions/{generator}")
        assert all(f"[{c['n']}]" in text for c in final["citations"]), text


def test_in_process_qdrant_gradio_api_llama(local_qdrant_index, real_embedder,
                                            small_generator):
    pytest.importorskip("gradio_client", reason="needs pip install 'cited-rag[ui-test]'")
    from gradio_client import Client

    from tests.ui.conftest import serve

    pipe = Pipeline(Settings(corpus=NHS_CORPUS, index=local_qdrant_index, model=MODEL),
                    embedder=real_embedder, generator=small_generator)
    assert pipe.retriever.data.vectors.kind == "qdrant"
    with serve(pipe) as url:
        out = Client(url, verbose=False).predict(Q, api_name="/ask")
    check_cited(out, "qdrant/in-process/Gradio API/llama")
