"""``rag api`` (the HTTP API, ``serve.api``) and ``rag serve`` (the web UI, ``ui.app``):
each serves one pipeline in this process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli import common
from cli.common import fail, indexes_first, settings_from
from cli.options import BackendOpt, IndexOpt, KOpt, LlmUrlOpt, ModelOpt, PgSchemaOpt, PgUrlOpt
from rag.errors import RagError


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:pass`` -> ("user", "pass"); None or "" -> None."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must look like user:password")
    return user, password


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
    s = settings_from(index=index_path, corpus=corpus, model=model, k=k, llm_url=llm_url,
                      backend=backend or ("openai" if llm_url else None), pg_url=pg_url,
                      pg_schema=pg_schema)
    token = auth or os.environ.get("RAG_API_TOKEN") or None
    try:
        import uvicorn

        from serve.api import create_app
    except ImportError as exc:
        fail(f"the API needs fastapi and uvicorn ({exc.name} is missing); install them "
             f"with: pip install 'cited-rag[server]'")
    try:
        pipe = common.make_pipeline(s)
        if indexes_first(s, index_path is None, pipe.index_exists):
            pipe.index(s.corpus)
        pipe.warm_up()
    except RagError as exc:
        fail(str(exc))
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        typer.secho("Warning: serving beyond this machine without --auth.", err=True,
                    fg=typer.colors.YELLOW)
    typer.echo(f"cited-rag API on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(create_app(pipe, token=token), host=host, port=port, log_level="warning")


def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 7860,
    auth: Annotated[str | None, typer.Option(
        help="user:password required to open the UI [env RAG_AUTH].")] = None,
    index_path: Annotated[Path | None, typer.Option("--index", help="Index folder.")
                          ] = None,
    corpus: Annotated[Path | None, typer.Option(
        help="Documents folder (indexed at start if it has no index).")] = None,
    model: Annotated[str | None, typer.Option(help="Generator model.")] = None,
    backend: Annotated[str | None, typer.Option(help="auto, llama or transformers.")
                       ] = None,
    pg_url: Annotated[str | None, typer.Option(
        "--url", help="Serve the index in this PostgreSQL database (built by rag index "
                      "--store pgvector) [env RAG_PG_URL].")] = None,
    pg_schema: Annotated[str | None, typer.Option(
        "--pg-schema", help="Its schema [default: cited_rag].")] = None,
) -> None:
    """Open the web UI: chat with cited answers, documents, settings and /ask API.

    Example: rag serve --port 7860 --auth me:secret
    """
    try:
        creds = parse_auth(auth or os.environ.get("RAG_AUTH"))
    except ValueError as exc:
        fail(str(exc))
    s = settings_from(index=index_path, corpus=corpus, model=model, backend=backend,
                      pg_url=pg_url, pg_schema=pg_schema)
    from ui.app import build_app, launch_options

    demo = build_app(common.make_pipeline(s))
    typer.echo(f"Serving {s.corpus} (index {s.vector_store().location}) on http://{host}:{port}")
    demo.launch(server_name=host, server_port=port, auth=creds, show_error=True,
                **launch_options())


def register_api(app: typer.Typer) -> None:
    app.command("api")(api)


def register_ui(app: typer.Typer) -> None:
    app.command()(serve)
