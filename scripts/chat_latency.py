"""What a follow-up's rewrite adds to an answer, side by side in one run on one loaded
pipeline: each follow-up of a conversation gold set asked in its conversation (history,
rewrite) beside its standalone form asked alone; and a standalone question asked with a
history (the cheap test decides: no rewrite) beside it asked without.

    PYTHONPATH=. python scripts/chat_latency.py --gold eval/chat_gold_nhs.jsonl --limit 12

Prints one JSON object: p50/p95 of the rewrite itself, of the answers' totals, and the
cost of the needs-rewrite test. Timings on a shared machine are noisy: compare the
ratios taken in the same run."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))], 4)


def main() -> None:
    from eval.gold import load_chat_gold
    from rag.answer.conversation import history_turns, needs_rewrite
    from rag.config import BUNDLED_CORPUS, Settings
    from rag.pipeline import Pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--gold", type=Path, default=ROOT / "eval" / "chat_gold_nhs.jsonl")
    ap.add_argument("--corpus", type=Path, default=BUNDLED_CORPUS)
    ap.add_argument("--model", default=None)
    ap.add_argument("--limit", type=int, default=12, help="follow-up turns to time")
    args = ap.parse_args()

    pipe = Pipeline(Settings().with_overrides(corpus=args.corpus, model=args.model))
    pipe.index(args.corpus)
    pipe.warm_up()
    pipe.ask("Is this a warm-up question?")  # first-call costs out of the way
    turns = load_chat_gold(args.gold)
    rows = []
    for t in turns:
        if t.turn == 1 or not t.follow_up or len(rows) >= args.limit:
            continue
        earlier = [u for u in turns if u.conversation == t.conversation and u.turn < t.turn]
        # the history as a chat shell sends it: earlier questions as searched, answers
        history = [m for u in earlier for m in history_turns(
            {"question": u.standalone, "answer": "; ".join(u.item.answers) or "unknown"})]
        alone = pipe.ask(t.standalone)
        followed = pipe.ask(t.item.question, history=history)
        # the standalone form with the same history: the cheap test lets it through
        t0 = time.perf_counter()
        flagged = needs_rewrite(t.standalone, history)
        test_s = time.perf_counter() - t0
        with_history = pipe.ask(t.standalone, history=history)
        first = (followed.timings.get("first_token_s"), alone.timings.get("first_token_s"))
        rows.append({"id": t.item.id, "rewrite_s": followed.timings.get("rewrite_s"),
                     # what asking it as a follow-up adds before the answer's first token
                     "added_first_token_s": None if None in first else first[0] - first[1],
                     "followup_total_s": followed.timings["total_s"],
                     "standalone_total_s": alone.timings["total_s"],
                     "standalone_with_history_total_s": with_history.timings["total_s"],
                     "standalone_flagged": flagged, "test_s": test_s,
                     "standalone_question": followed.standalone_question,
                     "gold_standalone": t.standalone})
    rewrites = [r["rewrite_s"] for r in rows if r["rewrite_s"] is not None]
    out = {
        "model": pipe.settings.model, "n": len(rows), "rewritten": len(rewrites),
        "rewrite_p50_s": pct(rewrites, 50), "rewrite_p95_s": pct(rewrites, 95),
        "added_first_token_p50_s": pct([r["added_first_token_s"] for r in rows
                                        if r["added_first_token_s"] is not None], 50),
        "followup_total_p50_s": pct([r["followup_total_s"] for r in rows], 50),
        "standalone_total_p50_s": pct([r["standalone_total_s"] for r in rows], 50),
        "standalone_with_history_total_p50_s": pct(
            [r["standalone_with_history_total_s"] for r in rows], 50),
        "standalone_flagged": sum(r["standalone_flagged"] for r in rows),
        "needs_rewrite_test_mean_us": round(1e6 * statistics.mean(r["test_s"] for r in rows),
                                            1) if rows else None,
        "rows": rows,
    }
    print(json.dumps(out, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
