"""``rag index``: a folder of documents into an index (a folder, Qdrant or PostgreSQL)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli import common
from cli.common import EXIT_PARTIAL, fail, progress_printer, settings_from
from cli.options import EmbBackendOpt, EmbOpt, IndexOpt, PgSchemaOpt
from rag.errors import RagError


def index(
    corpus: Annotated[Path | None, typer.Argument(
        help="Folder of documents: .txt .md .html .pdf .docx .pptx .xlsx .csv .odt .ods .odp "
             ".epub .eml .rtf, and scans and images by OCR [default: the bundled NHS "
             "corpus].")
    ] = None,
    index_path: IndexOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Ignore the existing index.")
                       ] = False,
    embedding_model: EmbOpt = None,
    embedding_backend: EmbBackendOpt = None,
    chunk_words: Annotated[int | None, typer.Option(help="Words per chunk.")] = None,
    overlap_words: Annotated[int | None, typer.Option(help="Words shared by chunks.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    store_name: Annotated[str | None, typer.Option(
        "--store", help="Where the index goes: faiss (in the index folder), qdrant (the "
                        "vectors; changing between faiss and qdrant migrates them) or "
                        "pgvector (everything, in PostgreSQL) [default: keep the index's; "
                        "pgvector when RAG_PG_URL is set].")
    ] = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="With --store qdrant: the Qdrant server, e.g. http://127.0.0.1:6333. "
                      "With --store pgvector: the PostgreSQL database, e.g. "
                      "postgresql://USER@HOST:5432/DB (or RAG_PG_URL).")
    ] = None,
    pg_schema: PgSchemaOpt = None,
    qdrant_path: Annotated[Path | None, typer.Option(
        "--qdrant-path", help="Qdrant local-mode folder, no server [default: INDEX/qdrant].")
    ] = None,
    dense_index: Annotated[str | None, typer.Option(
        "--dense-index", help="FAISS index type: auto (exact up to 50k chunks, HNSW above), "
                              "flat, hnsw or hnsw-sq8 (less memory) [default: keep the "
                              "index's; auto for a new one].")] = None,
) -> None:
    """Index a folder (recursively). Only new and changed files are embedded again.

    Examples: rag index ~/docs --index ~/docs-index --store qdrant --url http://127.0.0.1:6333

    RAG_PG_URL=postgresql://rag:PASSWORD@db:5432/rag rag index ~/docs --store pgvector
    """
    pg = store_name == "pgvector"
    s = settings_from(corpus=corpus, index=index_path, embedding_model=embedding_model,
                      embedding_backend=embedding_backend, chunk_words=chunk_words,
                      overlap_words=overlap_words, store=store_name,
                      qdrant_url=None if pg else url, pg_url=url if pg else None,
                      pg_schema=pg_schema, qdrant_path=qdrant_path, dense_index=dense_index)
    if (s.qdrant_url or s.qdrant_path) and s.store != "qdrant":
        fail("--url and --qdrant-path need --store qdrant (or --store pgvector for a "
             "PostgreSQL URL)")
    if pg and s.pg_url is None:
        fail("--store pgvector needs the database: --url postgresql://USER@HOST:5432/DB "
             "or RAG_PG_URL in the environment")
    progress, close = progress_printer()
    try:
        pipe = common.make_pipeline(s)
        report, where = pipe.index(s.corpus, rebuild, progress), pipe.store.location
    except RagError as exc:
        close()
        fail(str(exc))
    close()
    if as_json:
        typer.echo(json.dumps({"index": where, **report.to_dict()}, indent=2))
    else:
        for err in report.errors:
            typer.secho(f"skipped {err}", err=True, fg=typer.colors.YELLOW)
        for warning in report.warnings:
            typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
        typer.echo(f"Indexed {s.corpus} -> {where}: {report.summary()}")
    if report.partial:
        raise typer.Exit(EXIT_PARTIAL)


def register(app: typer.Typer) -> None:
    app.command()(index)
