"""``rag models`` and ``rag prepare-model``: the packaged generator models."""

from __future__ import annotations

import typer

from cli.common import fail
from cli.options import ModelOpt
from rag.config import Settings
from rag.errors import RagError


def models() -> None:
    """List the packaged generator models and whether they are installed."""
    from rag.generate.models import DEFAULT_MODEL, PACKAGED_MODELS, installed_models

    have = set(installed_models())
    for m in PACKAGED_MODELS.values():
        mark = "installed" if m.name in have else f"not installed (pip install {m.pip})"
        default = " (default)" if m.name == DEFAULT_MODEL else ""
        typer.echo(f"{m.name}{default}: {m.description}; {mark}")


def prepare_model(model: ModelOpt = None) -> None:
    """Assemble a packaged model from its installed packages and verify its sha256."""
    from rag.generate.models import PACKAGED_MODELS, packaged_model_path

    name = model or Settings().model
    if name not in PACKAGED_MODELS:
        fail(f"{name!r} is not a packaged model; choose from {', '.join(PACKAGED_MODELS)}")
    try:
        path = packaged_model_path(name)
    except RagError as exc:
        fail(str(exc))
    typer.echo(f"{name}: {path} (sha256 verified)")


def register(app: typer.Typer) -> None:
    app.command()(models)
    app.command("prepare-model")(prepare_model)
