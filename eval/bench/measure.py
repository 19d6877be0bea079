"""The measures of ``rag bench`` that need no generator: the sizes and the run's settings,
peak memory, and the build, retrieval and update benchmarks (``eval.bench``)."""

from __future__ import annotations

import gc
import re
import resource
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval.bench import synthetic

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmM]?)\s*$")


def parse_sizes(text: str) -> list[int]:
    """"10k,100k,1M" -> [10000, 100000, 1000000]."""
    out = []
    for part in text.split(","):
        m = _SIZE.match(part)
        if not m:
            raise ValueError(f"size {part!r} is not a number like 5000, 10k or 1M")
        n = float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6}[m.group(2).lower()]
        if n < 100:
            raise ValueError(f"size {part!r} is below 100 chunks")
        out.append(int(n))
    return out


@dataclass
class BenchConfig:
    sizes: list[int] = field(default_factory=lambda: [10_000])
    build_chunks: int = 200  # chunks of real text for the build benchmark
    queries: int = 100  # retrieval queries per size
    update_base: int = 0  # chunks in the large index for the update benchmark (0: skip)
    update_docs: int = 1000
    e2e_questions: int = 10  # NHS gold questions for the end-to-end section (0: skip)
    generation: bool = True
    k: int = 5


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _ms(values: list[float]) -> dict:
    return {"p50_ms": round(_pct(values, 50) * 1e3, 3), "p95_ms": round(_pct(values, 95) * 1e3, 3)}


@contextmanager
def peak_rss(out: dict) -> Iterator[None]:
    """Peak resident memory (MB) of the block, from the kernel's high-water mark reset at
    its start (Linux), else the process's peak so far."""
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        reset = True
    except OSError:
        pass
    try:
        yield
    finally:
        hwm = None
        if reset:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1]) / 1024
        if hwm is None:
            hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        out["peak_rss_mb"] = round(hwm, 1)


def _timed(fn: Callable, *args, **kwargs) -> tuple[float, object]:
    t = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - t, result


# ---- build --------------------------------------------------------------------------
def raw_encoder(embedder) -> Callable[[list[str]], np.ndarray]:
    """The raw component under the embedder: SentenceTransformer.encode for torch, the
    embedder itself for the others (they are thin over onnxruntime)."""
    model = getattr(embedder, "_model", None)
    if getattr(embedder, "backend", None) == "torch" and model is not None:
        return lambda texts: model.encode(texts, batch_size=embedder.batch_size,
                                          normalize_embeddings=True, convert_to_numpy=True,
                                          show_progress_bar=False)
    return embedder.embed_documents


def bench_build(embedder, n_chunks: int, rounds: int = 2) -> dict:
    from index.builder import build_index, search_text
    from index.chunking import ChunkerConfig, chunk_document
    from index.load.loaders import load_document
    from rag.config import BUNDLED_CORPUS

    res: dict = {}
    with peak_rss(res), tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        chunker = ChunkerConfig()
        n_docs = max(1, round(n_chunks / 5.4))  # ~5.4 chunks per 600-word document
        for i, text in enumerate(synthetic.nhs_documents(BUNDLED_CORPUS, n_docs)):
            (corpus / f"doc{i:05d}.txt").write_text(text, encoding="utf-8")
        texts = []
        for path in sorted(corpus.iterdir()):
            doc = load_document(path, corpus)
            texts += [search_text(doc, ch) for ch in chunk_document(doc, chunker)]
        embedder.warm_up()
        encode = raw_encoder(embedder)
        encode(texts[:8])
        raw, built = [], []
        for r in range(rounds):  # alternate, so both see the same machine
            raw.append(len(texts) / _timed(encode, texts)[0])
            idx = Path(tmp) / f"idx{r}"
            dt, report = _timed(build_index, corpus, idx, embedder, chunker)
            if report.total_chunks != len(texts):
                raise RuntimeError(f"the build made {report.total_chunks} chunks where the "
                                   f"raw encode had {len(texts)}: the two do different work")
            built.append(len(texts) / dt)
        res.update(chunks=len(texts), documents=n_docs, raw_chunks_per_s=round(max(raw), 2),
                   build_chunks_per_s=round(max(built), 2),
                   ratio=round(max(built) / max(raw), 3), rounds=rounds)
    return res


