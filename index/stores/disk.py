"""The on-disk index: a directory of plain files, replaced atomically.

Layout::

    INDEX/CURRENT            name of the live version folder (replaced atomically)
    INDEX/v-<id>/manifest.json   format version, model, dimension, chunker, documents
    INDEX/v-<id>/documents.jsonl documents with the text their spans index
    INDEX/v-<id>/chunks.jsonl    chunks, in the order of the embedding rows
    INDEX/v-<id>/embeddings.npy  float32 rows, L2-normalised
    INDEX/v-<id>/dense.faiss     FAISS index over the rows (inner product = cosine); its
                                 type (flat, hnsw, hnsw-sq8) is the manifest's ``dense``
    INDEX/v-<id>/bm25/           bm25s index over the chunk texts
    INDEX/qdrant/                Qdrant local-mode storage, if the index uses it

The manifest's ``vectors`` entry names the store holding the vectors (absent: FAISS).
With Qdrant (``index.stores.vectors``) the version folder has no embeddings.npy and no
dense.faiss; the vectors live in the named collection under ``vectors.vector_key``.

A new version is written to a temporary folder, fsynced, renamed into place, and only
then does CURRENT point at it. A crash at any moment leaves the previous version live.
No pickle is used anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from index import FORMAT_VERSION
from index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.stores import ann
from index.stores.ann import DenseSpec
from index.stores.vectors import FaissVectors, StoreSpec, open_vectors, vector_key
from index.types import Chunk, Document

CURRENT = "CURRENT"
MANIFEST = "manifest.json"
REBUILD_HINT = "rebuild it with: rag index CORPUS --rebuild"


@dataclass
class IndexData:
    """Everything an index holds, in memory."""

    manifest: dict
    documents: dict[str, Document]
    chunks: list[Chunk]
    embeddings: np.ndarray
    faiss_index: object = None
    bm25: object = None
    path: Path | None = None
    extra: dict = field(default_factory=dict)
    vectors: object = None  # the Vectors the dense search goes through
    keys: list[str] = field(default_factory=list)  # vector key of each chunk row

    @property
    def embedding_model(self) -> str:
        return self.manifest["embedding"]["model"]

    @property
    def store_spec(self) -> StoreSpec:
        return StoreSpec.from_manifest(self.manifest)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False))
            f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def _read_jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def exists(index_dir: Path) -> bool:
    return (Path(index_dir) / CURRENT).is_file()


def current_version(index_dir: Path) -> Path:
    index_dir = Path(index_dir)
    pointer = index_dir / CURRENT
    if not pointer.is_file():
        raise IndexNotFoundError(
            f"no index at {index_dir}; build one with: rag index CORPUS --index {index_dir}")
    name = pointer.read_text(encoding="utf-8").strip()
    version = index_dir / name
    if not name or "/" in name or not version.is_dir():
        raise IndexCorruptError(f"index at {index_dir} points at a missing version "
                                f"{name!r}; {REBUILD_HINT}")
    return version


def read_manifest(index_dir: Path) -> dict:
    version = current_version(index_dir)
    try:
        manifest = json.loads((version / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"index manifest {version / MANIFEST} is unreadable ({exc}); "
                                f"{REBUILD_HINT}") from exc
    if not isinstance(manifest, dict):
        raise IndexCorruptError(f"index manifest {version / MANIFEST} is not a JSON object; "
                                f"{REBUILD_HINT}")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise IndexMismatchError(
            f"index at {index_dir} has format version {manifest.get('format_version')}, "
            f"this version reads {FORMAT_VERSION}; {REBUILD_HINT}")
    return manifest


def check_compatible(manifest: dict, embedding_model: str, index_dir: Path) -> None:
    built = manifest.get("embedding", {}).get("model")
    if built != embedding_model:
        raise IndexMismatchError(
            f"index at {index_dir} was built with embedding model {built!r}, but "
            f"{embedding_model!r} is configured; use --embedding-model {built!r} "
            f"or {REBUILD_HINT}")


def build_faiss(embeddings: np.ndarray, dim: int, spec: DenseSpec | None = None):
    """A FAISS index over the rows: exact (flat) unless ``spec`` says otherwise."""
    return ann.build(embeddings, dim, spec or DenseSpec(type="flat"))


def build_bm25(texts: list[str]):
    from index.text import bm25_tokenize, bm25s_module

    retriever = bm25s_module().BM25()
    if texts:
        retriever.index(bm25_tokenize(texts), show_progress=False)
    return retriever


def save(index_dir: Path, data: IndexData, search_texts: list[str],
         crash_hook=None) -> Path:
    """Write ``data`` as a new version and make it live atomically. ``crash_hook(stage)``
    is called between steps (tests use it to simulate a crash).

    If ``data.faiss_index`` is given, it holds the first rows of ``data.embeddings``
    already (the previous version's index, when only documents were added): the new rows
    are appended to it instead of building the dense index again."""
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    hook = crash_hook or (lambda stage: None)
    try:
        dim = int(data.manifest["embedding"]["dim"])
        emb = np.ascontiguousarray(data.embeddings, dtype=np.float32).reshape(-1, dim)
        _write_jsonl(tmp / "documents.jsonl", (d.to_dict() for d in data.documents.values()))
        _write_jsonl(tmp / "chunks.jsonl", (c.to_dict() for c in data.chunks))
        hook("jsonl")
        if StoreSpec.from_manifest(data.manifest).store == "faiss":
            with open(tmp / "embeddings.npy", "wb") as f:
                np.save(f, emb, allow_pickle=False)
                f.flush()
                os.fsync(f.fileno())
            faiss.write_index(_dense_for(data, emb, dim), str(tmp / "dense.faiss"))
        hook("faiss")
        if search_texts:
            build_bm25(search_texts).save(str(tmp / "bm25"))
        hook("bm25")
        manifest = dict(data.manifest, format_version=FORMAT_VERSION,
                        n_chunks=len(data.chunks), written_at=time.time())
        with open(tmp / MANIFEST, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(tmp)
        version = index_dir / f"v-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        os.rename(tmp, version)
        hook("renamed")
        pointer_tmp = index_dir / f".{CURRENT}.{uuid.uuid4().hex[:8]}"
        pointer_tmp.write_text(version.name, encoding="utf-8")
        with open(pointer_tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(pointer_tmp, index_dir / CURRENT)
        _fsync_dir(index_dir)
        hook("pointer")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    cleanup(index_dir)
    return version


def _dense_for(data: IndexData, emb: np.ndarray, dim: int):
    base = data.faiss_index
    if base is not None and 0 < base.ntotal <= len(emb):
        ann.add(base, emb[base.ntotal:])
        return base
    return build_faiss(emb, dim, DenseSpec.from_manifest(data.manifest))


def cleanup(index_dir: Path) -> None:
    """Remove versions that are not live and leftovers of interrupted writes."""
    index_dir = Path(index_dir)
    try:
        live = (index_dir / CURRENT).read_text(encoding="utf-8").strip()
    except OSError:
        live = None
    for entry in index_dir.iterdir():
        if entry.name == live or entry.name == CURRENT:
            continue
        if entry.name.startswith((".tmp-", "v-")) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        elif entry.name.startswith(f".{CURRENT}."):
            entry.unlink(missing_ok=True)


def load(index_dir: Path, embedding_model: str | None = None, mmap: bool = False) -> IndexData:
    """Load the live version. Raises a specific error, with the fix, if anything is off."""
    import faiss

    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    if embedding_model is not None:
        check_compatible(manifest, embedding_model, index_dir)
    version = current_version(index_dir)
    try:
        documents = {d["id"]: Document.from_dict(d)
                     for d in _read_jsonl(version / "documents.jsonl")}
        chunks = [Chunk.from_dict(c) for c in _read_jsonl(version / "chunks.jsonl")]
        spec = StoreSpec.from_manifest(manifest)
        dim = int(manifest["embedding"]["dim"])
        if spec.store == "faiss":
            embeddings = np.load(version / "embeddings.npy", allow_pickle=False,
                                 mmap_mode="r" if mmap else None)
            flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY if mmap else 0
            dense = faiss.read_index(str(version / "dense.faiss"), flags)
            ann.configure(dense, DenseSpec.from_manifest(manifest))
        else:
            embeddings = np.zeros((len(chunks), 0), np.float32)
            dense = None
        bm25 = None
        if (version / "bm25").is_dir():
            from index.text import bm25s_module

            bm25 = bm25s_module().BM25.load(str(version / "bm25"), mmap=mmap)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IndexCorruptError(f"index at {index_dir} is damaged ({exc}); "
                                f"{REBUILD_HINT}") from exc
    n = len(chunks)
    keys = []
    for ch in chunks:  # spans must index their documents, or citations would quote wrongly
        doc = documents.get(ch.doc_id)
        if doc is None or doc.text[ch.start:ch.end] != ch.text:
            raise IndexCorruptError(
                f"index at {index_dir} has a chunk of {ch.doc_id!r} whose span "
                f"[{ch.start}:{ch.end}] does not match its document; {REBUILD_HINT}")
        keys.append(vector_key(doc, ch))
    if spec.store == "faiss":
        if embeddings.shape[0] != n or dense.ntotal != n or \
                manifest.get("n_chunks") != n or \
                (n and embeddings.shape[1] != dim):
            raise IndexCorruptError(
                f"index at {index_dir} is inconsistent ({n} chunks, {embeddings.shape[0]} "
                f"embeddings, {dense.ntotal} vectors); {REBUILD_HINT}")
        vectors = FaissVectors(dim, dense, keys)
    else:
        vectors = open_vectors(spec, dim)
        held = vectors.count()
        if manifest.get("n_chunks") != n or held < n:
            raise IndexCorruptError(
                f"index at {index_dir} is inconsistent ({n} chunks, {held} vectors in "
                f"{spec.describe()}); {REBUILD_HINT} --store qdrant")
    return IndexData(manifest=manifest, documents=documents, chunks=chunks,
                     embeddings=embeddings, faiss_index=dense, bm25=bm25, path=index_dir,
                     vectors=vectors, keys=keys)
