"""SQuAD v2 loading on a tiny hand-made file."""

from __future__ import annotations

import json

from eval.squad import build_corpus, read_squad, sample, squad_items

P1 = "The Normans lived in Normandy. Normandy is in France."
P2 = "Rollo was their first ruler."
SQUAD = {"version": "v2.0", "data": [{"title": "Normans", "paragraphs": [
    {"context": P1, "qas": [
        {"id": "q1", "question": "Where is Normandy?", "is_impossible": False,
         "answers": [{"text": "France", "answer_start": 46},
                     {"text": "France", "answer_start": 46},
                     {"text": "in France", "answer_start": 43}]},
        {"id": "q2", "question": "Where is Rome?", "is_impossible": True, "answers": [],
         "plausible_answers": [{"text": "France", "answer_start": 46}]}]},
    {"context": P2, "qas": [
        {"id": "q3", "question": "Who was the first ruler?", "is_impossible": False,
         "answers": [{"text": "Rollo", "answer_start": 0}]}]}]}]}


def _write(tmp_path):
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD), encoding="utf-8")
    return path


def test_items_from_squad(tmp_path):
    items = squad_items(read_squad(_write(tmp_path)))
    assert [i.id for i in items] == ["q1", "q2", "q3"]
    q1, q2, q3 = items
    assert q1.answers == ["France", "in France"] and q1.answerable
    assert {e.text for e in q1.evidence} == {"France", "in France"}
    assert not q2.answerable and q2.answers == [] and q2.evidence == []
    assert q2.kind == "unanswerable" and q3.evidence[0].doc == "000_Normans.txt"
    doc = P1 + "\n\n" + P2
    assert q3.evidence[0].spans(doc) == [(len(P1) + 2, len(P1) + 7)]  # second paragraph
    assert q1.evidence[0].spans(doc) == [(46, 52)]


def test_corpus_folder_is_built_once(tmp_path):
    path = _write(tmp_path)
    folder = build_corpus(path, tmp_path / "cache")
    doc = folder / "000_Normans.txt"
    assert doc.read_text(encoding="utf-8") == P1 + "\n\n" + P2
    mtime = doc.stat().st_mtime_ns
    assert build_corpus(path, tmp_path / "cache") == folder
    assert doc.stat().st_mtime_ns == mtime


def test_stratified_seeded_sample(tmp_path):
    items = squad_items(read_squad(_write(tmp_path))) * 1
    many = [i for _ in range(10) for i in items]
    a, b = sample(many, 6, seed=3), sample(many, 6, seed=3)
    assert [id(x) for x in a] == [id(x) for x in b] and len(a) == 6
    assert any(x.answerable for x in a) and any(not x.answerable for x in a)
    assert sample(items, 2, seed=None) == items[:2]
    assert sample(items, None, seed=1) == items
