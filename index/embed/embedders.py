"""Embedders: the sentence-transformers (torch) implementation and ``make_embedder``, which
picks a backend (torch, or onnxruntime / OpenVINO on an ONNX export:
``index.embed.onnx_embedder``). The ``Embedder`` protocol and what every backend shares are in
``index.embed.base``."""

from __future__ import annotations

import logging
import os
import time

import numpy as np

from index.embed.base import (
    DEFAULT_EMBEDDING_MODEL,
    CachedQueryEmbedder,
    Embedder,
    resolve_embedding_model,
)
from index.errors import ModelError

log = logging.getLogger(__name__)

# torch: sentence-transformers; onnx / onnx-int8: onnxruntime on an exported (quantized) copy;
# openvino: OpenVINO on the exported copy (bf16 on CPUs with AMX / AVX512-BF16); openvino-int8:
# OpenVINO on a statically quantized copy (int8 weights and activations)
EMBEDDING_BACKENDS = ("torch", "onnx", "onnx-int8", "openvino", "openvino-int8")


class SentenceTransformerEmbedder(CachedQueryEmbedder):
    """sentence-transformers model on torch, loaded lazily on first use (or ``warm_up``)."""

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, batch_size: int = 32,
                 device: str = "cpu", query_cache: int = 1024) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        super().__init__(model, query_cache)
        self.batch_size = batch_size
        self.device = device
        self.backend = "torch"
        self._model = None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        path = resolve_embedding_model(self.name)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            from sentence_transformers import SentenceTransformer

            self._model = SentenceTransformer(path, device=self.device)
        except OSError as exc:
            raise ModelError(
                f"cannot load embedding model {self.name!r} offline: give a local folder or a "
                f"model already in the Hugging Face cache ({str(exc).splitlines()[0]})") from exc

    @property
    def dim(self) -> int:
        self.warm_up()
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        return int(get_dim())

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self._model.encode(texts, batch_size=self.batch_size,
                                  normalize_embeddings=True, convert_to_numpy=True,
                                  show_progress_bar=False)
        return np.ascontiguousarray(vecs, dtype=np.float32)


def make_embedder(model: str = DEFAULT_EMBEDDING_MODEL, backend: str = "torch", *,
                  batch_size: int = 32, device: str = "cpu", query_cache: int = 1024,
                  cache_dir: str | os.PathLike | None = None,
                  threads: int | None = None) -> Embedder:
    """The embedder for ``backend`` (one of ``EMBEDDING_BACKENDS``). The onnx and openvino
    backends export (and quantize) the model once into ``cache_dir`` [default:
    $RAG_HOME/models/onnx]; ``device`` is for torch only, ``threads`` for the others
    [default: all cores]. Nothing loads until first use."""
    if backend == "torch":
        return SentenceTransformerEmbedder(model, batch_size=batch_size, device=device,
                                           query_cache=query_cache)
    if backend in EMBEDDING_BACKENDS:
        from index.embed.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(model, quantized=backend.endswith("-int8"), batch_size=batch_size,
                            cache_dir=cache_dir, threads=threads, query_cache=query_cache,
                            runtime="openvino" if backend.startswith("openvino")
                            else "onnxruntime")
    raise ValueError(f"embedding backend must be one of {', '.join(EMBEDDING_BACKENDS)}; "
                     f"got {backend!r}")


def encode_throughput(embedder: Embedder, texts: list[str], rounds: int = 1) -> float:
    """Chunks per second of ``embedder.embed_documents(texts)``: best of ``rounds`` timed runs,
    after loading the model and one untimed small batch."""
    if not texts or rounds < 1:
        raise ValueError("encode_throughput needs texts and rounds >= 1")
    if hasattr(embedder, "warm_up"):
        embedder.warm_up()
    embedder.embed_documents(texts[:8])
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        embedder.embed_documents(texts)
        best = min(best, time.perf_counter() - t0)
    return len(texts) / best
