"""The pipeline's commands of ``rag`` (index, ask, chat, models, prepare-model, api, worker):
thin shells over ``rag.pipeline.Pipeline`` and the background worker (``rag.worker``).
``cli.main`` puts them together with the UI's and the eval's commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from rag.config import Settings
from rag.errors import RagError

EXIT_PARTIAL = 3

IndexOpt = Annotated[Path | None, typer.Option(
    "--index", help="Index folder [default: one per corpus under $RAG_HOME].")]
KOpt = Annotated[int | None, typer.Option("--k", "-k", min=1, max=100,
                                          help="Passages to retrieve.")]
ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="Packaged model name (see `rag models`), a .gguf file, a model folder "
                    "or a Hugging Face id in the local cache.")]
BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="auto, llama, transformers or openai (a served model, see --llm-url).")]
LlmUrlOpt = Annotated[str | None, typer.Option(
    "--llm-url", help="OpenAI-compatible server (vLLM, TGI, llama.cpp server, Ollama), "
                      "e.g. http://127.0.0.1:8080/v1; implies --backend openai.")]
EmbOpt = Annotated[str | None, typer.Option(
    "--embedding-model", help="sentence-transformers model name or folder.")]
EmbBackendOpt = Annotated[str | None, typer.Option(
    "--embedding-backend", help="torch, onnx or onnx-int8 (onnxruntime; pip install "
                                "'cited-rag[onnx]'), or openvino or openvino-int8 "
                                "('cited-rag[openvino]') [default: torch].")]

PgUrlOpt = Annotated[str | None, typer.Option(
    "--url", help="Read the index in this PostgreSQL database (built by rag index --store "
                  "pgvector), e.g. postgresql://USER@HOST:5432/DB; better in the environment "
                  "as RAG_PG_URL, which keeps the password off the command line.")]
PgSchemaOpt = Annotated[str | None, typer.Option(
    "--pg-schema", help="PostgreSQL schema holding the index [default: cited_rag].")]


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"Error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def settings_from(**overrides) -> Settings:
    try:
        return Settings().with_overrides(**overrides)
    except ValueError as exc:  # pydantic ValidationError: name the field and the rule
        errs = getattr(exc, "errors", lambda: [])()
        if errs:
            e = errs[0]
            fail(f"invalid setting {'.'.join(map(str, e['loc']))}: {e['msg']}")
        fail(str(exc).splitlines()[0])
        raise


def make_pipeline(settings: Settings):
    from rag.pipeline import Pipeline

    return Pipeline(settings)


def _progress_printer():
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


def index(
    corpus: Annotated[Path | None, typer.Argument(
        help="Folder of documents: .txt .md .html .pdf .docx .pptx .xlsx .csv .odt .ods .odp "
             ".epub .eml .rtf, and scans and images by OCR [default: the bundled NHS "
             "corpus].")
    ] = None,
    index_path: IndexOpt = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Ignore the existing index.")
                       ] = False,
    embedding_model: EmbOpt = None,
    embedding_backend: EmbBackendOpt = None,
    chunk_words: Annotated[int | None, typer.Option(help="Words per chunk.")] = None,
    overlap_words: Annotated[int | None, typer.Option(help="Words shared by chunks.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    store_name: Annotated[str | None, typer.Option(
        "--store", help="Where the index goes: faiss (in the index folder), qdrant (the "
                        "vectors; changing between faiss and qdrant migrates them) or "
                        "pgvector (everything, in PostgreSQL) [default: keep the index's; "
                        "pgvector when RAG_PG_URL is set].")
    ] = None,
    url: Annotated[str | None, typer.Option(
        "--url", help="With --store qdrant: the Qdrant server, e.g. http://127.0.0.1:6333. "
                      "With --store pgvector: the PostgreSQL database, e.g. "
                      "postgresql://USER@HOST:5432/DB (or RAG_PG_URL).")
    ] = None,
    pg_schema: PgSchemaOpt = None,
    qdrant_path: Annotated[Path | None, typer.Option(
        "--qdrant-path", help="Qdrant local-mode folder, no server [default: INDEX/qdrant].")
    ] = None,
    dense_index: Annotated[str | None, typer.Option(
        "--dense-index", help="FAISS index type: auto (exact up to 50k chunks, HNSW above), "
                              "flat, hnsw or hnsw-sq8 (less memory) [default: keep the "
                              "index's; auto for a new one].")] = None,
) -> None:
    """Index a folder (recursively). Only new and changed files are embedded again.

    Examples: rag index ~/docs --index ~/docs-index --store qdrant --url http://127.0.0.1:6333

    RAG_PG_URL=postgresql://rag:PASSWORD@db:5432/rag rag index ~/docs --store pgvector
    """
    pg = store_name == "pgvector"
    s = settings_from(corpus=corpus, index=index_path, embedding_model=embedding_model,
                      embedding_backend=embedding_backend, chunk_words=chunk_words,
                      overlap_words=overlap_words, store=store_name,
                      qdrant_url=None if pg else url, pg_url=url if pg else None,
                      pg_schema=pg_schema, qdrant_path=qdrant_path, dense_index=dense_index)
    if (s.qdrant_url or s.qdrant_path) and s.store != "qdrant":
        fail("--url and --qdrant-path need --store qdrant (or --store pgvector for a "
             "PostgreSQL URL)")
    if pg and s.pg_url is None:
        fail("--store pgvector needs the database: --url postgresql://USER@HOST:5432/DB "
             "or RAG_PG_URL in the environment")
    progress, close = _progress_printer()
    try:
        report, where = _index(s, rebuild, progress)
    except RagError as exc:
        close()
        fail(str(exc))
    close()
    if as_json:
        typer.echo(json.dumps({"index": where, **report.to_dict()}, indent=2))
    else:
        for err in report.errors:
            typer.secho(f"skipped {err}", err=True, fg=typer.colors.YELLOW)
        for warning in report.warnings:
            typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
        typer.echo(f"Indexed {s.corpus} -> {where}: {report.summary()}")
    if report.partial:
        raise typer.Exit(EXIT_PARTIAL)


def _index(s: Settings, rebuild: bool, progress):
    """Index through the pipeline; with a store named, into that store. Returns the report
    and where the index is."""
    pipe = make_pipeline(s)
    if s.store is None or s.uses_pgvector:
        return pipe.index(s.corpus, rebuild=rebuild, progress=progress), pipe.index_location
    from index.builder import build_index
    from index.vectorstores import StoreSpec, qdrant_spec

    spec = (qdrant_spec(s.index_path, url=s.qdrant_url, path=s.qdrant_path)
            if s.store == "qdrant" else StoreSpec())
    return build_index(s.corpus, s.index_path, pipe.embedder, pipe.chunker, rebuild=rebuild,
                       progress=progress, store_spec=spec, dense=pipe.dense_spec()), \
        str(s.index_path)


NoWorkerOpt = Annotated[bool, typer.Option(
    "--no-worker", help="Answer in this process instead of the background worker that "
                        "keeps the models loaded [env RAG_WORKER=0].")]


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
    corpus: Annotated[Path | None, typer.Option(
        help="Corpus whose default index to use (indexed first if it has none).")] = None,
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
                _print_sources(ev.get("sources", []))
            elif kind == "queued" and not as_json and ev["position"] != position:
                position = ev["position"]
                typer.secho(f"(the model is busy: your question is number {position} in "
                            f"line)", err=True, fg=typer.colors.YELLOW)
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
    _print_answer(answer)


def _local_events(s: Settings, question: str, auto_index: bool):
    """The answer's events from a pipeline in this process."""
    from index import store

    pipe = make_pipeline(s)
    if auto_index and not s.uses_pgvector and not store.exists(s.index_path):
        typer.secho(f"No index yet for {s.corpus}; indexing it first.", err=True)
        pipe.index(s.corpus)
    for event in pipe.ask_stream(question):
        yield event.to_dict()


