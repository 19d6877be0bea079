"""The one protocol every index store implements, ``VectorStore``: where an index is
kept, whether it is there, how it is built and what a retriever searches in it.
``index.stores.factory.open_store`` picks the store the settings name, so no caller says
which store it is outside that one option."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from index.builder import BuildReport
    from index.chunking import ChunkerConfig
    from index.embed.base import Embedder


class VectorStore(Protocol):
    """An index's store: a folder (``index.stores.folder``: FAISS or Qdrant for the
    vectors) or PostgreSQL (``index.stores.postgres``)."""

    # which retriever searches it: "folder" or "pgvector" (rag.retrieve.retrievers)
    kind: str
    # whether a shell may index the corpus itself when the index is missing
    builds_on_first_use: bool

    @property
    def location(self) -> str:
        """Where the index is, for people (never a password)."""
        ...

    def exists(self) -> bool:
        """Whether the index is there (False too while its server is unreachable)."""
        ...

    def version(self) -> str | None:
        """The live version; another value after another process replaced the index
        (the reader reloads it). None: readers always see the committed index."""
        ...

    def load(self, embedding_model: str) -> object:
        """What a retriever searches: the folder's ``IndexData`` or the ``PgIndex``;
        errors name the fix when the index is missing or was built with another model."""
        ...

    def build(self, corpus: Path, embedder: Embedder, chunker: ChunkerConfig, *,
              rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        """Index ``corpus``: only new and changed files are embedded again."""
        ...

    def documents(self) -> list[dict]:
        """Each indexed document's id and what is known of it (title, kind, chunks)."""
        ...
