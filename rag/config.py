"""One settings object. Defaults < environment variables (``RAG_*``) < CLI flags."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from index.ann import FLAT_MAX
from index.embedders import DEFAULT_EMBEDDING_MODEL
from index.home import BUNDLED_CORPUS, data_home
from rag.models import DEFAULT_MODEL


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
    # most tokens of evidence (naive: passages) in one prompt; also capped by n_ctx
    context_tokens: int = Field(1536, ge=64)
    seed: int = 0
    # documents that address the assistant (rag.screen): "model" = the learned screen,
    # "phrases" = the fixed phrase list of index.loaders (the earlier behaviour, kept for
    # side-by-side evaluation), "off" = none set aside
    screen: Literal["model", "phrases", "off"] = "model"
    # answers say so when the evidence disagrees, citing each side (rag.conflicts)
    conflicts: bool = True
    max_question_chars: int = Field(2000, ge=10)
    # where `rag index` puts the vectors (None: keep the index's store, else FAISS)
    store: Literal["faiss", "qdrant"] | None = None
    # FAISS index type (index.ann): auto = exact up to dense_flat_max vectors, HNSW above;
    # None keeps what the index was built with (auto for a new one)
    dense_index: Literal["auto", "flat", "hnsw", "hnsw-sq8"] | None = None
    dense_flat_max: int = Field(FLAT_MAX, ge=1)
    qdrant_url: str | None = None  # a Qdrant server, e.g. http://127.0.0.1:6333
    qdrant_path: Path | None = None  # Qdrant local mode folder [default: INDEX/qdrant]
    # a served model behind an OpenAI-compatible API (backend "openai")
    llm_url: str | None = None  # e.g. http://127.0.0.1:8080/v1
    llm_api_key: str | None = None
    llm_timeout: float = Field(60.0, gt=0)  # seconds to wait for the next streamed piece
    llm_retries: int = Field(2, ge=0, le=10)  # retries on connection errors and 5xx

    @field_validator("corpus", "index", "qdrant_path", mode="before")
    @classmethod
    def _expand(cls, v):
        return Path(v).expanduser() if v not in (None, "") else None

    @property
    def index_path(self) -> Path:
        return self.index or default_index_for(self.corpus)

    def with_overrides(self, **kw) -> Settings:
        """A copy with the given non-None values replaced (CLI flags), validated."""
        data = self.model_dump()
        data.update({k: v for k, v in kw.items() if v is not None})
        return Settings.model_validate(data)
