"""``rag chat`` as a user runs it, questions piped on stdin, on the real models
(MiniLM, SmolLM2) over the synthetic corpus."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import KARROW_CORPUS

pytestmark = pytest.mark.model

LINES = ["Who built the lighthouse at Karrow Point?", "How tall is its tower?", "/sources",
         "/bogus", "/reset", "How tall is its tower?", ""]


def chat(home, *args, stdin: str, extra_env: dict | None = None):
    env = {**os.environ, "RAG_HOME": str(home), "HF_HUB_OFFLINE": "1", "RAG_WORKER": "1",
           **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "cli", "chat", "--corpus", str(KARROW_CORPUS),
                           "--model", "smollm2-135m", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=600)


def test_piped_conversation_with_sources_and_reset(tmp_path):
    """Through the background worker, as a user's ``rag chat`` goes."""
    out = chat(tmp_path, "--json", stdin="\n".join(LINES))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [a["question"] for a in answers] == [LINES[0], LINES[1], LINES[5]]
    first, follow, fresh = answers
    assert "rewrite_s" not in first["timings"]  # nothing to follow up on
    assert "rewrite_s" in follow["timings"]  # a follow-up: rewritten with the history
    assert follow["standalone_question"].strip()
    assert "rewrite_s" not in fresh["timings"]  # after /reset: a new conversation
    assert fresh["standalone_question"] == LINES[5]
    for a in answers:
        for c in a["citations"]:
            doc = (KARROW_CORPUS / c["doc"]).read_text(encoding="utf-8")
            assert doc[c["start"]:c["end"]] == c["text"]
    assert "Retrieved:" in out.stdout and "lighthouse.txt" in out.stdout  # /sources
    assert "unknown command /bogus" in out.stdout and "(new conversation)" in out.stdout
    state = subprocess.run([sys.executable, "-m", "cli", "worker", "status", "--json"],
                           capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, RAG_HOME=str(tmp_path)))
    assert json.loads(state.stdout)["requests"] >= 4  # the worker answered (and indexed)


def test_plain_output_prints_citations_like_rag_ask(tmp_path, monkeypatch, in_process):
    """``--no-stream``: nothing but the verified answer and its citations, as ``rag ask``
    prints them (a hashing embedder and a scripted model, in this process)."""
    from typer.testing import CliRunner

    import cli.common
    from cli.main import app
    from rag.config import Settings
    from rag.pipeline import Pipeline
    from tests.fakes import ChatGenerator, HashEmbedder, always_answer

    reply = "The lighthouse was built in 1872 by the engineer Alice Brennan [1]."

    def make(settings: Settings) -> Pipeline:
        return Pipeline(settings, embedder=HashEmbedder(), generator=ChatGenerator(reply, ""),
                        decision=always_answer())

    monkeypatch.setattr(cli.common, "make_pipeline", make)
    make(Settings(corpus=KARROW_CORPUS, index=tmp_path / "idx")).index()
    out = CliRunner().invoke(app, ["chat", "--corpus", str(KARROW_CORPUS), "--index",
                                   str(tmp_path / "idx"), "--no-stream"],
                             input=LINES[0] + "\n/sources\n")
    assert out.exit_code == 0, out.output
    assert "Alice Brennan" not in out.stderr  # no tokens shown: the answer only
    lines = out.stdout.splitlines()
    assert lines[0] == reply and lines[1] == ""
    text = (KARROW_CORPUS / "lighthouse.txt").read_text(encoding="utf-8")
    start = text.index("The lighthouse at Karrow")
    cited = lines[2]
    prefix = f"[1] lighthouse.txt [{start}:"
    assert cited.startswith(prefix), cited
    end = int(cited[len(prefix):].split("]")[0])
    assert cited == f"{prefix}{end}] {' '.join(text[start:end].split())}"
    assert "Cited:" in out.stdout and "Retrieved:" in out.stdout  # /sources
