"""Where a folder index keeps its vectors: FAISS files in the index folder (the default)
or a Qdrant collection (embedded local mode by path, or a server by URL), both behind the
small ``Vectors`` protocol that ``index.stores.disk`` and the builder write and search
through.

Every vector has a string key (``vector_key``): the chunk id and the hash of its
document's file, so a changed document never overwrites the points of the version that
is still live. Chunks, documents and BM25 always stay in the index folder; the manifest's
``vectors`` entry (``StoreSpec.to_dict``) says which store holds the vectors.
"""

from __future__ import annotations

import atexit
import hashlib
import re
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from index.errors import IndexCorruptError, VectorStoreError
from index.types import Chunk, Document

STORES = ("faiss", "qdrant")
_NAMESPACE = uuid.UUID("8c4f3e0a-5b7d-4a53-9a57-3c0e2f1b6d21")


def vector_key(doc: Document, chunk: Chunk) -> str:
    """The key a chunk's vector is stored under."""
    return f"{chunk.id}-{doc.hash}"


class Vectors(Protocol):
    """The vectors of a folder index, each under its key (``vector_key``)."""

    kind: str

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None: ...

    def search(self, query: np.ndarray, n: int) -> list[tuple[str, float]]: ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def count(self) -> int: ...

    def keys(self) -> Iterator[str]: ...

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]: ...


@dataclass(frozen=True)
class StoreSpec:
    """Which store holds an index's vectors, as recorded in its manifest."""

    store: str = "faiss"
    collection: str | None = None
    url: str | None = None
    path: str | None = None

    def __post_init__(self) -> None:
        if self.store not in STORES:
            raise ValueError(f"vector store must be one of {', '.join(STORES)}; "
                             f"got {self.store!r}")

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_manifest(cls, manifest: dict) -> StoreSpec:
        return cls(**manifest.get("vectors", {"store": "faiss"}))

    def describe(self) -> str:
        if self.store == "faiss":
            return "FAISS (in the index folder)"
        where = self.url or self.path
        return f"Qdrant collection {self.collection!r} at {where}"


def qdrant_spec(index_dir: Path, url: str | None = None, path: Path | None = None,
                collection: str | None = None) -> StoreSpec:
    """A Qdrant spec for ``index_dir``: a server at ``url``, or local mode at ``path``
    (default: ``INDEX/qdrant``). The collection is named after the index folder and a
    hash of its absolute path, so two indexes never share a collection on one server."""
    index_dir = Path(index_dir).expanduser().resolve()
    tag = hashlib.sha256(str(index_dir).encode()).hexdigest()[:8]
    name = collection or (f"cited-rag-{re.sub(r'[^A-Za-z0-9_-]', '-', index_dir.name)}"
                          f"-{tag}")
    if url:
        return StoreSpec("qdrant", collection=name, url=url.rstrip("/"))
    local = Path(path).expanduser().resolve() if path else index_dir / "qdrant"
    return StoreSpec("qdrant", collection=name, path=str(local))


# ---- FAISS ------------------------------------------------------------------------
class FaissVectors:
    """An exact inner-product FAISS index (cosine on normalised rows) with a key per row.
    Saved by ``index.stores.disk.save`` as ``dense.faiss`` next to ``embeddings.npy``."""

    kind = "faiss"

    def __init__(self, dim: int, index=None, keys: Sequence[str] = ()) -> None:
        import faiss

        self.dim = dim
        self.index = index if index is not None else faiss.IndexFlatIP(dim)
        self._keys = list(keys)
        if self.index.ntotal != len(self._keys):
            raise IndexCorruptError(f"FAISS index holds {self.index.ntotal} vectors for "
                                    f"{len(self._keys)} chunks")

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        if len(keys):
            self.index.add(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim))
            self._keys.extend(keys)

    def search(self, query: np.ndarray, n: int) -> list[tuple[str, float]]:
        n = min(n, len(self._keys))
        if n < 1:
            return []
        q = np.asarray(query, np.float32).reshape(1, -1)
        scores, ids = self.index.search(q, n)
        return [(self._keys[i], float(s)) for i, s in zip(ids[0], scores[0], strict=True)
                if i >= 0]

    def delete(self, keys: Sequence[str]) -> None:
        drop = set(keys)
        rows = [i for i, k in enumerate(self._keys) if k not in drop]
        kept = self.index.reconstruct_n(0, self.index.ntotal)[rows] if rows else None
        self.index.reset()
        self._keys = [self._keys[i] for i in rows]
        if kept is not None:
            self.index.add(kept)

    def count(self) -> int:
        return int(self.index.ntotal)

    def keys(self) -> Iterator[str]:
        return iter(list(self._keys))

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        row = {k: i for i, k in enumerate(self._keys)}
        return {k: self.index.reconstruct(row[k]) for k in keys if k in row}


# ---- Qdrant -----------------------------------------------------------------------
_CLIENTS: dict[tuple[str, str], object] = {}
_CLIENTS_LOCK = threading.Lock()


