"""An index kept in PostgreSQL with pgvector (``index.stores.pgvector``), as a
``VectorStore``: one ``PgIndex`` (one connection pool) per URL and schema in a process,
its documents read by id when asked, built by ``index.stores.pg_builder``."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from index.errors import RagError
from index.stores.pgvector import DEFAULT_SCHEMA, PgIndex, redact
from index.types import Document

if TYPE_CHECKING:
    from index.builder import BuildReport
    from index.chunking import ChunkerConfig
    from index.embed.base import Embedder

_SHARED: dict[tuple[str, str], PgIndex] = {}
_SHARED_LOCK = threading.Lock()


def shared_index(url: str, schema: str = DEFAULT_SCHEMA, pool_size: int = 4) -> PgIndex:
    """One ``PgIndex`` (one connection pool) per URL and schema in this process."""
    with _SHARED_LOCK:
        key = (url, schema)
        if key not in _SHARED:
            _SHARED[key] = PgIndex(url, schema, pool_size)
        return _SHARED[key]


class PgStore:
    """The index in the PostgreSQL database at ``url``, in schema ``schema``. Nothing
    connects until the index is read or written; only ``rag index --store pgvector``
    builds it (a shell never indexes into a database on its own)."""

    kind = "pgvector"
    builds_on_first_use = False

    def __init__(self, url: str, schema: str = DEFAULT_SCHEMA, pool_size: int = 4) -> None:
        self.url, self.schema, self.pool_size = url, schema, pool_size

    @property
    def index(self) -> PgIndex:
        return shared_index(self.url, self.schema, self.pool_size)

    @property
    def location(self) -> str:
        """The server and schema (no password)."""
        return f"{redact(self.url)} (schema {self.schema})"

    def exists(self) -> bool:
        """Whether the index is there (False too while the server is unreachable)."""
        try:
            return self.index.exists()
        except RagError:
            return False

    def version(self) -> str | None:
        """None: readers always see the committed index, nothing to reload."""
        return None

    def load(self, embedding_model: str) -> PgIndex:
        """The index its retriever searches in PostgreSQL (the retriever checks the
        embedding model)."""
        return self.index

    def build(self, corpus: Path, embedder: Embedder, chunker: ChunkerConfig, *,
              rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        from index.stores.pg_builder import build_pg_index  # loads when it builds

        return build_pg_index(corpus, self.index, embedder, chunker, rebuild=rebuild,
                              progress=progress)

    def documents(self) -> list[dict]:
        return self.index.documents()


class PgDocuments(Mapping):
    """The index's documents by id, read from PostgreSQL when asked (the retriever's
    ``data.documents`` for the pipeline and the eval, which look documents up by id)."""

    def __init__(self, index: PgIndex) -> None:
        self.index = index

    def __getitem__(self, doc_id: str) -> Document:
        doc = self.index.document(doc_id)
        if doc is None:
            raise KeyError(doc_id)
        return doc

    def get(self, doc_id, default=None):
        return self.index.document(doc_id) or default

    def __iter__(self) -> Iterator[str]:
        return iter([d["id"] for d in self.index.documents()])

    def __len__(self) -> int:
        return len(self.index.documents())
