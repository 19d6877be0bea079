"""``rag``: the console script. Every command is registered here, one module of ``cli``
per group; the commands import their heavy parts only when they run, so ``rag --help``
loads no model library."""

from __future__ import annotations

import logging
import os
import sys

import typer

from cli.extras import missing_module_message
from index.errors import RagError

HELP = ("Ask questions about a folder of documents and get answers with verified "
        "citations, all on this machine.\n\n"
        "Examples:\n\n"
        "  rag index ~/notes\n\n"
        "  rag ask \"Was the taskforce confirmed?\"\n\n"
        "  rag ask \"Who leads NHS Digital?\" --index ~/my-index --json\n\n"
        "  rag serve --port 7860")


def build_app() -> typer.Typer:
    """The ``rag`` app with every command, in the order ``rag --help`` lists them."""
    from cli import ask, bench, chat, evaluate, index, models, serving, worker

    app = typer.Typer(name="rag", no_args_is_help=True, add_completion=False,
                      pretty_exceptions_enable=False, rich_markup_mode=None, help=HELP)
    for register in (index.register, ask.register, chat.register, models.register,
                     serving.register_api, worker.register, serving.register_ui,
                     bench.register, evaluate.register):
        register(app)
    return app


app = build_app()


def quiet_logging() -> None:
    """Warnings and errors only, whatever a library set for its own logger (bm25s sets
    DEBUG on import), and no model-loading progress bars from Hugging Face libraries."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.WARNING)


def main() -> None:
    quiet_logging()
    try:
        app()
    except ModuleNotFoundError as exc:
        message = missing_module_message(exc)
        if message is None:
            raise
        typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    except RagError as exc:  # one a command did not catch itself (a missing dependency)
        typer.secho(f"Error: {str(exc).splitlines()[0] if str(exc) else exc!r}", err=True,
                    fg=typer.colors.RED)
        sys.exit(1)


if __name__ == "__main__":
    main()