def _worker_events(s: Settings, question: str, auto_index: bool):
    """The answer's events from the background worker, or None (after a note) when the
    worker cannot be used."""
    from rag.errors import WorkerError
    from rag.worker import WorkerClient

    client = WorkerClient(idle_s=s.worker_idle)
    try:
        client.ensure()
    except WorkerError as exc:
        typer.secho(f"Note: {exc}; answering in this process.", err=True,
                    fg=typer.colors.YELLOW)
        return None

    def events():
        from index import store

        if auto_index and not s.uses_pgvector and not store.exists(s.index_path):
            typer.secho(f"No index yet for {s.corpus}; indexing it first.", err=True)
            for _ in client.index(s, s.corpus):
                pass
        yield from client.ask(s, question)

    return events()


def _print_sources(sources: list[dict]) -> None:
    typer.secho("Sources:", err=True, bold=True)
    for i, p in enumerate(sources, start=1):
        snippet = " ".join(p["text"].split())
        snippet = snippet[:140] + ("…" if len(snippet) > 140 else "")
        typer.echo(f"  #{i} {where(p)} {snippet}", err=True)
    typer.echo("", err=True)


def where(p: dict) -> str:
    """A passage's file, page or slide and span: ``report.pdf, page 3 [120:240]``."""
    from rag.types import page_label

    page = page_label(p["doc"], p.get("page"))
    return f"{p['doc']}{', ' + page if page else ''} [{p['start']}:{p['end']}]"


