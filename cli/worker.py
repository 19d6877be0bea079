"""``rag worker start|stop|status``: the background worker that keeps the models loaded
(``serve.worker``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail, settings_from
from cli.options import IndexOpt, ModelOpt
from rag.errors import RagError

worker_app = typer.Typer(
    name="worker", no_args_is_help=True, add_completion=False, rich_markup_mode=None,
    help="The background worker that keeps the models loaded for `rag ask` and "
         "`rag eval`. It starts by itself on first use and exits after RAG_WORKER_IDLE "
         "seconds (default 300) without a question.")


@worker_app.command("start")
def worker_start(
    idle: Annotated[float | None, typer.Option(
        min=1, help="Exit after this many seconds without a question [env "
                    "RAG_WORKER_IDLE; default 300].")] = None,
    index_path: IndexOpt = None,
    corpus: Annotated[Path | None, typer.Option(
        help="Corpus whose index to load [default: the bundled corpus].")] = None,
    model: ModelOpt = None,
    warm: Annotated[bool, typer.Option(
        "--warm/--no-warm", help="Load the models and the index now.")] = True,
) -> None:
    """Start the worker (if needed) and load the models, so the next question is fast.

    Example: rag worker start --corpus ~/notes --idle 1800
    """
    from serve.worker import WorkerClient, socket_path

    s = settings_from(index=index_path, corpus=corpus, model=model, worker_idle=idle)
    client = WorkerClient(idle_s=s.worker_idle)
    try:
        info = client.ensure()
        loaded = client.warm(s) if warm else None
    except RagError as exc:
        fail(str(exc))
    took = f"; models and index loaded in {loaded['seconds']:.1f} s" if loaded else ""
    typer.echo(f"worker {info['pid']} ready on {socket_path()}{took}")


@worker_app.command("stop")
def worker_stop() -> None:
    """Stop the worker (it frees the models' memory at once)."""
    from serve.worker import WorkerClient

    client = WorkerClient()
    info = client.hello()
    if info is None or not client.stop():
        typer.echo("no worker is running")
        return
    typer.echo(f"stopped worker {info['pid']}")


@worker_app.command("status")
def worker_status(
    as_json: Annotated[bool, typer.Option("--json", help="Print the state as JSON.")] = False,
) -> None:
    """Whether the worker runs, what it has loaded, and when it exits if left idle."""
    from serve.worker import WorkerClient, socket_path

    state = WorkerClient().status()
    if as_json:
        typer.echo(json.dumps(state or {"running": False, "socket": str(socket_path())},
                              indent=2))
        return
    if state is None:
        typer.echo(f"no worker is running (socket {socket_path()})")
        return
    typer.echo(f"worker {state['pid']} on {state['socket']}: up {state['uptime_s']:.0f} s, "
               f"{state['requests']} requests, {state['active']} active, "
               f"{state['rss_mb']} MB resident")
    if state["exits_in_s"] is not None:
        typer.echo(f"idle {state['idle_s']:.0f} s; exits in {state['exits_in_s']:.0f} s "
                   f"unless asked")
    for g in state["generators"]:
        typer.echo(f"generator {g['model']}: {'loaded' if g['loaded'] else 'not loaded'}")
    for p in state["pipelines"]:
        q = p["queue"]
        typer.echo(f"index {p['index']} ({'loaded' if p['index_loaded'] else 'not loaded'}),"
                   f" model {p['model']}, {q['waiting']} waiting (limit {q['limit']})")
    typer.echo(f"log: {state['log']}")


def register(app: typer.Typer) -> None:
    app.add_typer(worker_app, name="worker")
