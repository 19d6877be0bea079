"""The new CLI options: rag index --store/--url/--qdrant-path, rag ask --llm-url, rag api."""

import json

import pytest
from typer.testing import CliRunner

from cli import main as cli
from index.stores import disk
from index.stores.vectors import close_clients
from tests.conftest import NHS_CORPUS
from tests.fakes import HashEmbedder
from tests.serve.conftest import free_port

runner = CliRunner()
# the commands over a fake embedder, in this process (the worker has the real models)
pytestmark = pytest.mark.usefixtures("in_process")


@pytest.fixture(autouse=True)
def _fake_embedder(monkeypatch):
    monkeypatch.setattr("rag.pipeline.make_embedder",
                        lambda *a, **kw: HashEmbedder())
    yield
    close_clients()


def test_index_into_qdrant_then_keep_and_migrate(tmp_path):
    pytest.importorskip("qdrant_client")
    idx, qpath = tmp_path / "idx", tmp_path / "vectors"
    r = runner.invoke(cli.app, ["index", str(NHS_CORPUS), "--index", str(idx), "--store",
                                "qdrant", "--qdrant-path", str(qpath), "--json"])
    assert r.exit_code == 0, r.output
    spec = disk.read_manifest(idx)["vectors"]
    assert spec["store"] == "qdrant" and spec["path"] == str(qpath)
    r = runner.invoke(cli.app, ["index", str(NHS_CORPUS), "--index", str(idx), "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["embedded_chunks"] == 0
    assert disk.read_manifest(idx)["vectors"]["store"] == "qdrant"
    r = runner.invoke(cli.app, ["index", str(NHS_CORPUS), "--index", str(idx), "--store",
                                "faiss", "--json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["embedded_chunks"] == 0
    assert disk.read_manifest(idx)["vectors"] == {"store": "faiss"}


@pytest.mark.parametrize("args,message", [
    (["--url", "http://127.0.0.1:6333"], "--url and --qdrant-path need --store qdrant"),
    (["--store", "milvus"], "invalid setting store"),
])
def test_index_store_option_errors(tmp_path, args, message):
    r = runner.invoke(cli.app, ["index", str(NHS_CORPUS), "--index", str(tmp_path / "i"),
                                *args])
    assert r.exit_code == 1 and message in r.output


def test_ask_with_a_dead_llm_url_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_LLM_RETRIES", "1")
    idx = tmp_path / "idx"
    assert runner.invoke(cli.app, ["index", str(NHS_CORPUS), "--index", str(idx)]
                         ).exit_code == 0
    url = f"http://127.0.0.1:{free_port()}/v1"
    r = runner.invoke(cli.app, ["ask", "Who heads NHS Digital?", "--index", str(idx),
                                "--llm-url", url, "--model", "served-model",
                                "--answer-mode", "naive"])
    assert r.exit_code == 1
    lines = [ln for ln in r.output.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1 and url in lines[0] and "2 attempts" in lines[0]


def test_openai_backend_without_url_is_an_error(tmp_path):
    r = runner.invoke(cli.app, ["ask", "Who?", "--index", str(tmp_path), "--backend",
                                "openai"])
    assert r.exit_code == 1 and "needs the server's URL" in r.output


def test_api_help():
    r = runner.invoke(cli.app, ["api", "--help"])
    assert r.exit_code == 0 and "/v1/chat/completions" in r.output
