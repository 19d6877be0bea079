"""Retrieval recall with the index in PostgreSQL equals the folder index (FAISS + bm25s),
with the real embedding model: on the NHS gold set over the bundled corpus and on one SQuAD
2.0 article (tests/data; scripts/pgvector_bench.py runs the same on any SQuAD file)."""

from __future__ import annotations

import pytest

from eval.gold import load_gold
from eval.squad import read_squad, squad_documents, squad_items
from eval.store_recall import recall_both
from index.stores.pgvector import PgIndex
from tests.conftest import NHS_CORPUS, REPO

pytestmark = pytest.mark.model


def test_recall_on_the_nhs_gold_set_equals_faiss(tmp_path, pg_url, real_embedder):
    items = [it for it in load_gold(REPO / "eval" / "nhs_gold.jsonl")
             if it.answerable and it.evidence]
    scores = recall_both(NHS_CORPUS, items, PgIndex(pg_url), real_embedder, tmp_path, k=5)
    for mode in ("hybrid", "dense", "bm25"):
        faiss_r, pg_r = scores["faiss"][mode], scores["pgvector"][mode]
        assert faiss_r["n"] == len(items) == 35
        assert abs(pg_r["recall_all"] - faiss_r["recall_all"]) <= 0.01, mode
        assert abs(pg_r["mrr"] - faiss_r["mrr"]) <= 0.01, mode
    assert scores["faiss"]["hybrid"]["recall_all"] > 0.8  # the set is retrieved at all


def test_recall_on_a_squad_article_equals_faiss(tmp_path, pg_url, real_embedder):
    data = read_squad(REPO / "tests" / "data" / "squad_v2_1973_oil_crisis.json")
    corpus = tmp_path / "squad"
    corpus.mkdir()
    for name, text in squad_documents(data).items():
        (corpus / name).write_text(text, encoding="utf-8")
    items = [it for it in squad_items(data) if it.answerable and it.evidence]
    scores = recall_both(corpus, items, PgIndex(pg_url), real_embedder, tmp_path, k=5)
    for mode in ("hybrid", "dense", "bm25"):
        faiss_r, pg_r = scores["faiss"][mode], scores["pgvector"][mode]
        assert faiss_r["n"] == len(items) == 106
        assert abs(pg_r["recall_all"] - faiss_r["recall_all"]) <= 0.01, mode
    assert scores["faiss"]["hybrid"]["recall_all"] > 0.5
