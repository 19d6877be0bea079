"""How the commands print an answer, its passages and the line for the model."""

from __future__ import annotations

import typer


def where(p: dict) -> str:
    """A passage's file, page or slide and span: ``report.pdf, page 3 [120:240]``."""
    from rag.types import page_label

    page = page_label(p["doc"], p.get("page"))
    return f"{p['doc']}{', ' + page if page else ''} [{p['start']}:{p['end']}]"


def snippet(text: str, limit: int = 140) -> str:
    """``text`` on one line, cut at ``limit`` characters with an ellipsis."""
    one = " ".join(text.split())
    return one[:limit] + ("…" if len(one) > limit else "")


def print_queued(position: int) -> None:
    typer.secho(f"(the model is busy: your question is number {position} in line)",
                err=True, fg=typer.colors.YELLOW)


def print_sources(sources: list[dict]) -> None:
    """The retrieved passages, as soon as retrieval ends (on stderr)."""
    typer.secho("Sources:", err=True, bold=True)
    for i, p in enumerate(sources, start=1):
        typer.echo(f"  #{i} {where(p)} {snippet(p['text'])}", err=True)
    typer.echo("", err=True)


def print_answer(answer: dict) -> None:
    """An answer (``Answer.to_dict()``): a caution's note, the text, the cited passages
    with their provenance and warnings, what was set aside, notes, and for a refusal the
    closest passages."""
    if answer.get("grade") == "caution":
        conf = answer.get("confidence")
        typer.secho(answer.get("note", "") + ("" if conf is None else
                                              f" (confidence {conf:.2f})"),
                    fg=typer.colors.YELLOW, bold=True)
    typer.echo(answer["answer"])
    shown = answer.get("citations") or []
    if shown:
        typer.echo("")
    if answer.get("conflict"):
        typer.secho("(the sources disagree: each side is cited)", fg=typer.colors.MAGENTA)
    for c in shown:
        typer.echo(f"[{c['n']}] {where(c)} {' '.join(c['text'].split())}")
        if c.get("provenance"):
            typer.echo(f"    {c['provenance']}")
        if c.get("warning"):
            typer.secho(f"    warning: {c['warning']}", fg=typer.colors.RED)
    for d in answer.get("set_aside") or []:
        typer.secho(f"Set aside: {d['doc']}: {d['reason']}", fg=typer.colors.YELLOW)
    for note in answer.get("notes") or []:
        typer.secho(f"Note: {note}", fg=typer.colors.YELLOW)
    if answer["refused"] and answer.get("retrieved"):
        typer.echo("\nClosest passages:")
        for p in answer["retrieved"][:3]:
            typer.echo(f"- {where(p)} {' '.join(p['text'].split())[:160]}…")


def show_sources(answer: dict | None) -> None:
    """``/sources`` in a chat: the last answer's cited and retrieved passages."""
    if answer is None:
        typer.echo("no answer yet: ask a question first")
        return
    cited = answer.get("citations") or []
    if cited:
        typer.echo("Cited:")
        for c in cited:
            typer.echo(f"  [{c['n']}] {where(c)} {' '.join(c['text'].split())}")
    typer.echo("Retrieved:")
    for i, p in enumerate(answer.get("retrieved") or [], start=1):
        typer.echo(f"  #{i} {where(p)} {snippet(p['text'])}")