def _print_answer(answer: dict) -> None:
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
        snippet = " ".join(c["text"].split())
        typer.echo(f"[{c['n']}] {where(c)} {snippet}")
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


def models() -> None:
    """List the packaged generator models and whether they are installed."""
    from rag.models import DEFAULT_MODEL, PACKAGED_MODELS, installed_models

    have = set(installed_models())
    for m in PACKAGED_MODELS.values():
        mark = "installed" if m.name in have else f"not installed (pip install {m.pip})"
        default = " (default)" if m.name == DEFAULT_MODEL else ""
        typer.echo(f"{m.name}{default}: {m.description}; {mark}")


def prepare_model(model: ModelOpt = None) -> None:
    """Assemble a packaged model from its installed packages and verify its sha256."""
    from rag.models import PACKAGED_MODELS, packaged_model_path

    name = model or Settings().model
    if name not in PACKAGED_MODELS:
        fail(f"{name!r} is not a packaged model; choose from {', '.join(PACKAGED_MODELS)}")
    try:
        path = packaged_model_path(name)
    except RagError as exc:
        fail(str(exc))
    typer.echo(f"{name}: {path} (sha256 verified)")


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
    import os

    s = settings_from(index=index_path, corpus=corpus, model=model, k=k, llm_url=llm_url,
                      backend=backend or ("openai" if llm_url else None), pg_url=pg_url,
                      pg_schema=pg_schema)
    token = auth or os.environ.get("RAG_API_TOKEN") or None
    try:
        import uvicorn

        from rag.api import create_app
    except ImportError as exc:
        fail(f"the API needs fastapi and uvicorn ({exc.name} is missing); install them "
             f"with: pip install 'cited-rag[server]'")
    try:
        pipe = make_pipeline(s)
        from index import store

        if not s.uses_pgvector and not store.exists(s.index_path) and index_path is None:
            typer.secho(f"No index yet for {s.corpus}; indexing it first.", err=True)
            pipe.index(s.corpus)
        pipe.warm_up()
    except RagError as exc:
        fail(str(exc))
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        typer.secho("Warning: serving beyond this machine without --auth.", err=True,
                    fg=typer.colors.YELLOW)
    typer.echo(f"cited-rag API on http://{host}:{port} (docs at /docs)", err=True)
    uvicorn.run(create_app(pipe, token=token), host=host, port=port, log_level="warning")



# ---- the background worker -------------------------------------------------------------
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
    from rag.worker import WorkerClient, socket_path

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
    from rag.worker import WorkerClient

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
    from rag.worker import WorkerClient, socket_path

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
    """Add the pipeline's commands to the ``rag`` app."""
    app.command()(index)
    app.command()(ask)
    from rag.chat_cli import chat

    app.command()(chat)
    app.command()(models)
    app.command("prepare-model")(prepare_model)
    app.command("api")(api)
    app.add_typer(worker_app, name="worker")
