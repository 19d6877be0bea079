"""The ``rag serve`` command: the Gradio UI over one pipeline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer


def parse_auth(value: str | None) -> tuple[str, str] | None:
    """``user:pass`` -> ("user", "pass"); None or "" -> None."""
    if not value:
        return None
    user, sep, password = value.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must look like user:password")
    return user, password


def register(app: typer.Typer) -> None:
    """Add ``serve`` to the ``rag`` command."""

    @app.command()
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
        from rag.cli import fail, make_pipeline, settings_from

        try:
            creds = parse_auth(auth or os.environ.get("RAG_AUTH"))
        except ValueError as exc:
            fail(str(exc))
        s = settings_from(index=index_path, corpus=corpus, model=model, backend=backend,
                          pg_url=pg_url, pg_schema=pg_schema)
        from ui.app import build_app, launch_options

        demo = build_app(make_pipeline(s))
        typer.echo(f"Serving {s.corpus} (index {s.index_location}) on http://{host}:{port}")
        demo.launch(server_name=host, server_port=port, auth=creds, show_error=True,
                    **launch_options())
