"""Retrievers: dense (FAISS, cosine), BM25 (bm25s), and their reciprocal-rank fusion, over
a folder index (``HybridRetriever``) or in PostgreSQL (``PgRetriever``); ``open_retriever``
picks the one for an index's store."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from index.embed.base import Embedder
from index.normalize import normalize_text
from index.stores.base import VectorStore
from index.stores.disk import IndexData
from index.stores.postgres import PgDocuments
from index.text import bm25_query_tokens
from rag.types import Passage

RETRIEVAL_MODES = ("hybrid", "dense", "bm25")


class Retriever(Protocol):
    def retrieve(self, question: str, k: int) -> list[Passage]: ...


def check_arguments(mode: str, candidates: int) -> None:
    """The arguments every retriever takes: a mode of ``RETRIEVAL_MODES`` and at least one
    candidate per ranking."""
    if mode not in RETRIEVAL_MODES:
        raise ValueError(f"retrieval mode must be one of {', '.join(RETRIEVAL_MODES)}; "
                         f"got {mode!r}")
    if candidates < 1:
        raise ValueError(f"candidates must be >= 1, got {candidates}")


def check_k(k: int) -> None:
    """Passages a question asks for: at least one."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def rrf_fuse(rankings: list[list[int]], k: int, rrf_k: int = 60) -> list[tuple[int, float]]:
    """Reciprocal-rank fusion: score(d) = sum over rankings of 1 / (rrf_k + rank(d)),
    rank starting at 1. Returns the top ``k`` (item, score), best first; ties keep the
    order of first appearance."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: -kv[1])[:k]


class HybridRetriever:
    """Dense search (FAISS or Qdrant, see ``index.stores.vectors``) fused with BM25 by
    reciprocal rank; either alone by ``mode``."""

    def __init__(self, data: IndexData, embedder: Embedder, mode: str = "hybrid",
                 candidates: int = 50, rrf_k: int = 60) -> None:
        check_arguments(mode, candidates)
        self.data = data
        self.embedder = embedder
        self.mode = mode
        self.candidates = candidates
        self.rrf_k = rrf_k
        self._rows: dict[str, int] | None = None

    def dense(self, question: str, n: int) -> list[tuple[int, float]]:
        """Nearest chunk rows by cosine, through the index's vector store (FAISS or
        Qdrant). Keys the live version does not hold (stale points) are skipped."""
        if not self.data.chunks:
            return []
        q = np.asarray(self.embedder.embed_query(normalize_text(question)), np.float32)
        n = min(n, len(self.data.chunks))
        if self.data.vectors is None:  # an IndexData assembled in memory
            if self.data.faiss_index is None:
                return []
            scores, ids = self.data.faiss_index.search(q.reshape(1, -1), n)
            return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True)
                    if i >= 0]
        if self._rows is None:
            self._rows = {key: row for row, key in enumerate(self.data.keys)}
        hits = self.data.vectors.search(q, n)
        return [(self._rows[key], s) for key, s in hits if key in self._rows][:n]

    def sparse(self, question: str, n: int) -> list[tuple[int, float]]:
        if self.data.bm25 is None or not self.data.chunks:
            return []
        tokens = bm25_query_tokens(question)
        if not tokens or not tokens[0]:
            return []
        # bm25s' own retrieve() costs ~25 ms at a million chunks (a thread pool and a full
        # top-k pass); scoring plus a partial sort is ~1.5 ms and ranks the same
        scores = np.asarray(self.data.bm25.get_scores(tokens[0]))
        n = min(n, len(scores))
        top = np.argpartition(-scores, n - 1)[:n]
        top = top[np.lexsort((top, -scores[top]))]  # best first, ties by row
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        check_k(k)
        n = max(k, self.candidates)
        dense = self.dense(question, n) if self.mode in ("hybrid", "dense") else []
        sparse = self.sparse(question, n) if self.mode in ("hybrid", "bm25") else []
        dense_s, sparse_s = dict(dense), dict(sparse)
        if self.mode == "dense":
            fused = dense[:k]
        elif self.mode == "bm25":
            fused = sparse[:k]
        else:
            fused = rrf_fuse([[i for i, _ in dense], [i for i, _ in sparse]], k, self.rrf_k)
        out = []
        for rank, (i, score) in enumerate(fused, start=1):
            ch = self.data.chunks[i]
            doc = self.data.documents[ch.doc_id]
            out.append(Passage(chunk_id=ch.id, doc=ch.doc_id, title=doc.title, start=ch.start,
                               end=ch.end, text=ch.text, score=float(score),
                               dense_score=dense_s.get(i), bm25_score=sparse_s.get(i),
                               rank=rank, sentences=ch.sentences,
                               page=doc.page_at(ch.start)))
        return out


class PgIndexData:
    """What the pipeline and the eval read from a retriever's ``data`` for an index in
    PostgreSQL: its documents by id (fetched when asked) and where it is."""

    def __init__(self, index) -> None:
        self.index = index
        self.documents = PgDocuments(index)
        self.path = None

    @property
    def embedding_model(self) -> str:
        return self.index.meta()["embedding_model"]


class PgRetriever:
    """The hybrid retrieval of ``HybridRetriever`` run in PostgreSQL (``index.stores.pgvector``):
    HNSW search, BM25 over the inverted index and their reciprocal-rank fusion, in one
    statement. The query is embedded and tokenized here, as for the folder index."""

    def __init__(self, index, embedder: Embedder, mode: str = "hybrid",
                 candidates: int = 50, rrf_k: int = 60) -> None:
        check_arguments(mode, candidates)
        index.check_compatible(embedder.name)
        self.index = index
        self.data = PgIndexData(index)
        self.embedder = embedder
        self.mode = mode
        self.candidates = candidates
        self.rrf_k = rrf_k

    def retrieve(self, question: str, k: int = 5) -> list[Passage]:
        check_k(k)
        query = None
        if self.mode in ("hybrid", "dense"):
            query = np.asarray(self.embedder.embed_query(normalize_text(question)), np.float32)
        terms: list[str] = []
        if self.mode in ("hybrid", "bm25"):
            tokens = bm25_query_tokens(question)
            terms = tokens[0] if tokens else []
        hits = self.index.search(query, terms, max(k, self.candidates), k, self.mode,
                                 self.rrf_k)
        return [Passage(chunk_id=h.chunk.id, doc=h.chunk.doc_id, title=h.title,
                        start=h.chunk.start, end=h.chunk.end, text=h.chunk.text,
                        score=h.score, dense_score=h.dense, bm25_score=h.bm25, rank=rank,
                        sentences=h.chunk.sentences, page=h.page)
                for rank, h in enumerate(hits, start=1)]


# the retriever of each kind of store (``VectorStore.kind``)
RETRIEVERS: dict[str, type[HybridRetriever] | type[PgRetriever]] = {
    "folder": HybridRetriever, "pgvector": PgRetriever}


def open_retriever(store: VectorStore, embedder: Embedder, mode: str = "hybrid"
                   ) -> HybridRetriever | PgRetriever:
    """The retriever over the index in ``store``, loaded now: a missing index, or one built
    with another embedding model, raises the error that names the fix."""
    return RETRIEVERS[store.kind](store.load(embedder.name), embedder, mode=mode)
