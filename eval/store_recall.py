"""Retrieval recall of one corpus indexed twice, in an index folder (FAISS + bm25s) and in
PostgreSQL (pgvector), with the same embedder: the pgvector tests and
``scripts/pgvector_bench.py`` use it to show that both stores retrieve alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from eval.gold import GoldItem
from eval.metrics import locate, retrieval_scores
from index.builder import build_index
from index.stores import disk
from index.stores.pg_builder import build_pg_index
from rag.retrieve.retrievers import RETRIEVAL_MODES, HybridRetriever, PgRetriever


def recall(retriever, items: Sequence[GoldItem], documents: Mapping[str, str],
           k: int) -> dict:
    """recall_all@k, recall_any@k and MRR (fractions) of ``retriever`` over ``items``
    (``eval.metrics.retrieval_scores``), with the number of questions ``n``."""
    rows = []
    for it in items:
        got = [p.brief() for p in retriever.retrieve(it.question, k)]
        evidence = [(e.doc, locate(documents[e.doc], e.text)) for e in it.evidence]
        rows.append(retrieval_scores(got, evidence, k))
    n = max(1, len(rows))
    return {"n": len(rows), "recall_all": sum(r["recall_all"] for r in rows) / n,
            "recall_any": sum(r["recall_any"] for r in rows) / n,
            "mrr": sum(r["rr"] for r in rows) / n}


def recall_both(corpus: Path, items: Sequence[GoldItem], pg, embedder, work: Path,
                k: int = 5, modes: Sequence[str] = RETRIEVAL_MODES) -> dict[str, dict]:
    """``{"faiss": {mode: recall(...)}, "pgvector": {...}}``: ``corpus`` indexed into
    ``work/faiss`` and into the ``PgIndex`` ``pg`` (rebuilt)."""
    folder = Path(work) / "faiss"
    build_index(corpus, folder, embedder, rebuild=True)
    build_pg_index(corpus, pg, embedder, rebuild=True)
    data = disk.load(folder, embedding_model=embedder.name)
    documents = {d: doc.text for d, doc in data.documents.items()}
    out: dict[str, dict] = {"faiss": {}, "pgvector": {}}
    for mode in modes:
        out["faiss"][mode] = recall(HybridRetriever(data, embedder, mode=mode), items,
                                    documents, k)
        out["pgvector"][mode] = recall(PgRetriever(pg, embedder, mode=mode), items,
                                       documents, k)
    return out