def _client(spec: StoreSpec, timeout: float = 10.0):
    """One client per location and process: local mode locks its folder."""
    try:
        from qdrant_client import QdrantClient
    except ImportError as exc:
        raise VectorStoreError("the Qdrant store needs qdrant-client; install it with: "
                               "pip install 'cited-rag[qdrant]'") from exc
    key = ("url", spec.url) if spec.url else ("path", spec.path or "")
    with _CLIENTS_LOCK:
        if not _CLIENTS:
            atexit.register(close_clients)
        if key not in _CLIENTS:
            try:
                _CLIENTS[key] = (QdrantClient(url=spec.url, timeout=int(timeout),
                                              check_compatibility=False)
                                 if spec.url else QdrantClient(path=spec.path))
            except (RuntimeError, OSError, ValueError) as exc:
                fix = ("; local mode lets one process at a time open it (the background "
                       "worker keeps it open after rag ask: rag worker stop), or use a "
                       "Qdrant server (--url)" if not spec.url and "already accessed" in
                       str(exc) else "")
                raise VectorStoreError(f"cannot open Qdrant at {spec.url or spec.path} "
                                       f"({exc}){fix}") from exc
        return _CLIENTS[key]


def close_clients() -> None:
    """Close every cached Qdrant client (releases local-mode folder locks)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        _CLIENTS.clear()


def _point_id(key: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, key))


class QdrantVectors:
    """A Qdrant collection with cosine distance; each point carries its key as payload."""

    kind = "qdrant"

    def __init__(self, spec: StoreSpec, dim: int, create: bool = False,
                 batch: int = 256) -> None:
        self.spec = spec
        self.dim = dim
        self.batch = batch
        self.collection = spec.collection or "cited-rag"
        self.client = _client(spec)
        where = spec.url or spec.path
        try:
            exists = self.client.collection_exists(self.collection)
            if exists and create and self._dim() != dim:  # rebuilt with another model
                self.client.delete_collection(self.collection)
                exists = False
            if not exists and create:
                from qdrant_client.models import Distance, VectorParams

                self.client.create_collection(
                    self.collection, vectors_config=VectorParams(size=dim,
                                                                 distance=Distance.COSINE))
            elif not exists:
                raise IndexCorruptError(
                    f"Qdrant collection {self.collection!r} at {where} does not exist; "
                    f"rebuild it with: rag index CORPUS --store qdrant --rebuild")
        except IndexCorruptError:
            raise
        except Exception as exc:  # noqa: BLE001 - transport errors vary by mode
            raise VectorStoreError(f"cannot reach Qdrant at {where} ({_first_line(exc)}); "
                                   f"check that the server is running") from exc

    def _dim(self) -> int | None:
        params = self.client.get_collection(self.collection).config.params.vectors
        return getattr(params, "size", None)

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - transport errors vary by mode
            raise VectorStoreError(f"Qdrant {what} failed on collection {self.collection!r} "
                                   f"at {self.spec.url or self.spec.path} "
                                   f"({_first_line(exc)})") from exc

    def add(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        from qdrant_client.models import PointStruct

        vectors = np.asarray(vectors, np.float32).reshape(-1, self.dim)
        for i in range(0, len(keys), self.batch):
            points = [PointStruct(id=_point_id(k), vector=v.tolist(), payload={"key": k})
                      for k, v in zip(keys[i:i + self.batch], vectors[i:i + self.batch],
                                      strict=True)]
            self._call("upsert", self.client.upsert, self.collection, points=points,
                       wait=True)

    def search(self, query: np.ndarray, n: int) -> list[tuple[str, float]]:
        q = np.asarray(query, np.float32).reshape(-1).tolist()
        res = self._call("search", self.client.query_points, self.collection, query=q,
                         limit=max(1, n), with_payload=True)
        return [(p.payload["key"], float(p.score)) for p in res.points]

    def delete(self, keys: Sequence[str]) -> None:
        from qdrant_client.models import PointIdsList

        keys = list(keys)
        for i in range(0, len(keys), self.batch):
            ids = [_point_id(k) for k in keys[i:i + self.batch]]
            self._call("delete", self.client.delete, self.collection,
                       points_selector=PointIdsList(points=ids), wait=True)

    def count(self) -> int:
        return int(self._call("count", self.client.count, self.collection, exact=True).count)

    def keys(self) -> Iterator[str]:
        offset = None
        while True:
            points, offset = self._call("scroll", self.client.scroll, self.collection,
                                        limit=1024, offset=offset, with_payload=True,
                                        with_vectors=False)
            for p in points:
                yield p.payload["key"]
            if offset is None:
                return

    def get(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        keys = list(keys)
        for i in range(0, len(keys), self.batch):
            ids = [_point_id(k) for k in keys[i:i + self.batch]]
            for p in self._call("retrieve", self.client.retrieve, self.collection, ids=ids,
                                with_payload=True, with_vectors=True):
                out[p.payload["key"]] = np.asarray(p.vector, np.float32)
        return out


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_vectors(spec: StoreSpec, dim: int, create: bool = False) -> QdrantVectors:
    """Open the external vectors a spec names (FAISS vectors come from
    ``index.stores.disk.load``)."""
    if spec.store != "qdrant":
        raise ValueError(f"open_vectors opens external vectors; got {spec.store!r}")
    return QdrantVectors(spec, dim, create=create)
