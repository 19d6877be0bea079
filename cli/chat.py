"""``rag chat``: a conversation in the terminal. Questions are read line by line from
standard input (typed, or piped); a follow-up is answered in the light of the earlier
turns (rag.answer.conversation), with the same citations as ``rag ask``."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Annotated

import typer

from cli import common
from cli.common import fail, indexes_first, one_line, settings_from, worker_client
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
from cli.printers import print_answer, print_queued, show_sources
from rag.answer.conversation import SEARCHING, history_turns
from rag.config import Settings
from rag.errors import RagError

HELP_LINE = ("Ask about your documents; follow-ups may refer to earlier answers. "
             "/sources: the last answer's passages, /reset: a new conversation, "
             "/quit or Ctrl-D: end.")


class Asker:
    """Answers questions with a conversation's history, through the background worker
    or, without one, a pipeline loaded once in this process."""

    def __init__(self, settings: Settings, use_worker: bool, auto_index: bool) -> None:
        self.settings = settings
        self.client = worker_client(settings) if use_worker else None
        self.pipe = None
        self._index_if_missing(auto_index)

    def _index_if_missing(self, auto_index: bool) -> None:
        s = self.settings
        exists = ((lambda: self.client.index_exists(s)) if self.client is not None
                  else lambda: self._pipeline().index_exists())
        if not indexes_first(s, auto_index, exists):
            return
        if self.client is not None:
            for _ in self.client.index(s, s.corpus):
                pass
        else:
            self._pipeline().index(s.corpus)

    def _pipeline(self):
        if self.pipe is None:
            self.pipe = common.make_pipeline(self.settings)
        return self.pipe

    def events(self, question: str, history: list[dict[str, str]]) -> Iterator[dict]:
        if self.client is not None:
            yield from self.client.ask(self.settings, question, history=history)
            return
        for event in self._pipeline().ask_stream(question, history=history):
            yield event.to_dict()


def chat(
    index_path: IndexOpt = None,
    k: KOpt = None,
    model: ModelOpt = None,
    backend: BackendOpt = None,
    corpus: AskCorpusOpt = None,
    llm_url: LlmUrlOpt = None,
    stream: Annotated[bool, typer.Option(
        help="Show the model's tokens as they come (on stderr).")] = True,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print each answer object as one JSON line.")] = False,
    pg_url: PgUrlOpt = None,
    pg_schema: PgSchemaOpt = None,
    no_worker: NoWorkerOpt = False,
) -> None:
    """Chat with your documents in the terminal: each line is a question, answered with
    [n] citations; a follow-up ("and who replaced him?") is read in the light of the
    conversation, and the question it searches for is shown. /sources shows the last
    answer's passages, /reset starts a new conversation, /quit (or Ctrl-D) ends.

    Example: printf 'Who built the mill?\\nWhen did it close?\\n' | rag chat --corpus ~/docs
    """
    s = settings_from(index=index_path, k=k, model=model, corpus=corpus, llm_url=llm_url,
                      backend=backend or ("openai" if llm_url else None), pg_url=pg_url,
                      pg_schema=pg_schema)
    interactive = sys.stdin.isatty()
    try:
        asker = Asker(s, s.worker and not no_worker, auto_index=index_path is None)
    except RagError as exc:
        fail(str(exc))
    if interactive:
        typer.secho(HELP_LINE, err=True, dim=True)
    history: list[dict[str, str]] = []
    last: dict | None = None
    while True:
        if interactive:
            typer.echo("> ", nl=False, err=True)
        line = sys.stdin.readline()
        if not line:
            break
        question = line.strip()
        if not question:
            continue
        if question in ("/quit", "/exit"):
            break
        if question == "/reset":
            history, last = [], None
            typer.echo("(new conversation)")
            continue
        if question == "/sources":
            show_sources(last)
            continue
        if question.startswith("/"):
            typer.echo(f"unknown command {question}; {HELP_LINE}")
            continue
        answer = _turn(asker, question, history, stream and not as_json)
        if answer is None:
            continue
        last = answer
        history += history_turns(answer)
        if as_json:
            typer.echo(json.dumps(answer, ensure_ascii=False))
        else:
            print_answer(answer)
            typer.echo("")


def _turn(asker: Asker, question: str, history: list[dict[str, str]], show: bool
          ) -> dict | None:
    """One question's events, shown as they come; the answer, or None after an error
    (reported on one line; the conversation goes on)."""
    answer, position = None, 0
    try:
        for ev in asker.events(question, history):
            kind = ev["kind"]
            if kind == "status" and ev.get("text", "").startswith(SEARCHING):
                typer.secho(ev["text"], fg=typer.colors.CYAN)
            elif kind == "status" and ev.get("text", "").startswith("the worker"):
                typer.secho(ev["text"], err=True, fg=typer.colors.YELLOW)
            elif kind == "queued" and ev["position"] != position:
                position = ev["position"]
                print_queued(position)
            elif kind == "token" and show:
                typer.echo(ev.get("text", ""), nl=False, err=True)
            elif kind == "answer":
                answer = ev["answer"]
        if show:
            typer.echo("", err=True)
    except RagError as exc:
        typer.secho(f"Error: {one_line(exc)}", err=True, fg=typer.colors.RED)
        return None
    if answer is None:
        typer.secho("Error: no answer came back; try --no-worker", err=True,
                    fg=typer.colors.RED)
    return answer


def register(app: typer.Typer) -> None:
    app.command()(chat)
