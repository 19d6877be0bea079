"""What every command shares: the one-line error exit, the settings from the flags, the
pipeline (tests replace ``make_pipeline`` to answer with fakes), the background worker's
client, and the progress bars of an index run."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, NoReturn

import typer

from rag.config import Settings

if TYPE_CHECKING:
    from rag.pipeline import Pipeline
    from serve.worker import WorkerClient

EXIT_PARTIAL = 3  # some files were skipped (rag index)
INDEXING_FIRST = "No index yet for {corpus}; indexing it first."


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``Error: message`` in red on stderr and exit with ``code``."""
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def one_line(exc: BaseException) -> str:
    """An exception's message, first line only (its class name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def settings_from(**overrides) -> Settings:
    """The settings (defaults < ``RAG_*`` environment < these flags); an invalid value
    exits naming the setting and its rule."""
    try:
        return Settings().with_overrides(**overrides)
    except ValueError as exc:  # pydantic ValidationError: name the field and the rule
        errs = getattr(exc, "errors", lambda: [])()
        if errs:
            e = errs[0]
            fail(f"invalid setting {'.'.join(map(str, e['loc']))}: {e['msg']}")
        fail(str(exc).splitlines()[0])


def make_pipeline(settings: Settings) -> Pipeline:
    """The pipeline a command answers with in its own process."""
    from rag.pipeline import Pipeline

    return Pipeline(settings)


def indexes_first(settings: Settings, auto_index: bool, exists: Callable[[], bool]) -> bool:
    """Whether a command indexes the corpus before answering: no index was named
    (``auto_index``), the index is one the tool builds on first use, and ``exists()``
    (``Pipeline.index_exists``, or the worker's) says it is not there yet. Says so on
    stderr when it does."""
    if not auto_index or not settings.vector_store().builds_on_first_use or exists():
        return False
    typer.secho(INDEXING_FIRST.format(corpus=settings.corpus), err=True)
    return True


def worker_client(settings: Settings) -> WorkerClient | None:
    """A client of a running (or just started) background worker, or None after a note
    when it cannot be used: the command then answers in its own process."""
    from rag.errors import WorkerError
    from serve.worker import WorkerClient

    client = WorkerClient(idle_s=settings.worker_idle)
    try:
        client.ensure()
    except WorkerError as exc:
        typer.secho(f"Note: {exc}; answering in this process.", err=True,
                    fg=typer.colors.YELLOW)
        return None
    return client


def progress_printer() -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """``(progress, close)``: a progress bar on stderr per stage of an index run."""
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
