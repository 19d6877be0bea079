"""``rag ask``: one question, answered with [n] citations by the background worker (or,
without one, a pipeline in this process)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated

import typer

from cli import common
from cli.common import fail, indexes_first, settings_from, worker_client
from cli.options import (
    AskCorpusOpt,
    BackendOpt,
    IndexOpt,
    KOpt,
    LlmUrlOpt,
    ModelOpt,
    NoWorkerOpt,
    PgSchemaOpt,
    PgUrlOpt,
)
from cli.printers import print_answer, print_queued, print_sources
from rag.config import Settings
from rag.errors import RagError


def ask(
    question: Annotated[str, typer.Argument(help="Your question, in plain language.")],
    index_path: IndexOpt = None,
    k: KOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer object.")] = False,
    answer_mode: Annotated[str | None, typer.Option(
        "--answer-mode", help="verified (default) or naive (no verification).")] = None,
    stream: Annotated[bool, typer.Option(
        help="Show the retrieved sources at once, then the model's tokens as they come "
             "(on stderr).")] = False,
    corpus: AskCorpusOpt = None,
    llm_url: LlmUrlOpt = None,
    pg_url: PgUrlOpt = None,
    pg_schema: PgSchemaOpt = None,
    no_worker: NoWorkerOpt = False,
) -> None:
    """Answer a question from the indexed documents, with [n] citations.

    The models stay loaded in a background worker between questions (started on first
    use, gone after 5 idle minutes; see `rag worker`).

    Example: rag ask "Who leads the new unit, and since when?" --json
    """
    s = settings_from(index=index_path, k=k, model=model,
                      backend=backend or ("openai" if llm_url else None),
                      answer_mode=answer_mode, corpus=corpus, llm_url=llm_url,
                      pg_url=pg_url, pg_schema=pg_schema)
    auto_index = index_path is None
    events = None
    if s.worker and not no_worker:
        events = _worker_events(s, question, auto_index)
    if events is None:
        events = _local_events(s, question, auto_index)
    show = stream and not as_json
    answer = None
    position = 0
    try:
        for ev in events:
            kind = ev["kind"]
            if kind == "sources" and show:
                print_sources(ev.get("sources", []))
            elif kind == "queued" and not as_json and ev["position"] != position:
                position = ev["position"]
                print_queued(position)
            elif kind == "token" and show:
                typer.echo(ev.get("text", ""), nl=False, err=True)
            elif kind == "status" and ev.get("text", "").startswith("the worker"):
                typer.secho(ev["text"], err=True, fg=typer.colors.YELLOW)
            elif kind == "answer":
                answer = ev["answer"]
        if show:
            typer.echo("", err=True)
    except RagError as exc:
        fail(str(exc))
    if answer is None:
        fail("no answer came back; run again with --no-worker")
    if as_json:
        typer.echo(json.dumps(answer, indent=2, ensure_ascii=False))
        return
    print_answer(answer)


def _local_events(s: Settings, question: str, auto_index: bool) -> Iterator[dict]:
    """The answer's events from a pipeline in this process."""
    pipe = common.make_pipeline(s)
    if indexes_first(s, auto_index, pipe.index_exists):
        pipe.index(s.corpus)
    for event in pipe.ask_stream(question):
        yield event.to_dict()


def _worker_events(s: Settings, question: str, auto_index: bool) -> Iterator[dict] | None:
    """The answer's events from the background worker, or None (after a note) when the
    worker cannot be used."""
    client = worker_client(s)
    if client is None:
        return None

    def events() -> Iterator[dict]:
        if indexes_first(s, auto_index, lambda: client.index_exists(s)):
            for _ in client.index(s, s.corpus):
                pass
        yield from client.ask(s, question)

    return events()


def register(app: typer.Typer) -> None:
    app.command()(ask)