# ---- retrieval ----------------------------------------------------------------------
def bench_retrieval(embedder, n: int, queries: int, k: int = 5) -> dict:
    import faiss

    from index.stores import ann, disk
    from index.stores.ann import DenseSpec
    from rag.retrieve.retrievers import HybridRetriever

    res: dict = {"chunks": n, "data": "synthetic: clustered random unit vectors, Zipf texts"}
    with peak_rss(res):
        dim = embedder.dim
        t = time.perf_counter()
        vecs = synthetic.clustered_vectors(n, dim)
        texts = synthetic.zipf_texts(n)
        res["generate_s"] = round(time.perf_counter() - t, 1)
        spec = DenseSpec().resolve(n)
        res["index_type"] = spec.type
        dt, index = _timed(ann.build, vecs, dim, spec)
        res["dense_build_s"] = round(dt, 2)
        exact = index if spec.type == "flat" else disk.build_faiss(vecs, dim)
        dt, data = _timed(synthetic.in_memory_index, texts, vecs, faiss_index=index)
        res["bm25_and_chunks_build_s"] = round(dt, 2)
        retriever = HybridRetriever(data, embedder)
        qs = synthetic.questions(queries + 1, seed=n)  # new questions per size: no cache hits
        if hasattr(embedder, "_cache"):
            embedder._cache.clear()
        qvecs = embedder.embed_documents(qs)
        retriever.retrieve(qs[0], k)  # first-call costs (thread pools, caches) not counted
        total, embed, sparse, dense, raw = [], [], [], [], []
        for q, qv in zip(qs[1:], qvecs[1:], strict=True):
            total.append(_timed(retriever.retrieve, q, k)[0])
            embed.append(_timed(embedder.embed_documents, [q])[0])
            sparse.append(_timed(retriever.sparse, q, retriever.candidates)[0])
            dense.append(_timed(data.vectors.search, qv, retriever.candidates)[0])
            raw.append(_timed(exact.search, qv.reshape(1, -1), retriever.candidates)[0])
        near = synthetic.queries_near(vecs, 200)
        _, truth = exact.search(near, 10)
        _, got = index.search(near, 10)
        recall = float(np.mean([len(set(a) & set(b)) / 10
                                for a, b in zip(truth, got, strict=True)]))
        res.update(retrieve=_ms(total), query_embedding=_ms(embed), bm25=_ms(sparse),
                   dense_search=_ms(dense), raw_faiss_flat=_ms(raw),
                   recall_at_10=round(recall, 4),
                   bytes_per_vector=round(ann.bytes_per_vector(index), 1),
                   flat_bytes_per_vector=dim * 4, faiss_threads=faiss.omp_get_max_threads())
        del retriever, data, index, exact, vecs, texts
        gc.collect()
    return res


# ---- updates ------------------------------------------------------------------------
class RandomEmbedder:
    """Deterministic random unit vectors per text: stands in for the embedding model when
    timing everything else an update does. Its cost is excluded on purpose; the real
    embedding cost of the same chunks is reported beside it."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self._dim = name, dim

    @property
    def dim(self) -> int:
        return self._dim

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), self._dim), np.float32)
        for i, t in enumerate(texts):
            rng = np.random.default_rng(zlib.crc32(t.encode("utf-8")))
            v = rng.standard_normal(self._dim).astype(np.float32)
            out[i] = v / np.linalg.norm(v)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_documents([text])[0]


def bench_update(base_chunks: int, new_docs: int, dim: int = 384,
                 build_rate: float | None = None) -> dict:
    from index.builder import build_index

    res: dict = {"base_chunks": base_chunks, "new_documents": new_docs,
                 "data": "synthetic Zipf texts; random vectors instead of embeddings"}
    emb = RandomEmbedder("bench/random", dim)
    with peak_rss(res), tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        tmp = Path(tmp)
        dt, _ = _timed(synthetic.synthetic_index, tmp / "big", tmp / "big-idx", base_chunks,
                       emb.name, dim)
        res["base_write_s"] = round(dt, 1)
        texts = synthetic.zipf_texts(new_docs, 300, seed=7)
        for folder in ("big", "alone"):
            (tmp / folder).mkdir(exist_ok=True)
            for i, text in enumerate(texts):
                (tmp / folder / f"new{i:05d}.txt").write_text(text, encoding="utf-8")
        dt_alone, alone = _timed(build_index, tmp / "alone", tmp / "alone-idx", emb)
        dt_big, big = _timed(build_index, tmp / "big", tmp / "big-idx", emb)
        assert big.added and len(big.added) == new_docs and big.embedded_chunks == \
            alone.embedded_chunks
        res.update(new_chunks=big.embedded_chunks, add_to_empty_s=round(dt_alone, 2),
                   add_to_base_s=round(dt_big, 2), ratio=round(dt_big / dt_alone, 2))
        if build_rate:
            embed_s = big.embedded_chunks / build_rate
            res["real_embedding_s"] = round(embed_s, 1)
            res["ratio_with_real_embedding"] = round((dt_big + embed_s) /
                                                     (dt_alone + embed_s), 3)
    return res
