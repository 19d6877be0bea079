"""``rag bench``: speed and memory of the pipeline, each measured beside the raw component
doing the same work in the same run.

Sections (each also reports its peak RSS):
- build: ``build_index`` on real text vs ``SentenceTransformer.encode`` (or the ONNX
  embedder's own ``embed_documents``) on the same chunk texts;
- retrieval, per size: ``HybridRetriever.retrieve`` (query embedding, dense search, BM25,
  fusion) vs raw exact FAISS search of the same query vectors, recall@10 of the dense
  index against exact search, and memory per vector. Sizes are search-only: clustered
  random unit vectors and Zipf texts (``eval.synthetic``), stated as such in the output;
- update: adding documents to a large index vs indexing the same documents alone;
- generation: the pipeline's generator vs raw llama.cpp (``Llama.create_chat_completion``)
  on the same prompt, decoding tokens/s;
- end to end: ``Pipeline.ask`` on NHS gold questions, latency and time to first token.
"""

from __future__ import annotations

import gc
import os
import platform
import re
import resource
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eval import synthetic

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
    from index.loaders import load_document
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

    from index import ann, store
    from index.ann import DenseSpec
    from rag.retrieval import HybridRetriever

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
        exact = index if spec.type == "flat" else store.build_faiss(vecs, dim)
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


# ---- generation and end to end ------------------------------------------------------
class _Recorder:
    """Wraps a generator and keeps the last messages it was sent."""

    def __init__(self, inner) -> None:
        self.inner, self.name, self.messages = inner, inner.name, None

    def warm_up(self) -> None:
        self.inner.warm_up()

    def stream(self, messages, **kwargs):
        self.messages = messages
        yield from self.inner.stream(messages, **kwargs)


def _decode_rate(pieces: Iterator[str]) -> tuple[float, int, float]:
    """(tokens/s after the first piece, pieces, seconds to the first piece)."""
    t0 = time.perf_counter()
    stamps = [time.perf_counter() for _ in pieces]
    if len(stamps) < 2:
        return float("nan"), len(stamps), (stamps[0] - t0) if stamps else float("nan")
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]), len(stamps), stamps[0] - t0


def bench_generation(pipe, question: str, max_tokens: int = 64, rounds: int = 3) -> dict:
    res: dict = {"question": question, "max_tokens": max_tokens}
    with peak_rss(res):
        gen = pipe.generator
        rec = _Recorder(gen)
        pipe._generator = rec
        try:
            pipe.ask(question)
        finally:
            pipe._generator = gen
        messages = rec.messages
        llm = getattr(gen, "_llm", None)
        if messages is None or llm is None:
            res["skipped"] = "the generator is not llama.cpp (no raw component to compare)"
            return res

        def raw():
            for part in llm.create_chat_completion(messages=messages, max_tokens=max_tokens,
                                                   temperature=0.0, top_k=1, stream=True,
                                                   seed=gen.seed):
                piece = part["choices"][0]["delta"].get("content")
                if piece:
                    yield piece

        ours, base = [], []
        for _ in range(rounds):
            ours.append(_decode_rate(gen.stream(messages, max_tokens=max_tokens,
                                                temperature=0.0)))
            base.append(_decode_rate(raw()))
        o = statistics.median(r[0] for r in ours)
        b = statistics.median(r[0] for r in base)
        res.update(pipeline_tokens_per_s=round(o, 2), raw_tokens_per_s=round(b, 2),
                   ratio=round(o / b, 3), tokens=ours[0][1],
                   prompt_tokens=_prompt_tokens(gen, messages))
    return res


def _prompt_tokens(gen, messages) -> int | None:
    count = getattr(gen, "count_tokens", None)
    return count(" ".join(m["content"] for m in messages)) if count else None


