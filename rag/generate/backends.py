"""Which generator answers: ``make_generator`` picks a backend by name (llama.cpp for GGUF
models when it is installed, else transformers; ``openai`` for a served model), and
``generator_for`` builds the one a pipeline's settings ask for."""

from __future__ import annotations

import os
from pathlib import Path

from rag.config import Settings
from rag.errors import ModelError
from rag.generate.base import Generator
from rag.generate.local import LlamaCppGenerator, TransformersGenerator, llama_available
from rag.generate.models import PACKAGED_MODELS

BACKENDS = ("auto", "llama", "transformers", "openai")


def make_generator(model: str, backend: str = "auto", seed: int = 0,
                   n_ctx: int = 4096, llm_url: str | None = None,
                   n_threads: int | None = None,
                   prompt_cache: str | os.PathLike | None = None) -> Generator:
    """Pick the backend: llama.cpp for GGUF models when it is installed, else transformers;
    ``openai`` for a served model at ``llm_url`` (default: ``RAG_LLM_URL``)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}; got {backend!r}")
    if backend == "openai":
        s = Settings()
        return served_generator(s.with_overrides(model=model, seed=seed, llm_url=llm_url))
    if backend == "auto":
        is_gguf = model in PACKAGED_MODELS or model.lower().endswith(".gguf")
        backend = "llama" if is_gguf and llama_available() else "transformers"
    if backend == "llama":
        return LlamaCppGenerator(model, n_ctx=n_ctx, n_threads=n_threads, seed=seed,
                                 prompt_cache=prompt_cache)
    return TransformersGenerator(model, seed=seed)


def served_generator(settings: Settings) -> Generator:
    """The ``openai`` backend for ``settings`` (llm_url, model, llm_api_key, timeouts)."""
    from rag.generate.served import OpenAIGenerator

    if not settings.llm_url:
        raise ModelError("the openai backend needs the server's URL: --llm-url "
                         "http://HOST:PORT/v1 (or RAG_LLM_URL)")
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
    return OpenAIGenerator(settings.llm_url, settings.model, api_key=key,
                           timeout=settings.llm_timeout, retries=settings.llm_retries,
                           seed=settings.seed)


def prompt_cache_folder(settings: Settings) -> Path | None:
    """Where the generator saves its fixed prompt states (None: not saved)."""
    if not settings.prompt_cache:
        return None
    from rag.generate.prompt_cache import default_folder

    return default_folder()


def generator_for(settings: Settings) -> Generator:
    """The generator ``settings`` ask for: the served model (``backend`` openai), else the
    model in this process with its prompt cache."""
    s = settings
    if s.backend == "openai":
        return served_generator(s)
    return make_generator(s.model, s.backend, seed=s.seed, n_ctx=s.n_ctx, n_threads=s.threads,
                          prompt_cache=prompt_cache_folder(s))
