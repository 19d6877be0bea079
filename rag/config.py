"""One settings object. Defaults < environment variables (``RAG_*``) < CLI flags."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.embed.base import DEFAULT_EMBEDDING_MODEL
from index.home import BUNDLED_CORPUS, data_home
from index.stores.ann import FLAT_MAX
from rag.generate.models import DEFAULT_MODEL

if TYPE_CHECKING:
    from index.stores.base import VectorStore


def default_index_for(corpus: Path) -> Path:
    """Each corpus folder gets its own index under the data home."""
    corpus = Path(corpus).expanduser().resolve()
    tag = hashlib.sha256(str(corpus).encode()).hexdigest()[:8]
    return data_home() / "indexes" / f"{corpus.name or 'corpus'}-{tag}"


class Settings(BaseSettings):
    """Every knob of the pipeline. ``RAG_K=8`` in the environment sets ``k`` and so on."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    corpus: Path = BUNDLED_CORPUS
    index: Path | None = None
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    # torch, or an exported copy on onnxruntime (fp32, int8) or OpenVINO (fp32/bf16, int8)
    embedding_backend: Literal["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"] = "torch"
    chunk_words: int = Field(120, ge=8)
    overlap_words: int = Field(30, ge=0)
    k: int = Field(5, ge=1, le=100)
    retrieval: Literal["hybrid", "dense", "bm25"] = "hybrid"
    model: str = DEFAULT_MODEL
    backend: Literal["auto", "llama", "transformers", "openai"] = "auto"
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(160, ge=8, le=4096)
    n_ctx: int = Field(4096, ge=256)
    threads: int | None = Field(None, ge=1)  # llama.cpp threads [default: all cores]
    answer_mode: Literal["verified", "naive"] = "verified"
    # evidence sentences in a verified prompt; its new tokens set the time to the first
    # answer token (4 answered the NHS and SQuAD gold sets as well as 5, 3 did worse)
    evidence_sentences: int = Field(4, ge=1, le=20)
    # passages whose sentences compete to be evidence (k of them are shown as retrieved):
    # over the 12 SQuAD dev articles, the 4 evidence sentences held the answer for 0.911 of
    # answerable questions when chosen from 8 passages, 0.898 from 5, same prompt length
    evidence_pool: int = Field(8, ge=1, le=100)
    # the graded decision's operating points (rag.grounding.decision) [default: the fitted ones,
    # eval/baselines/decision]: a draft whose P(right) reaches answer_threshold is
    # answered with confidence; a question whose P(covered) is below caution_threshold
    # is refused (on P(right) for a decision without a coverage model); between, a caution
    answer_threshold: float | None = Field(None, ge=0.0, le=1.0)
    caution_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # most tokens of evidence (naive: passages) in one prompt; also capped by n_ctx
    context_tokens: int = Field(1536, ge=64)
    seed: int = 0
    # documents that address the assistant (rag.grounding.screen): "model" = the learned screen,
    # "phrases" = the fixed phrase list of index.load.loaders (the earlier behaviour, kept for
    # side-by-side evaluation), "off" = none set aside
    screen: Literal["model", "phrases", "off"] = "model"
    # answers say so when the evidence disagrees, citing each side (rag.grounding.conflicts)
    conflicts: bool = True
    max_question_chars: int = Field(2000, ge=10)
    # where `rag index` puts the vectors (None: keep the index's store, else FAISS; with
    # pg_url set: pgvector)
    store: Literal["faiss", "qdrant", "pgvector"] | None = None
    # FAISS index type (index.stores.ann): auto = exact up to dense_flat_max vectors, HNSW above;
    # None keeps what the index was built with (auto for a new one)
    dense_index: Literal["auto", "flat", "hnsw", "hnsw-sq8"] | None = None
    dense_flat_max: int = Field(FLAT_MAX, ge=1)
    qdrant_url: str | None = None  # a Qdrant server, e.g. http://127.0.0.1:6333
    qdrant_path: Path | None = None  # Qdrant local mode folder [default: INDEX/qdrant]
    # an index held in PostgreSQL with pgvector (index.stores.pgvector): a connection string such
    # as postgresql://USER:PASSWORD@HOST:5432/DB. When set, every command reads and
    # `rag index` writes that index instead of a folder. Secret: shown redacted.
    pg_url: SecretStr | None = None
    pg_schema: str = Field("cited_rag", pattern=r"^[a-z_][a-z0-9_]{0,62}$")  # one per index
    pg_pool_size: int = Field(4, ge=1, le=100)  # connections each process may hold
    # a served model behind an OpenAI-compatible API (backend "openai")
    llm_url: str | None = None  # e.g. http://127.0.0.1:8080/v1
    llm_api_key: SecretStr | None = None  # the server's Bearer token. Secret: never shown
    llm_timeout: float = Field(60.0, gt=0)  # seconds to wait for the next streamed piece
    llm_retries: int = Field(2, ge=0, le=10)  # retries on connection errors and 5xx
    # questions that may wait for the model while it answers one; more get BusyError
    # (HTTP 503 with Retry-After in the API). 32 keeps 20 users at once in line (about a
    # minute's wait on two cores) and tells the 34th to come back
    queue_limit: int = Field(32, ge=0)
    # answers generated at once; a model in this process takes one at a time, so this
    # applies to a served model (backend openai) with parallel slots (vLLM, llama-server)
    generation_slots: int = Field(1, ge=1, le=256)
    # llama.cpp: keep the fixed part of the prompts (instructions, template) in a saved
    # prompt cache under $RAG_HOME/cache/prompts, so a new process does not process it
    prompt_cache: bool = True
    # `rag ask` and `rag eval` hand questions to a background worker that keeps the
    # models loaded (serve.worker); it exits after worker_idle seconds without questions
    worker: bool = True
    worker_idle: float = Field(300.0, gt=0)

    @field_validator("corpus", "index", "qdrant_path", mode="before")
    @classmethod
    def _expand(cls, v):
        return Path(v).expanduser() if v not in (None, "") else None

    @field_validator("pg_url", "llm_api_key", mode="before")
    @classmethod
    def _blank_url(cls, v):
        return None if v in (None, "") else v

    @property
    def index_path(self) -> Path:
        return self.index or default_index_for(self.corpus)

    def vector_store(self) -> VectorStore:
        """The store the index is kept in (``index.stores.factory.open_store``): the
        PostgreSQL database at ``pg_url``, else the folder ``index_path`` with its vectors
        where ``store`` says. Nothing connects until it is used."""
        from index.stores.factory import open_store  # the stores' modules load when used

        return open_store(
            self.index_path, store=self.store,
            pg_url=self.pg_url.get_secret_value() if self.pg_url is not None else None,
            pg_schema=self.pg_schema, pg_pool_size=self.pg_pool_size,
            qdrant_url=self.qdrant_url, qdrant_path=self.qdrant_path,
            dense_index=self.dense_index, dense_flat_max=self.dense_flat_max)

    def secrets(self) -> dict[str, str]:
        """The secret settings that are set, by name, in clear: for the worker's socket
        (serve.worker), which carries every setting; never for display."""
        return {name: value.get_secret_value() for name in type(self).model_fields
                if isinstance(value := getattr(self, name), SecretStr)}

    def with_overrides(self, **kw) -> Settings:
        """A copy with the given non-None values replaced (CLI flags), validated. An
        unknown name is an error, never ignored."""
        unknown = sorted(set(kw) - set(type(self).model_fields))
        if unknown:
            raise ValueError(f"unknown settings {', '.join(unknown)}; known: "
                             f"{', '.join(type(self).model_fields)}")
        data = self.model_dump()
        data.update({k: v for k, v in kw.items() if v is not None})
        return Settings.model_validate(data)
