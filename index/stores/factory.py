"""The one place that picks an index's store from the settings: PostgreSQL when a database
is given, else a folder with its vectors in FAISS or Qdrant. Adding a store is a class
that implements ``VectorStore`` and a line here; no shell changes."""

from __future__ import annotations

from pathlib import Path

from index.stores.ann import FLAT_MAX, DenseSpec
from index.stores.base import VectorStore
from index.stores.folder import FolderStore
from index.stores.pgvector import DEFAULT_SCHEMA
from index.stores.postgres import PgStore

STORES = ("faiss", "qdrant", "pgvector")


def open_store(index_path: Path, *, store: str | None = None, pg_url: str | None = None,
               pg_schema: str = DEFAULT_SCHEMA, pg_pool_size: int = 4,
               qdrant_url: str | None = None, qdrant_path: Path | None = None,
               dense_index: str | None = None, dense_flat_max: int = FLAT_MAX) -> VectorStore:
    """The store the index is kept in. With ``pg_url`` (and ``store`` pgvector or unset):
    that PostgreSQL database, schema ``pg_schema``. Else the folder ``index_path``, whose
    next build puts the vectors where ``store`` says (faiss; qdrant: the server at
    ``qdrant_url`` or local mode at ``qdrant_path``; unset: where the index has them) in a
    FAISS index of type ``dense_index`` (unset, with the default ``dense_flat_max``: the
    index's own). Nothing is opened or connected here."""
    if store is not None and store not in STORES:
        raise ValueError(f"store must be one of {', '.join(STORES)}; got {store!r}")
    if store in (None, "pgvector") and pg_url is not None:
        return PgStore(pg_url, pg_schema, pg_pool_size)
    if store == "pgvector":
        raise ValueError("the pgvector store needs the database's URL (pg_url, RAG_PG_URL)")
    vectors = None  # where the index has them
    if store is not None:  # a build that moves them: the vector stores' module loads
        from index.stores.vectors import StoreSpec, qdrant_spec

        vectors = (qdrant_spec(index_path, url=qdrant_url, path=qdrant_path)
                   if store == "qdrant" else StoreSpec())
    dense = (None if dense_index is None and dense_flat_max == FLAT_MAX else
             DenseSpec(dense_index or "auto", flat_max=dense_flat_max))
    return FolderStore(index_path, vectors, dense)
