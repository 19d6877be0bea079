"""The dense index's type, chosen by size: exact search while it is fast, a graph above.

- ``flat``: exact inner-product search (``IndexFlatIP``); 4 bytes per dimension.
- ``hnsw``: an HNSW graph over the full vectors (``IndexHNSWFlat``); approximate, a few
  hundred microseconds per query at a million vectors, about 1.7 KB per 384-d vector.
- ``hnsw-sq8``: the same graph over 8-bit scalar-quantised vectors (``IndexHNSWSQ``), for
  when memory matters more than the last point of recall (about a third of the memory).

``auto`` picks ``flat`` up to ``flat_max`` vectors and ``hnsw`` above; ``rag bench``
measures where exact search stops being cheap and what recall@10 the graph keeps.
The resolved spec is recorded in the index manifest (``dense``) and applied on load.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import numpy as np

DENSE_TYPES = ("auto", "flat", "hnsw", "hnsw-sq8")
# Above this many vectors ``auto`` builds HNSW. Measured with ``rag bench``: exact search
# costs about 0.14 ms per 1k vectors per query on 2 cores (0.8 ms at 10k, 14.5 ms at 100k),
# while HNSW stays under 1 ms with recall@10 >= 0.99 (docs/benchmarks.md); at 50k exact
# search (~7 ms) still leaves the retrieval inside its 20 ms budget without a graph to build.
FLAT_MAX = 50_000


@dataclass(frozen=True)
class DenseSpec:
    """How the dense vectors are indexed. ``type`` may be ``auto`` until ``resolve``."""

    type: str = "auto"
    flat_max: int = FLAT_MAX
    m: int = 32  # HNSW links per node
    ef_construction: int = 80
    ef_search: int = 128  # candidates explored per query; at least the k asked for

    def __post_init__(self) -> None:
        if self.type not in DENSE_TYPES:
            raise ValueError(f"dense index type must be one of {', '.join(DENSE_TYPES)}; "
                             f"got {self.type!r}")
        for name in ("flat_max", "m", "ef_construction", "ef_search"):
            if getattr(self, name) < 1:
                raise ValueError(f"dense index {name} must be >= 1, got {getattr(self, name)}")

    def resolve(self, n: int) -> DenseSpec:
        """The concrete type for an index of ``n`` vectors."""
        if self.type != "auto":
            return self
        return replace(self, type="flat" if n <= self.flat_max else "hnsw")

    def to_manifest(self, n: int) -> dict:
        """The resolved spec for ``n`` vectors, remembering what was asked for."""
        return {**asdict(self.resolve(n)), "requested": self.type}

    @classmethod
    def from_manifest(cls, manifest: dict, requested: bool = False) -> DenseSpec:
        """The spec an index was built with (indexes from before this field: flat), or
        with ``requested`` the one it was asked for (``auto`` re-resolves as it grows)."""
        d = dict(manifest.get("dense", {"type": "flat"}))
        asked = d.pop("requested", d["type"])
        return cls(**d) if not requested else replace(cls(**d), type=asked)


def new_index(dim: int, spec: DenseSpec):
    """An empty FAISS index of ``spec``'s (resolved) type, inner product on unit vectors."""
    import faiss

    if spec.type == "flat":
        return faiss.IndexFlatIP(dim)
    if spec.type == "hnsw":
        index = faiss.IndexHNSWFlat(dim, spec.m, faiss.METRIC_INNER_PRODUCT)
    elif spec.type == "hnsw-sq8":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, spec.m,
                                  faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"resolve the dense spec before building; got type {spec.type!r}")
    index.hnsw.efConstruction = spec.ef_construction
    index.hnsw.efSearch = spec.ef_search
    return index


def build(embeddings: np.ndarray, dim: int, spec: DenseSpec):
    """A FAISS index of ``spec``'s type over ``embeddings`` (rows in order)."""
    index = new_index(dim, spec.resolve(len(embeddings)))
    add(index, embeddings)
    return index


def add(index, vectors: np.ndarray) -> None:
    """Append rows; an untrained quantiser (SQ8) is trained on the first batch."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if not len(vectors):
        return
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)


def configure(index, spec: DenseSpec) -> None:
    """Apply search-time parameters to a loaded index."""
    hnsw = getattr(index, "hnsw", None)
    if hnsw is not None:
        hnsw.efSearch = spec.ef_search


def bytes_per_vector(index) -> float:
    """Memory of the index divided by its vectors (serialised size, which is what FAISS
    holds in memory for these types)."""
    import faiss

    if index.ntotal == 0:
        return 0.0
    return len(faiss.serialize_index(index)) / index.ntotal
