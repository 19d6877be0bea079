"""The index a pipeline answers from: its store, and the retriever over it, loaded on the
first question and loaded again when another process has replaced the index (``rag
index`` while a server or the worker runs)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from index.builder import BuildReport
from index.chunking import ChunkerConfig
from index.embed.base import Embedder
from index.errors import RagError
from index.stores.base import VectorStore
from rag.retrieve.retrievers import HybridRetriever, PgRetriever, open_retriever


class LiveIndex:
    """``store``'s index as the retriever of ``mode`` sees it. Shared by a pipeline's
    copies (``Pipeline.variant``), which answer from the same index."""

    def __init__(self, store: VectorStore, embedder: Embedder, mode: str = "hybrid") -> None:
        self.store = store
        self.embedder = embedder
        self.mode = mode
        self._retriever: HybridRetriever | PgRetriever | None = None
        self._version: str | None = None  # the version the retriever holds
        self._lock = threading.RLock()

    @property
    def retriever(self) -> HybridRetriever | PgRetriever:
        with self._lock:
            if self._retriever is None:
                version = self.store.version()
                self._retriever = open_retriever(self.store, self.embedder, self.mode)
                self._version = version
            return self._retriever

    def document_text(self, doc_id: str) -> str:
        """An indexed document's text (the one its spans index)."""
        return self.retriever.data.documents[doc_id].text

    def document_texts(self) -> dict[str, str]:
        """Every indexed document's text, by id."""
        return {d: doc.text for d, doc in self.retriever.data.documents.items()}

    @property
    def loaded(self) -> bool:
        """Whether the retriever is loaded (the worker's status)."""
        return self._retriever is not None

    def build(self, corpus: Path, chunker: ChunkerConfig, *, rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        """Index ``corpus`` into the store (only what changed is embedded again); a
        question waits for it, then reads the new index."""
        with self._lock:
            report = self.store.build(corpus, self.embedder, chunker, rebuild=rebuild,
                                      progress=progress)
            if report.written:
                self._retriever = None
            return report

    def refresh(self) -> bool:
        """Drop the loaded retriever if the index was replaced since it was loaded;
        whether it was."""
        with self._lock:
            if self._retriever is None:
                return False
            try:
                now = self.store.version()
            except RagError:
                now = None  # gone or damaged: the next load says so
            if now == self._version:
                return False
            self._retriever = None
            return True
