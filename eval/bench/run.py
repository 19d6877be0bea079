"""``run_bench``: every section of ``rag bench`` in one process, one after the other."""

from __future__ import annotations

import os
import platform
import resource
import time
from collections.abc import Callable

from eval.bench.generation import bench_end_to_end, bench_generation, bench_prompt_cache
from eval.bench.measure import BenchConfig, bench_build, bench_retrieval, bench_update


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
