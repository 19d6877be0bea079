"""The background worker (serve.worker, serve.worker_server): the commands as a user runs them
(subprocesses), with the real embedding model and SmolLM2 through llama.cpp."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.errors import IndexNotFoundError
from rag.config import Settings
from rag.errors import BusyError, QuestionError, RagError
from rag.types import Answer, Citation, Passage, SentenceSupport
from serve.worker import (
    WorkerClient,
    _error_from,
    fingerprint,
    settings_payload,
    socket_path,
)

REPO = Path(__file__).resolve().parents[2]
QUESTION = "Who is the chief executive named in the documents?"


# ---- without a worker ------------------------------------------------------------------
def test_socket_path_fits_a_unix_socket(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_HOME", str(tmp_path / "h"))
    assert socket_path() == tmp_path / "h" / "run" / "worker.sock"
    deep = tmp_path / ("d" * 120)
    monkeypatch.setenv("RAG_HOME", str(deep))
    short = socket_path()
    assert len(os.fsencode(short)) <= 107 and short.parent.name == f"cited-rag-{os.getuid()}"
    monkeypatch.setenv("RAG_HOME", str(deep) + "x")
    assert socket_path() != short  # one socket per data home


def test_the_worker_folder_is_private(tmp_path):
    from rag.errors import WorkerError
    from serve.worker import private_dir

    made = private_dir(tmp_path / "run")
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    os.chmod(made, 0o755)
    assert stat.S_IMODE(private_dir(made).stat().st_mode) == 0o700  # tightened again
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(WorkerError, match="not a folder"):
        private_dir(tmp_path / "link")


def test_settings_travel_with_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "docs").mkdir()
    (tmp_path / "m.gguf").write_bytes(b"")
    s = Settings(corpus=Path("docs"), index=Path("idx"), model="m.gguf", k=7)
    data = settings_payload(s)
    assert data["corpus"] == str(tmp_path / "docs") and data["index"] == str(tmp_path / "idx")
    assert data["model"] == str(tmp_path / "m.gguf") and data["k"] == 7
    assert Settings.model_validate(data).k == 7
    assert settings_payload(Settings())["model"] == Settings().model  # a name stays a name


def test_secrets_travel_in_clear_to_the_worker_and_nowhere_else():
    """The database URL and the model server's key reach the worker whole (they were
    masked once, so a worker read "**********" as the URL); shown anywhere, masked."""
    from serve.worker_server import pipeline_key

    url = "postgresql://rag:pw-s3cret@127.0.0.1:5432/rag"
    s = Settings(pg_url=url, llm_api_key="key-s3cret", llm_url="http://127.0.0.1:8080/v1")
    data = settings_payload(s)
    assert data["pg_url"] == url and data["llm_api_key"] == "key-s3cret"
    back = Settings.model_validate(json.loads(json.dumps(data)))
    assert back.pg_url.get_secret_value() == url
    assert back.llm_api_key.get_secret_value() == "key-s3cret"
    store = back.vector_store()
    assert store.kind == "pgvector" and store.location.startswith("postgresql://rag@127.0.0.1")
    for shown in (repr(back), str(back.model_dump(mode="json")), store.location,
                  pipeline_key(back)):
        assert "s3cret" not in shown
    other = Settings.model_validate(dict(data, pg_url=url.replace("/rag", "/other")))
    assert pipeline_key(other) != pipeline_key(back)  # two databases, two pipelines
    assert pipeline_key(Settings.model_validate(data)) == pipeline_key(back)
    assert settings_payload(Settings())["pg_url"] is None  # unset: nothing to carry


def test_fingerprint_follows_variables_the_settings_do_not_carry(monkeypatch):
    base = fingerprint()
    monkeypatch.setenv("RAG_K", "9")  # a setting: it travels with each request
    assert fingerprint() == base
    monkeypatch.setenv("RAG_MAX_FILE_MB", "3")  # read from the environment by the loaders
    assert fingerprint() != base


def test_errors_come_back_as_the_library_raised_them():
    assert isinstance(_error_from({"error": "QuestionError", "message": "empty"}),
                      QuestionError)
    assert isinstance(_error_from({"error": "IndexNotFoundError", "message": "no index"}),
                      IndexNotFoundError)
    busy = _error_from({"error": "BusyError", "message": "busy", "retry_after": 7})
    assert isinstance(busy, BusyError) and busy.retry_after == 7
    other = _error_from({"error": "DocumentError", "message": "x: unreadable"})
    assert type(other) is RagError and str(other) == "x: unreadable"
    assert type(_error_from({"error": "KeyError", "message": "m"})) is RagError


def test_answers_survive_the_wire():
    ans = Answer("q?", "A [1].", False, [Citation(1, "d.txt", 0, 4, "A is", "T")],
                 [Passage("c1", "d.txt", "T", 0, 10, "A is here.", 0.5, 0.9, None, 1)],
                 [SentenceSupport("A [1].", [1], True, 1.0)], {"total_s": 1.0},
                 "verified", "m", "A [1].", "", 3)
    d = ans.to_dict()
    assert Answer.from_dict(json.loads(json.dumps(d))).to_dict() == d


# ---- with a worker -----------------------------------------------------------------------

def rag(*args: str, home: Path, env: dict | None = None, timeout: float = 600):
    full = dict(os.environ, RAG_HOME=str(home), HF_HUB_OFFLINE="1", RAG_WORKER="1",
                PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=full, timeout=timeout, cwd=REPO)


def status(home: Path) -> dict:
    out = rag("worker", "status", "--json", home=home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _stop(home: Path) -> None:
    state = status(home)
    rag("worker", "stop", home=home)
    pid = state.get("pid")
    if pid and not _gone(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """One data home (and so one worker) for this module's model tests; stopped at the
    end. Each test works whatever state an earlier one left the worker in."""
    path = tmp_path_factory.mktemp("worker-home")
    yield path
    _stop(path)


@pytest.mark.model
def test_ask_through_the_worker_is_the_in_process_answer(home, real_index):
    args = ("ask", QUESTION, "--index", str(real_index), "--model", "smollm2-135m", "--json")
    first = rag(*args, home=home)
    assert first.returncode == 0, first.stderr
    state = status(home)
    assert state["pid"] and state["requests"] >= 1 and state["active"] == 0
    assert state["generators"] == [{"model": "smollm2-135m", "loaded": True}]
    second = rag(*args, home=home)
    assert second.returncode == 0 and status(home)["pid"] == state["pid"]
    local = rag(*args, "--no-worker", home=home)
    assert local.returncode == 0, local.stderr
    a, b, c = (json.loads(o.stdout) for o in (first, second, local))
    for key in ("answer", "refused", "citations", "raw_answer"):
        assert a[key] == b[key] == c[key], key
    assert [p["doc"] for p in a["retrieved"]] == [p["doc"] for p in c["retrieved"]]
    sock = Path(state["socket"])
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    log = Path(state["log"]).read_text()
    assert "DEBUG" not in log and "Loading weights" not in log


@pytest.mark.model
def test_stream_shows_the_sources_before_the_tokens(home, real_index):
    out = rag("ask", QUESTION, "--index", str(real_index), "--model", "smollm2-135m",
              "--stream", home=home)
    assert out.returncode == 0, out.stderr
    err = out.stderr
    assert err.startswith("Sources:\n  #1 ") and "\n  #5 " in err.split("\n\n")[0]
    assert out.stdout.strip()  # the verified answer on stdout


@pytest.mark.model
def test_a_killed_worker_is_started_again(home, real_index):
    args = ("ask", QUESTION, "--index", str(real_index), "--model", "smollm2-135m", "--json")
    assert rag(*args, home=home).returncode == 0
    old = status(home)["pid"]
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not _gone(old) and time.monotonic() < deadline:
        time.sleep(0.05)
    again = rag(*args, home=home)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["answer"]
    new = status(home)["pid"]
    assert new != old


@pytest.mark.model
def test_eval_runs_through_the_worker(home, tmp_path):
    out = rag("eval", "--limit", "2", "--seed", "1", "--model", "smollm2-135m", "--out",
              str(tmp_path / "ev"), home=home)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in (tmp_path / "ev" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["mode"] == "verified" for r in rows)
    assert status(home)["pipelines"]  # the worker answered


def test_start_status_stop_and_idle_exit(tmp_path):
    home = tmp_path / "h"
    out = rag("worker", "start", "--no-warm", "--idle", "2", home=home)
    assert out.returncode == 0 and out.stdout.startswith("worker "), out.stderr
    state = status(home)
    assert state["idle_limit_s"] == 2 and state["active"] == 0
    deadline = time.monotonic() + 30
    while not _gone(state["pid"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(state["pid"]), "the idle worker did not exit"
    assert not Path(state["socket"]).exists()
    assert status(home) == {"running": False, "socket": state["socket"]}
    assert "no worker is running" in rag("worker", "status", home=home).stdout
    assert rag("worker", "start", "--no-warm", home=home).returncode == 0
    pid = status(home)["pid"]
    stopped = rag("worker", "stop", home=home)
    assert stopped.stdout.strip() == f"stopped worker {pid}" and _gone(pid)
    assert rag("worker", "stop", home=home).stdout.strip() == "no worker is running"


def test_a_worker_for_another_environment_is_replaced_when_idle(tmp_path):
    home = tmp_path / "h"
    try:
        assert rag("worker", "start", "--no-warm", home=home).returncode == 0
        first = status(home)["pid"]
        assert rag("worker", "start", "--no-warm", home=home).returncode == 0
        assert status(home)["pid"] == first  # the same environment: kept
        out = rag("worker", "start", "--no-warm", home=home, env={"RAG_MAX_FILE_MB": "3"})
        assert out.returncode == 0, out.stderr
        second = status(home)["pid"]
        assert second != first and _gone(first)
    finally:
        _stop(home)


def test_only_the_worker_protocol_is_spoken(tmp_path, monkeypatch):
    home = tmp_path / "h"
    monkeypatch.setenv("RAG_HOME", str(home))
    try:
        assert rag("worker", "start", "--no-warm", home=home).returncode == 0
        client = WorkerClient()
        with pytest.raises(RagError, match="unknown request"):
            list(client._exchange({"op": "launch"}))
        settings = Settings(index=tmp_path / "none")
        with pytest.raises(IndexNotFoundError, match="rag index"):
            list(client.ask(settings, "Anything?"))
        with pytest.raises(QuestionError, match="empty"):
            list(client.ask(settings, "   "))
    finally:
        _stop(home)
