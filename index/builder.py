"""Build or update an index from a corpus folder, re-embedding only what changed."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from index.chunking import ChunkerConfig, chunk_document
from index.embed.base import Embedder
from index.errors import CorpusError, DocumentError
from index.load.loaders import (
    SUPPORTED,
    check_readable,
    doc_id_for,
    file_hash,
    instruction_like,
    load_document,
    read_error,
    scan,
)
from index.normalize import normalize_text
from index.stores import disk
from index.stores.ann import DenseSpec
from index.stores.vectors import StoreSpec, open_vectors, vector_key
from index.types import Chunk, Document

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]  # (stage, done, total)


def search_text(doc: Document, chunk: Chunk) -> str:
    """What is embedded and BM25-indexed for a chunk: its document's title, then its text."""
    title = normalize_text(doc.title)
    body = normalize_text(chunk.text)
    return body if body.startswith(title) else f"{title}\n{body}"


@dataclass
class BuildReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    errors: list[DocumentError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # indexed, but worth knowing
    embedded_chunks: int = 0
    total_chunks: int = 0
    seconds: float = 0.0
    written: bool = False
    ocr_pages: int = 0  # pages and images read by OCR in this run
    ocr_seconds: float = 0.0  # time spent reading the files that needed OCR

    @property
    def partial(self) -> bool:
        return bool(self.errors)

    def to_dict(self) -> dict:
        # not asdict(self): it deep-copies the DocumentErrors, which cannot be copied
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["errors"] = [str(e) for e in self.errors]
        return {k: list(v) if isinstance(v, list) else v for k, v in d.items()}

    def summary(self) -> str:
        ocr = ""
        if self.ocr_pages:
            s = "s" if self.ocr_pages > 1 else ""
            ocr = (f"; {self.ocr_pages} page{s} read by OCR ({self.ocr_seconds:.1f}s, "
                   f"{self.ocr_seconds / self.ocr_pages:.1f}s a page)")
        return (f"{len(self.added)} added, {len(self.updated)} updated, "
                f"{len(self.removed)} removed, {len(self.unchanged)} unchanged; "
                f"{self.embedded_chunks} chunks embedded, {self.total_chunks} in the index"
                f"{ocr} ({self.seconds:.1f}s)")


def _manifest(embedder: Embedder, chunker: ChunkerConfig, docs: dict[str, Document],
              chunk_counts: dict[str, int], corpus: Path, indexed_at: dict[str, float],
              spec: StoreSpec, dense: DenseSpec) -> dict:
    return {
        "corpus": str(corpus),
        "embedding": {"model": embedder.name, "dim": embedder.dim},
        "chunker": asdict(chunker),
        "vectors": spec.to_dict(),
        "dense": dense.to_manifest(sum(chunk_counts.values())),
        "documents": {d.id: _doc_meta(d, chunk_counts.get(d.id, 0),
                                      indexed_at.get(d.id, time.time()))
                      for d in docs.values()},
    }


def _doc_meta(d: Document, chunks: int, indexed_at: float) -> dict:
    meta = {"hash": d.hash, "title": d.title, "kind": d.kind, "chunks": chunks,
            "indexed_at": indexed_at}
    if d.pages:
        meta["pages"] = len(d.pages)
    if d.ocr_pages:
        meta["ocr_pages"] = d.ocr_pages
    return meta


def read_before_pages(meta: dict) -> bool:
    """Whether a document was indexed before page numbers were recorded (a PDF without
    ``pages``): read again once, so that its citations get their pages."""
    return meta.get("kind") == "pdf" and not meta.get("pages")


@dataclass
class Plan:
    """What an update does: the documents the new version holds (``order``, in scan
    order), those kept as they were (with when they were indexed), and the new or changed
    ones to chunk and embed (``todo``). ``BuildReport`` gets the counts and the errors."""

    order: list[str] = field(default_factory=list)
    kept: dict[str, float] = field(default_factory=dict)
    todo: list[Document] = field(default_factory=list)


def plan_update(corpus: Path, old_meta: dict[str, dict], known: Callable[[str], bool],
                report: BuildReport, progress: Progress | None = None) -> Plan:
    """Compare the files under ``corpus`` with the documents of the previous version
    (``old_meta``: id -> manifest entry; ``known(id)``: the previous version holds it).
    Unchanged files (same content hash) are kept; unreadable files keep their previous
    version, if any; files no longer present go to ``report.removed``."""
    skipped: list[DocumentError] = []
    paths = scan(corpus, skipped)
    report.errors.extend(skipped)
    if not paths:
        raise CorpusError(f"no documents found under {corpus} (read: "
                          f"{', '.join(sorted(SUPPORTED))})")
    plan = Plan()

    def keep_previous(doc_id: str) -> None:
        """A file that cannot be read now keeps its last good version searchable."""
        if known(doc_id):
            plan.order.append(doc_id)
            plan.kept[doc_id] = old_meta[doc_id].get("indexed_at", time.time())

    seen_hashes: dict[str, str] = {}
    for i, path in enumerate(paths):
        doc_id = doc_id_for(path, corpus)
        if progress:
            progress("reading", i, len(paths))
        try:
            check_readable(path, doc_id)
            digest = file_hash(path)
        except OSError as exc:
            err = read_error(doc_id, path, exc)
        except DocumentError as exc:
            err = exc
        else:
            err = None
        if err is not None:
            report.errors.append(err)
            keep_previous(doc_id)
            continue
        if digest in seen_hashes:
            log.info("%s has the same content as %s; indexed once", doc_id, seen_hashes[digest])
            report.errors.append(DocumentError(
                doc_id, f"same content as {seen_hashes[digest]}; indexed once"))
            continue
        seen_hashes[digest] = doc_id
        old_doc = old_meta.get(doc_id, {})
        if old_doc.get("hash") == digest and known(doc_id) and not read_before_pages(old_doc):
            plan.order.append(doc_id)
            plan.kept[doc_id] = old_meta[doc_id].get("indexed_at", time.time())
            report.unchanged.append(doc_id)
            continue
        t_read = time.perf_counter()
        try:
            doc = load_document(path, corpus, warn=report.warnings.append)
        except DocumentError as err:
            report.errors.append(err)
            keep_previous(doc_id)
            continue
        if doc.ocr_pages:
            report.ocr_pages += doc.ocr_pages
            report.ocr_seconds += time.perf_counter() - t_read
        phrase = instruction_like(doc.text)
        if phrase:
            report.warnings.append(
                f"{doc_id}: contains text addressed to an AI model ({phrase!r}); it is "
                f"indexed as data and never followed, but check where it came from")
            log.warning("%s", report.warnings[-1])
        plan.order.append(doc_id)
        plan.todo.append(doc)
        (report.updated if doc_id in old_meta else report.added).append(doc_id)
    report.removed = sorted(set(old_meta) - set(plan.order))
    return plan


def build_index(corpus: Path, index_dir: Path, embedder: Embedder,
                chunker: ChunkerConfig | None = None, rebuild: bool = False,
                progress: Progress | None = None, crash_hook=None,
                store_spec: StoreSpec | None = None,
                dense: DenseSpec | None = None) -> BuildReport:
    """Index ``corpus`` into ``index_dir``. Unchanged files (same content hash, model and
    chunker) keep their chunks and vectors; changed and new files are re-chunked and
    re-embedded; files no longer present are dropped. Unreadable files are reported in
    ``BuildReport.errors`` and skipped; if an unchanged copy was indexed before, it stays.

    ``store_spec`` names the vector store (default: the one the index already uses, else
    FAISS); giving another one migrates the vectors there without re-embedding.

    ``dense`` is the FAISS index type (default: what the index was asked for before, else
    ``auto``: exact search up to ``DenseSpec.flat_max`` vectors, HNSW above). When files
    were only added, the previous FAISS index is extended with the new rows rather than
    built again, so an update costs in proportion to what changed."""
    t0 = time.perf_counter()
    corpus, index_dir = Path(corpus), Path(index_dir)
    chunker = chunker or ChunkerConfig()
    report = BuildReport()
    old: disk.IndexData | None = None
    if disk.exists(index_dir) and not rebuild:
        old = disk.load(index_dir, embedding_model=embedder.name)
        if old.manifest.get("chunker") != asdict(chunker):
            raise disk.IndexMismatchError(
                f"index at {index_dir} was built with chunker {old.manifest.get('chunker')}, "
                f"not {asdict(chunker)}; {disk.REBUILD_HINT}")
    old_meta = old.manifest["documents"] if old else {}
    old_spec = old.store_spec if old else _existing_spec(index_dir)
    spec = store_spec or old_spec or StoreSpec()
    dense = dense or (DenseSpec.from_manifest(old.manifest, requested=True) if old
                      else DenseSpec())

    plan = plan_update(corpus, old_meta, lambda d: old is not None and d in old.documents,
                       report, progress)
    new_docs = {doc.id: doc for doc in plan.todo}
    docs: dict[str, Document] = {d: new_docs[d] if d in new_docs else old.documents[d]
                                 for d in plan.order}
    indexed_at = dict(plan.kept)
    todo = plan.todo

    kept_rows: dict[str, list[int]] = {}
    if old is not None:
        for row, ch in enumerate(old.chunks):
            if ch.doc_id in docs and docs[ch.doc_id] is old.documents.get(ch.doc_id):
                kept_rows.setdefault(ch.doc_id, []).append(row)

    new_chunks = [(doc, ch) for doc in todo for ch in chunk_document(doc, chunker)]
    texts = [search_text(doc, ch) for doc, ch in new_chunks]
    vectors = _embed(embedder, texts, progress)
    report.embedded_chunks = len(texts)

    n_total = sum(len(kept_rows.get(d, ())) for d in docs) + len(new_chunks)
    old_dense = DenseSpec.from_manifest(old.manifest) if old else None  # as built
    if not todo and not report.removed and old is not None and spec == old_spec and \
            dense.resolve(n_total) == old_dense and \
            dense.type == DenseSpec.from_manifest(old.manifest, requested=True).type:
        report.total_chunks = len(old.chunks)
        report.seconds = time.perf_counter() - t0
        disk.cleanup(index_dir)  # leftovers of an interrupted earlier run
        return report  # nothing changed: the index on disk stays as it is

    # rows: the kept rows in their old order, then the new ones, so that an index whose
    # files were only added extends the old FAISS index instead of rebuilding it
    chunks: list[Chunk] = []
    keys: list[str] = []
    fresh: dict[str, np.ndarray] = {}  # key -> vector embedded in this run
    kept: dict[str, int] = {}  # key -> row in the old index
    all_texts: list[str] = []
    kept_docs = {d for d in docs if d in kept_rows}
    for r, ch in enumerate(old.chunks if old is not None else ()):
        if ch.doc_id in kept_docs:
            doc = docs[ch.doc_id]
            chunks.append(ch)
            keys.append(vector_key(doc, ch))
            kept[keys[-1]] = r
            all_texts.append(search_text(doc, ch))
    for doc_id in kept_docs:
        indexed_at.setdefault(doc_id, time.time())
    for i, (doc, ch) in enumerate(new_chunks):
        chunks.append(ch)
        keys.append(vector_key(doc, ch))
        fresh[keys[-1]] = vectors[i]
        all_texts.append(texts[i])
    dim = embedder.dim
    counts: dict[str, int] = {}
    for ch in chunks:
        counts[ch.doc_id] = counts.get(ch.doc_id, 0) + 1
    manifest = _manifest(embedder, chunker, docs, counts, corpus, indexed_at, spec, dense)
    if progress:
        progress("writing", 0, 1)
    vectors_of = _VectorSource(fresh, kept, old, dim)
    if spec.store == "faiss":
        emb = vectors_of(keys)
        # every old row kept, in order, into a dense index of the same type: extend it
        appendable = (old is not None and old_spec == spec and len(kept) == len(old.chunks)
                      and dense.resolve(len(chunks)) == old_dense)
        disk.save(index_dir, disk.IndexData(manifest, docs, chunks, emb,
                                              faiss_index=old.faiss_index if appendable
                                              else None),
                   all_texts, crash_hook=crash_hook)
    else:  # new points go in first, stale ones out only once the new version is live
        target = open_vectors(spec, dim, create=True)
        present = set() if rebuild else set(target.keys())
        missing = [k for k in keys if k not in present]
        for i in range(0, len(missing), 1024):
            part = missing[i:i + 1024]
            target.add(part, vectors_of(part))
        disk.save(index_dir, disk.IndexData(manifest, docs, chunks,
                                              np.zeros((len(chunks), 0), np.float32)),
                   all_texts, crash_hook=crash_hook)
        live = set(keys)
        target.delete([k for k in target.keys() if k not in live])
    report.written = True
    report.total_chunks = len(chunks)
    report.seconds = time.perf_counter() - t0
    return report


def _existing_spec(index_dir: Path) -> StoreSpec | None:
    """The store an existing index uses, even when it is being rebuilt."""
    try:
        return StoreSpec.from_manifest(disk.read_manifest(index_dir))
    except (disk.IndexNotFoundError, disk.IndexCorruptError, disk.IndexMismatchError,
            TypeError, ValueError):
        return None


class _VectorSource:
    """Vectors by key: embedded in this run, else from the old index's store."""

    def __init__(self, fresh: dict[str, np.ndarray], kept: dict[str, int],
                 old: disk.IndexData | None, dim: int) -> None:
        self.fresh, self.kept, self.old, self.dim = fresh, kept, old, dim

    def __call__(self, keys: list[str]) -> np.ndarray:
        if not keys:
            return np.zeros((0, self.dim), np.float32)
        out = np.zeros((len(keys), self.dim), np.float32)
        from_store = []
        for i, k in enumerate(keys):
            if k in self.fresh:
                out[i] = self.fresh[k]
            elif self.old is not None and self.old.store_spec.store == "faiss":
                out[i] = self.old.embeddings[self.kept[k]]
            else:
                from_store.append((i, k))
        if from_store:
            got = self.old.vectors.get([k for _, k in from_store])
            for i, k in from_store:
                if k not in got:
                    raise disk.IndexCorruptError(
                        f"vector {k} is missing from {self.old.store_spec.describe()}; "
                        f"{disk.REBUILD_HINT}")
                out[i] = got[k]
        return out


def _embed(embedder: Embedder, texts: list[str], progress: Progress | None,
           batch: int = 1024) -> np.ndarray:
    """Embed in large calls (the model sorts each call's texts by length, so fewer calls pad
    less), reporting progress between them."""
    out = []
    for i in range(0, len(texts), batch):
        if progress:
            progress("embedding", i, len(texts))
        out.append(embedder.embed_documents(texts[i:i + batch]))
    if progress:
        progress("embedding", len(texts), len(texts))
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.vstack(out)
