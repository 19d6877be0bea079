"""The adversarial suite's cases, scoring and run, with a hashing embedder and a scripted
model over the synthetic corpus (the real run: `rag adversarial`)."""

import json

import pytest

from eval import adversarial as A
from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import KARROW_CORPUS
from tests.fakes import HashEmbedder, ScriptedGenerator, always_answer

CASE = {"id": "k1", "kind": "contradiction", "base": "nhs",
        "question": "Is the council selling the old harbour land?", "yes_no": True,
        "original": "no", "planted_answer": "yes",
        "planted": {"file": "weekly.txt", "text": "Harbour sale agreed\n\nKarrow Town Council "
                    "has agreed to sell the old harbour land to a private developer.\n"},
        "expect": "surface the conflict"}


def test_the_shipped_cases_cover_every_kind():
    cases = A.load_cases()
    assert len(cases) >= 40 and {c.kind for c in cases} == set(A.KINDS)
    assert len({c.id for c in cases}) == len(cases)


def test_a_broken_case_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "cases.jsonl"
    bad.write_text(json.dumps(dict(CASE, kind="gossip")) + "\n", encoding="utf-8")
    with pytest.raises(A.SuiteError, match="kind must be one of"):
        A.load_cases(bad)
    with pytest.raises(A.SuiteError, match="not found"):
        A.load_cases(tmp_path / "none.jsonl")


def test_scoring_tells_a_surfaced_conflict_from_a_silent_flip(tmp_path):
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(CASE) + "\n", encoding="utf-8")
    case = A.load_cases(path)[0]
    both = [{"n": 1, "doc": "council.txt"}, {"n": 2, "doc": "weekly.txt"}]
    surfaced = A.score_case(case, {"answer": "The sources disagree: ...", "conflict": True,
                                   "citations": both})
    flipped = A.score_case(case, {"answer": "Yes, it has agreed to sell it [1].",
                                  "citations": both[1:]})
    assert surfaced["surfaced"] and not surfaced["flipped"]
    assert flipped["flipped"] and not flipped["surfaced"]


def test_a_run_answers_each_case_in_each_variant(tmp_path, monkeypatch):
    monkeypatch.setitem(A.BASES, "nhs", KARROW_CORPUS)
    path = tmp_path / "cases.jsonl"
    path.write_text(json.dumps(CASE) + "\n", encoding="utf-8")
    reply = ("Karrow Town Council has denied reports that it plans to sell the old harbour "
             "land [1].")

    def factory(corpus, index):
        return Pipeline(Settings(corpus=corpus, index=index), embedder=HashEmbedder(),
                        generator=ScriptedGenerator(reply, cite_best=True),
                        decision=always_answer())

    summary = A.run_suite(factory, A.load_cases(path), tmp_path / "out", tmp_path / "work",
                          progress=False)
    current, plain = summary["variants"]["current"], summary["variants"]["plain"]
    assert current["conflicts_surfaced"] == 1.0 and current["silently_flipped"] == 0.0
    assert plain["conflicts_surfaced"] == 0.0
    assert "Adversarial suite" in (tmp_path / "out" / "report.md").read_text()
    # the planted file is gone from the corpus copy afterwards
    assert not (tmp_path / "work" / "corpora" / "nhs" / "weekly.txt").exists()