def bench_end_to_end(pipe, n_questions: int) -> dict:
    from eval.cli import GOLD_DEFAULT
    from eval.gold import load_gold

    items = load_gold(GOLD_DEFAULT)[:n_questions]
    res: dict = {"questions": len(items), "gold": GOLD_DEFAULT.name}
    with peak_rss(res):
        total, first, retrieve, sources = [], [], [], []
        for item in items:
            t0 = time.perf_counter()
            ans = None
            for ev in pipe.ask_stream(item.question):
                if ev.kind == "sources":
                    sources.append(time.perf_counter() - t0)
                elif ev.kind == "answer":
                    ans = ev.answer
            t = ans.timings
            total.append(t["total_s"])
            retrieve.append(t["retrieve_s"])
            if "first_token_s" in t:
                first.append(t["first_token_s"])
        res.update(latency_p50_s=round(_pct(total, 50), 2), latency_p95_s=round(_pct(total, 95), 2),
                   first_token_p50_s=round(_pct(first, 50), 2),
                   first_token_p95_s=round(_pct(first, 95), 2),
                   retrieve_p50_ms=round(_pct(retrieve, 50) * 1e3, 1),
                   sources_p50_ms=round(_pct(sources, 50) * 1e3, 1))
    return res


def bench_prompt_cache(pipe, rounds: int = 3) -> dict:
    """The fixed prompt prefix put in the KV cache by llama.cpp processing it (the raw
    component: ``Llama.eval`` of the same tokens) against loading its saved state from
    the prompt cache, taking turns."""
    from rag.prompt_cache import PromptCache, common_prefix

    gen = pipe.generator
    llm = getattr(gen, "_llm", None)
    if llm is None or not hasattr(gen, "prompt_tokens"):
        return {"skipped": "the generator is not llama.cpp"}
    prefix = common_prefix([gen.prompt_tokens(m) for m in pipe.prompt_samples("verified")])
    res: dict = {"prefix_tokens": len(prefix)}
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        cache = PromptCache(Path(tmp), "bench")
        processed, loaded = [], []
        with gen._lock:
            for _ in range(rounds):
                llm.reset()
                t = time.perf_counter()
                llm.eval(prefix)
                processed.append(time.perf_counter() - t)
                cache.save(llm, prefix)
                llm.reset()
                t = time.perf_counter()
                assert cache.load(llm, prefix)
                loaded.append(time.perf_counter() - t)
            res["state_bytes"] = cache.path_for(prefix).stat().st_size
    p, lo = statistics.median(processed), statistics.median(loaded)
    res.update(processed_s=round(p, 3), loaded_s=round(lo, 4), speedup=round(p / lo, 1),
               rounds=rounds)
    return res


# ---- the run ------------------------------------------------------------------------
def run_bench(cfg: BenchConfig, settings, log: Callable[[str], None] = print) -> dict:
    """Every section in one process, one after the other; returns the results."""
    from rag.pipeline import Pipeline

    out: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                             "python": platform.python_version()},
                 "settings": {"embedding_model": settings.embedding_model,
                              "embedding_backend": settings.embedding_backend,
                              "model": settings.model, "backend": settings.backend,
                              "k": cfg.k}}
    pipe = Pipeline(settings)
    embedder = pipe.embedder
    t = time.perf_counter()
    embedder.warm_up()
    out["embedding_load_s"] = round(time.perf_counter() - t, 2)
    if cfg.build_chunks:
        log(f"build: {cfg.build_chunks} chunks of real text")
        out["build"] = bench_build(embedder, cfg.build_chunks)
    out["retrieval"] = []
    for n in cfg.sizes:
        log(f"retrieval: {n} chunks")
        out["retrieval"].append(bench_retrieval(embedder, n, cfg.queries, cfg.k))
    if cfg.update_base:
        log(f"update: {cfg.update_docs} documents into {cfg.update_base} chunks")
        rate = out.get("build", {}).get("build_chunks_per_s")
        out["update"] = bench_update(cfg.update_base, cfg.update_docs, embedder.dim, rate)
    if cfg.generation or cfg.e2e_questions:
        pipe.index()
        t = time.perf_counter()
        pipe.warm_up()
        out["model_load_s"] = round(time.perf_counter() - t, 2)
    if cfg.generation:
        log("generation: pipeline vs raw llama.cpp")
        out["generation"] = bench_generation(pipe, "Was the taskforce confirmed?")
    if cfg.generation:
        log("prompt prefix: processed vs loaded from the prompt cache")
        out["prompt_cache"] = bench_prompt_cache(pipe)
    if cfg.e2e_questions:
        log(f"end to end: {cfg.e2e_questions} NHS gold questions")
        out["end_to_end"] = bench_end_to_end(pipe, cfg.e2e_questions)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return out
