"""End to end: `rag eval` with fake embedder and generator, into tmp_path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import KARROW_CORPUS
from tests.fakes import HashEmbedder, ScriptedGenerator

# the eval's command over fakes, in this process (through the worker, with the real
# models: tests/rag/test_worker.py)
pytestmark = pytest.mark.usefixtures("in_process")

REPO = Path(__file__).resolve().parents[2]
REPLY = "No, Karrow Town Council has denied reports that it plans to sell the land [1]."


def _app(monkeypatch, tmp_path):
    import typer

    import cli.common
    import cli.evaluate as ecli
    from rag.pipeline import Pipeline

    def fake_pipeline(settings):
        settings = settings.with_overrides(index=tmp_path / "index")
        return Pipeline(settings, embedder=HashEmbedder(),
                        generator=ScriptedGenerator(REPLY, p_refusal=0.1))

    monkeypatch.setattr(cli.common, "make_pipeline", fake_pipeline)
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        pass

    ecli.register(app)
    return app


def _gold(tmp_path) -> Path:
    rows = [
        {"id": "y", "type": "yesno", "question": "Did the council agree to sell the harbour?",
         "answers": ["no"], "answerable": True,
         "evidence": [{"doc": "council.txt", "text": "has denied reports"}]},
        {"id": "f", "question": "Who leads the town council?", "answers": ["Peter Lindqvist"],
         "answerable": True, "evidence": [{"doc": "council.txt", "text": "Peter Lindqvist"}]},
        {"id": "u", "question": "How many boats does the cooperative own?", "answers": [],
         "answerable": False, "evidence": []},
    ]
    path = tmp_path / "gold.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_rag_eval_end_to_end(monkeypatch, tmp_path):
    corpus = tmp_path / "karrow"
    shutil.copytree(KARROW_CORPUS, corpus)
    out = tmp_path / "out"
    res = CliRunner().invoke(_app(monkeypatch, tmp_path), [
        "eval", "--gold", str(_gold(tmp_path)), "--corpus", str(corpus), "--out", str(out),
        "--answer-mode", "both"])
    assert res.exit_code == 0, res.output
    for name in ("results.jsonl", "summary.json", "report.md", "latency.png",
                 "accuracy_by_type.png"):
        assert (out / name).is_file(), name
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and {r["mode"] for r in rows} == {"naive", "verified"}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["meta"]["n_questions"] == 3
    for mode in ("naive", "verified"):
        s = summary["modes"][mode]
        assert s["n"] == 3 and s["n_answerable"] == 2 and s["n_unanswerable"] == 1
        for key in ("answer_accuracy", "refusal_accuracy", "false_refusal_rate",
                    "recall_at_k", "mrr", "citation_recall", "citation_precision",
                    "citation_validity", "citations_correct", "evidence_has_answer",
                    "latency_p50_s", "latency_p95_s", "contradictions"):
            assert key in s
        assert s["recall_at_k"] is not None
    naive_y = next(r for r in rows if r["id"] == "y" and r["mode"] == "naive")
    assert naive_y["correct"] and naive_y["citation_validity"] == 1.0
    # the independent judge: the cited span overlaps the sentence holding the evidence
    assert naive_y["n_judged"] >= 1 and naive_y["n_judged_correct"] >= 1
    # the verified reply cites [1], the headline: it supports the answer, but it is not the
    # sentence holding the gold evidence, and the judge says so
    ver_y = next(r for r in rows if r["id"] == "y" and r["mode"] == "verified")
    assert ver_y["citation_validity"] == 1.0
    assert ver_y["n_judged"] >= 1 and ver_y["n_judged_correct"] == 0
    assert ver_y["confidence"] is not None and (out / "decision_curve.png").is_file()
    assert "Metric definitions" in (out / "report.md").read_text()


def test_user_errors_are_one_line(monkeypatch, tmp_path):
    app = _app(monkeypatch, tmp_path)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "Q?", "answers": ["x"]}\n{oops\n')
    res = CliRunner().invoke(app, ["eval", "--gold", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1
    assert "bad.jsonl:2: not valid JSON" in res.output
    assert "Traceback" not in res.output
    res = CliRunner().invoke(app, ["eval", "--gold", str(tmp_path / "none.jsonl"),
                                   "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "gold file not found" in res.output
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"id": "a", "question": "Q?", "answers": ["x"],
                                 "evidence": [{"doc": "council.txt",
                                               "text": "not in the article"}]}) + "\n")
    res = CliRunner().invoke(app, ["eval", "--gold", str(wrong), "--corpus",
                                   str(KARROW_CORPUS), "--out", str(tmp_path / "o")])
    assert res.exit_code == 1 and "evidence text not found" in res.output


def test_summary_rebuilt_from_results(monkeypatch, tmp_path):
    from eval.summarize import summarize_dir

    out = tmp_path / "out"
    res = CliRunner().invoke(_app(monkeypatch, tmp_path), [
        "eval", "--gold", str(_gold(tmp_path)), "--corpus", str(KARROW_CORPUS),
        "--out", str(out), "--answer-mode", "verified"])
    assert res.exit_code == 0, res.output
    before = json.loads((out / "summary.json").read_text())["modes"]
    (out / "summary.json").unlink()
    rebuilt = summarize_dir(out)
    assert rebuilt["modes"] == before and (out / "report.md").is_file()
    lines = (out / "results.jsonl").read_text().splitlines()
    (tmp_path / "a.jsonl").write_text("\n".join(lines[:2]) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(lines[1:]) + "\n")  # overlaps a.jsonl
    merged = summarize_dir(tmp_path / "merged", [tmp_path / "a.jsonl", tmp_path / "b.jsonl"])
    assert merged["modes"] == before and merged["meta"]["n_questions"] == 3
