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
    env = {**os.environ, "RAG_HOME": str(home), "HF_HUB_OFFLINE": "1", "RAG_WORKER": "0",
           **(extra_env or {})}
    return subprocess.run([sys.executable, "-m", "rag", "chat", "--corpus", str(KARROW_CORPUS),
                           "--model", "smollm2-135m", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=600)


def test_piped_conversation_with_sources_and_reset(tmp_path):
    out = chat(tmp_path, "--no-worker", "--json", stdin="\n".join(LINES))
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
    text = (KARROW_CORPUS / "lighthouse.txt").read_text(encoding="utf-8")
    for a in answers:
        for c in a["citations"]:
            doc = (KARROW_CORPUS / c["doc"]).read_text(encoding="utf-8")
            assert doc[c["start"]:c["end"]] == c["text"]
    assert "Retrieved:" in out.stdout and "lighthouse.txt" in out.stdout  # /sources
    assert "unknown command /bogus" in out.stdout and "(new conversation)" in out.stdout
    assert text  # the corpus is there


@pytest.mark.slow
def test_the_same_conversation_through_the_worker(tmp_path):
    env_worker = {"RAG_WORKER": "1", "RAG_WORKER_IDLE": "30"}
    try:
        out = chat(tmp_path, "--json", stdin="\n".join(LINES[:2]), extra_env=env_worker)
        assert out.returncode == 0, out.stderr
        answers = [json.loads(ln) for ln in out.stdout.splitlines() if ln.startswith("{")]
        assert len(answers) == 2 and "rewrite_s" in answers[1]["timings"]
        state = subprocess.run([sys.executable, "-m", "rag", "worker", "status", "--json"],
                               capture_output=True, text=True, timeout=60,
                               env=dict(os.environ, RAG_HOME=str(tmp_path)))
        assert json.loads(state.stdout)["requests"] >= 2  # the worker answered
    finally:
        subprocess.run([sys.executable, "-m", "rag", "worker", "stop"], capture_output=True,
                       timeout=60, env=dict(os.environ, RAG_HOME=str(tmp_path)))


@pytest.mark.slow
def test_plain_output_prints_citations_like_rag_ask(tmp_path):
    out = chat(tmp_path, "--no-worker", "--no-stream", stdin=LINES[0] + "\n/sources\n")
    assert out.returncode == 0, out.stderr
    assert "Retrieved:" in out.stdout
    lines = out.stdout.splitlines()
    cited = [ln for ln in lines if ln.startswith("[")]
    assert cited or "documents do not answer" in out.stdout
    for ln in cited:  # "[n] doc [start:end] text", as rag ask prints them
        assert ".txt [" in ln
