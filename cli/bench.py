"""``rag bench``: build, retrieval, decoding and end-to-end speed, and peak memory
(``eval.bench``), each beside the raw component doing the same work."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cli.common import fail, settings_from


def bench_command(
    sizes: Annotated[str, typer.Option(
        help="Retrieval sizes in chunks, comma-separated (search-only: clustered random "
             "vectors and Zipf texts).")] = "10k",
    build_chunks: Annotated[int, typer.Option(
        min=0, help="Chunks of real text for the build benchmark (0: skip).")] = 200,
    queries: Annotated[int, typer.Option(min=5, help="Retrieval queries per size.")] = 100,
    update_base: Annotated[str, typer.Option(
        help="Chunks in the large index for the update benchmark, e.g. 100k "
             "(0: skip).")] = "0",
    update_docs: Annotated[int, typer.Option(
        min=1, help="Documents added in the update benchmark.")] = 1000,
    e2e_questions: Annotated[int, typer.Option(
        min=0, help="NHS gold questions answered end to end (0: skip).")] = 10,
    generation: Annotated[bool, typer.Option(
        "--generation/--no-generation", help="Compare decoding with raw llama.cpp.")
    ] = True,
    model: Annotated[str | None, typer.Option(help="Generator model.")] = None,
    embedding_backend: Annotated[str | None, typer.Option(
        "--embedding-backend", help="torch, onnx, onnx-int8 or openvino.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, not tables.")
                       ] = False,
    out: Annotated[Path | None, typer.Option(
        help="Also write bench.json and bench.md into this folder.")] = None,
) -> None:
    """Measure build throughput, retrieval latency, decoding speed, end-to-end latency
    and peak memory, each beside the raw component doing the same work.

    Examples:

      rag bench                                    # 10k chunks, about 3 minutes

      rag bench --sizes 10k,100k,1M --update-base 100k --out bench-out

      rag bench --sizes 2k --build-chunks 20 --e2e-questions 2 --json
    """
    from eval.bench import BenchConfig, parse_sizes, run_bench
    from eval.bench.report import to_markdown
    from rag.errors import RagError

    try:
        cfg = BenchConfig(sizes=parse_sizes(sizes), build_chunks=build_chunks,
                          queries=queries,
                          update_base=0 if update_base.strip() == "0"
                          else parse_sizes(update_base)[0],
                          update_docs=update_docs, e2e_questions=e2e_questions,
                          generation=generation)
    except ValueError as exc:
        fail(str(exc))
    settings = settings_from(model=model, embedding_backend=embedding_backend)
    try:
        results = run_bench(cfg, settings,
                            log=lambda m: typer.echo(f"bench: {m}", err=True))
    except RagError as exc:
        fail(str(exc))
    md = to_markdown(results)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
        (out / "bench.md").write_text(md, encoding="utf-8")
    if as_json:
        json.dump(results, sys.stdout, indent=2)
        typer.echo()
    else:
        typer.echo(md)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
