"""The measures of ``rag bench`` that run the generator: decoding beside raw llama.cpp,
the prompt cache, and questions end to end (``eval.bench``)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from eval.bench.measure import _pct, peak_rss


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
        pipe.variant(generator=rec).ask(question)
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
    from eval.gold import GOLD_DEFAULT, load_gold

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
    from rag.answer.models import prompt_samples
    from rag.generate.prompt_cache import PromptCache, common_prefix

    gen = pipe.generator
    llm = getattr(gen, "_llm", None)
    if llm is None or not hasattr(gen, "prompt_tokens"):
        return {"skipped": "the generator is not llama.cpp"}
    prefix = common_prefix([gen.prompt_tokens(m) for m in prompt_samples("verified")])
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
