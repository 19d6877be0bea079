"""Build or update an index held in PostgreSQL (``index.stores.pgvector``) from a corpus folder.

The same plan as the folder index (``index.builder.plan_update``): unchanged files keep
their rows, new and changed files are chunked and embedded, files gone are deleted. The
embedding happens before the one transaction that writes the change, so readers keep
answering from the previous version throughout, and a crash leaves it in place."""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from index.builder import BuildReport, Progress, _embed, plan_update, search_text
from index.chunking import ChunkerConfig, chunk_document
from index.embed.base import Embedder
from index.errors import IndexMismatchError
from index.stores.pg_writer import NewDocument, open_writer
from index.stores.pgvector import PgIndex
from index.text import bm25_doc_tokens


def build_pg_index(corpus: Path, index: PgIndex, embedder: Embedder,
                   chunker: ChunkerConfig | None = None, rebuild: bool = False,
                   progress: Progress | None = None, crash_hook=None) -> BuildReport:
    """Index ``corpus`` into ``index``; see ``index.builder.build_index`` for what is kept
    and re-embedded. ``crash_hook(stage)`` runs inside the write transaction."""
    t0 = time.perf_counter()
    corpus = Path(corpus)
    chunker = chunker or ChunkerConfig()
    report = BuildReport()
    with open_writer(index) as w:
        meta = w.meta()
        if meta is not None and not rebuild:
            if meta["embedding_model"] != embedder.name:
                raise IndexMismatchError(
                    f"index in {index.location} was built with embedding model "
                    f"{meta['embedding_model']!r}, but {embedder.name!r} is configured; use "
                    f"--embedding-model {meta['embedding_model']!r} or rebuild it with: "
                    f"rag index CORPUS --store pgvector --rebuild")
            if meta["chunker"] != asdict(chunker):
                raise IndexMismatchError(
                    f"index in {index.location} was built with chunker {meta['chunker']}, not "
                    f"{asdict(chunker)}; rebuild it with: rag index CORPUS --store pgvector "
                    f"--rebuild")
        old_meta = w.document_meta() if meta is not None and not rebuild else {}
        plan = plan_update(corpus, old_meta, lambda d: d in old_meta, report, progress)
        if meta is not None and not rebuild and not plan.todo and not report.removed:
            report.total_chunks = int(meta["n_chunks"])
            report.seconds = time.perf_counter() - t0
            return report  # nothing changed
        chunked = [(doc, chunk_document(doc, chunker)) for doc in plan.todo]
        texts = [search_text(doc, ch) for doc, chunks in chunked for ch in chunks]
        vectors = _embed(embedder, texts, progress)
        tokens = bm25_doc_tokens(texts)
        report.embedded_chunks = len(texts)
        add, row = [], 0
        for doc, chunks in chunked:
            n = len(chunks)
            add.append(NewDocument(doc, time.time(), chunks, vectors[row:row + n],
                                   tokens[row:row + n]))
            row += n
        if progress:
            progress("writing", 0, 1)
        after = w.apply(embedding_model=embedder.name, dim=embedder.dim,
                        chunker=asdict(chunker), remove=report.removed + report.updated,
                        add=add, rebuild=rebuild or meta is None, crash_hook=crash_hook)
    report.written = True
    report.total_chunks = int(after["n_chunks"])
    report.seconds = time.perf_counter() - t0
    return report
