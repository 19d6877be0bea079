"""The bundled NHS gold set and gold-file errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from eval.gold import GOLD_DEFAULT, GoldError, check_evidence, load_gold

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "data" / "nhs"


def _docs() -> dict[str, str]:
    return {p.name: p.read_bytes().decode("utf-8-sig") for p in CORPUS.glob("*.txt")}


def test_nhs_gold_evidence_is_exact_substrings():
    items = load_gold(GOLD_DEFAULT)
    docs = _docs()
    for item in items:
        for ev in item.evidence:
            assert ev.doc in docs, item.id
            assert ev.text in docs[ev.doc], (item.id, ev.text)
        assert item.answerable == bool(item.evidence), item.id
    check_evidence(items, docs)


def test_nhs_gold_size_and_types():
    items = load_gold(GOLD_DEFAULT)
    kinds = [i.kind for i in items]
    assert len(items) >= 30
    assert kinds.count("unanswerable") >= 8
    assert kinds.count("yesno") >= 5 and kinds.count("multi") >= 3
    multi_docs = [{e.doc for e in i.evidence} for i in items if i.kind == "multi"]
    assert any(len(d) == 2 for d in multi_docs)
    assert {i.answers[0] for i in items if i.kind == "yesno"} == {"yes", "no"}


def test_bad_line_names_its_line(tmp_path):
    good = {"id": "a", "question": "Q?", "answers": ["x"], "answerable": True}
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(good) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(GoldError, match=r"g\.jsonl:3: not valid JSON"):
        load_gold(path)
    with pytest.raises(GoldError, match="not found"):
        load_gold(tmp_path / "missing.jsonl")


def test_evidence_not_in_document(tmp_path):
    path = tmp_path / "g.jsonl"
    row = {"id": "a", "question": "Q?", "answers": ["x"], "answerable": True,
           "evidence": [{"doc": "d.txt", "text": "absent words"}]}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")
    with pytest.raises(GoldError, match="evidence text not found"):
        check_evidence(load_gold(path), {"d.txt": "other text"})
