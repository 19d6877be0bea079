"""An index kept in PostgreSQL with pgvector (``index.stores.pgvector``): one ``PgIndex``
(one connection pool) per URL and schema in a process, its documents read by id when
asked."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from index.stores.pgvector import DEFAULT_SCHEMA, PgIndex
from index.types import Document

_SHARED: dict[tuple[str, str], PgIndex] = {}
_SHARED_LOCK = threading.Lock()


def shared_index(url: str, schema: str = DEFAULT_SCHEMA, pool_size: int = 4) -> PgIndex:
    """One ``PgIndex`` (one connection pool) per URL and schema in this process."""
    with _SHARED_LOCK:
        key = (url, schema)
        if key not in _SHARED:
            _SHARED[key] = PgIndex(url, schema, pool_size)
        return _SHARED[key]


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
