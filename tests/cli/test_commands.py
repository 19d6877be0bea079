"""The console script, run as a user runs it: a subprocess with the real models."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import DHSC_DOC, NHS_CORPUS

TASKFORCE_Q = "Did the health department confirm the taskforce?"

pytestmark = pytest.mark.model


def rag(*args, home):
    env = dict(os.environ, RAG_HOME=str(home), HF_HUB_OFFLINE="1")
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=env, timeout=600)


def test_help_on_every_command(tmp_path):
    for cmd in ([], ["index"], ["ask"], ["models"]):
        out = rag(*cmd, "--help", home=tmp_path)
        assert out.returncode == 0 and "Usage" in out.stdout


def test_index_then_ask_json_with_exact_citation(tmp_path):
    idx = tmp_path / "idx"
    out = rag("index", str(NHS_CORPUS), "--index", str(idx), "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["added"]) == 2
    again = rag("index", str(NHS_CORPUS), "--index", str(idx), "--json", home=tmp_path)
    assert json.loads(again.stdout)["embedded_chunks"] == 0

    out = rag("ask", TASKFORCE_Q, "--index", str(idx), "--json",
              "--model", "smollm2-135m", home=tmp_path)
    assert out.returncode == 0, out.stderr
    ans = json.loads(out.stdout)
    assert set(ans) >= {"answer", "refused", "citations", "retrieved", "timings"}
    assert not ans["refused"]
    text = (NHS_CORPUS / DHSC_DOC).read_text(encoding="utf-8")
    dhsc = [c for c in ans["citations"] if c["doc"] == DHSC_DOC]
    assert dhsc and all(text[c["start"]:c["end"]] == c["text"] for c in dhsc)
    denial = ("no plans and no need", "denied", "denies")
    assert any(w in c["text"] for c in dhsc for w in denial), ans["answer"]
    assert not ans["answer"].lower().startswith("yes")


def test_user_errors_are_one_line_without_traceback(tmp_path):
    out = rag("ask", "   ", "--index", str(tmp_path / "none"), home=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    out = rag("ask", "hello?", "--index", str(tmp_path / "none"), home=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "no index at" in out.stderr and "rag index" in out.stderr
    out = rag("index", str(tmp_path / "missing"), "--index", str(tmp_path / "i"), home=tmp_path)
    assert out.returncode == 1 and "not found" in out.stderr and "Traceback" not in out.stderr
    out = rag("ask", "x", "--k", "0", home=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_partial_index_exit_code_names_the_file(tmp_path):
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "good.txt").write_text("Ferries leave at noon.", encoding="utf-8")
    (corpus / "bad.pdf").write_bytes(b"%PDF-1.4 broken")
    out = rag("index", str(corpus), "--index", str(tmp_path / "i"), home=tmp_path)
    assert out.returncode == 3 and "bad.pdf" in out.stderr and "Traceback" not in out.stderr


def test_rag_ask_prints_the_page_or_slide_beside_the_file(capsys):
    from cli.printers import print_answer as _print_answer

    cite = {"n": 1, "doc": "report.pdf", "page": 3, "start": 120, "end": 160,
            "text": "The dome was repainted green.", "provenance": "Report · report.pdf · "
                                                             "page 3"}
    slide = dict(cite, n=2, doc="deck.pptx", page=2, provenance="")
    plain = dict(cite, n=3, doc="notes.txt", page=None, provenance="")
    _print_answer({"answer": "Green [1] [2] [3].", "refused": False,
                   "citations": [cite, slide, plain]})
    out = capsys.readouterr().out.splitlines()
    assert out[2:] == ["[1] report.pdf, page 3 [120:160] The dome was repainted green.",
                       "    Report · report.pdf · page 3",
                       "[2] deck.pptx, slide 2 [120:160] The dome was repainted green.",
                       "[3] notes.txt [120:160] The dome was repainted green."]
