"""The options several commands share, each written once (``Annotated`` aliases)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
NoWorkerOpt = Annotated[bool, typer.Option(
    "--no-worker", help="Answer in this process instead of the background worker that "
                        "keeps the models loaded [env RAG_WORKER=0].")]
AskCorpusOpt = Annotated[Path | None, typer.Option(
    help="Corpus whose default index to use (indexed first if it has none).")]
