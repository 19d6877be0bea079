"""Markdown tables of a ``rag bench`` run (``eval.bench.run_bench``'s results)."""

from __future__ import annotations


def _size(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def to_markdown(r: dict) -> str:
    s = r["settings"]
    lines = [f"Machine: {r['machine']['cpus']} CPUs, {r['machine']['platform']}, Python "
             f"{r['machine']['python']}. Embeddings: {s['embedding_model']} "
             f"({s['embedding_backend']}); generator: {s['model']} ({s['backend']}).", ""]
    lines += ["| measure | pipeline | raw component | ratio | peak RSS |",
              "|---|---|---|---|---|"]
    b = r.get("build")
    if b:
        lines.append(f"| index build, {b['chunks']} chunks of real text | "
                     f"{b['build_chunks_per_s']} chunks/s | {b['raw_chunks_per_s']} chunks/s "
                     f"(encode) | {b['ratio']}× | {b['peak_rss_mb']} MB |")
    for x in r.get("retrieval", []):
        lines.append(
            f"| retrieval p50 / p95, {_size(x['chunks'])} chunks ({x['index_type']}) | "
            f"{x['retrieve']['p50_ms']} / {x['retrieve']['p95_ms']} ms | "
            f"{x['raw_faiss_flat']['p50_ms']} / {x['raw_faiss_flat']['p95_ms']} ms "
            f"(exact FAISS) | {_ratio(x['retrieve']['p50_ms'], x['raw_faiss_flat']['p50_ms'])}"
            f" | {x['peak_rss_mb']} MB |")
    g = r.get("generation")
    if g and "ratio" in g:
        lines.append(f"| generation, {g['tokens']} tokens | {g['pipeline_tokens_per_s']} "
                     f"tokens/s | {g['raw_tokens_per_s']} tokens/s (llama.cpp) | "
                     f"{g['ratio']}× | {g['peak_rss_mb']} MB |")
    c = r.get("prompt_cache")
    if c and "speedup" in c:
        lines.append(f"| fixed prompt prefix ({c['prefix_tokens']} tokens) into the KV cache |"
                     f" {c['loaded_s']} s (loaded from the prompt cache) | {c['processed_s']} "
                     f"s (llama.cpp eval) | {c['speedup']}× faster | |")
    e = r.get("end_to_end")
    if e:
        lines.append(f"| end to end, {e['questions']} NHS questions: p50 / p95 | "
                     f"{e['latency_p50_s']} / {e['latency_p95_s']} s | | | "
                     f"{e['peak_rss_mb']} MB |")
        lines.append(f"| time to first token p50 / p95 | {e['first_token_p50_s']} / "
                     f"{e['first_token_p95_s']} s | | | |")
        if "sources_p50_ms" in e:
            lines.append(f"| time to the sources (retrieval done) p50 | "
                         f"{e['sources_p50_ms']} ms | | | |")
    u = r.get("update")
    if u:
        lines.append(f"| add {u['new_documents']} documents ({u['new_chunks']} chunks) to "
                     f"{_size(u['base_chunks'])} chunks, embedding excluded | "
                     f"{u['add_to_base_s']} s | {u['add_to_empty_s']} s (same documents, "
                     f"empty index) | {u['ratio']}× | {u['peak_rss_mb']} MB |")
        if "ratio_with_real_embedding" in u:
            lines.append(f"| the same with the real embedding time ({u['real_embedding_s']} s)"
                         f" | | | {u['ratio_with_real_embedding']}× | |")
    if r.get("retrieval"):
        lines += ["", "Retrieval breakdown (p50 ms) and the dense index. Search-only sizes: "
                  "clustered random unit vectors and Zipf texts, not embedded text.", "",
                  "| chunks | index | query embedding | BM25 | dense search | exact FAISS | "
                  "recall@10 vs exact | bytes/vector (flat) | dense build s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for x in r["retrieval"]:
            lines.append(
                f"| {_size(x['chunks'])} | {x['index_type']} | {x['query_embedding']['p50_ms']}"
                f" | {x['bm25']['p50_ms']} | {x['dense_search']['p50_ms']} | "
                f"{x['raw_faiss_flat']['p50_ms']} | {x['recall_at_10']} | "
                f"{x['bytes_per_vector']} ({x['flat_bytes_per_vector']}) | "
                f"{x['dense_build_s']} |")
    loads = [f"{k.replace('_', ' ')} {r[k]} s" for k in ("embedding_load_s", "model_load_s")
             if k in r]
    lines += ["", f"Loads: {', '.join(loads) or 'none'}; process peak RSS "
              f"{r.get('peak_rss_mb')} MB."]
    return "\n".join(lines) + "\n"


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "n/a"
