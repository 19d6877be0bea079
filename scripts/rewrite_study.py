"""How each way of resolving a follow-up question finds the evidence, and what it costs,
side by side in one run over the conversation gold sets.

For every follow-up turn (history: the conversation's earlier turns in their standalone
form with their gold answers), each method gives the text retrieval searches for:

- ``asis``: the follow-up as asked, for retrieval and for choosing the evidence;
- ``concat``: the conversation's last question beside it, for both (no model call);
- ``context``: retrieval with the last question beside it, the evidence sentences chosen
  with the follow-up as asked (what the pipeline does when the model gives no usable
  rewrite; no model call);
- ``llm:MODEL``: the local model's rewrite, for both
  (``rag.answer.conversation.rewrite_question``, as the pipeline calls it; ``--avoid``
  keeps the question's pronouns out as the pipeline does); a reply that is no rewrite
  falls back to ``context``;
- ``gold``: the gold standalone form, for both (the ceiling).

Scored per method: the gold evidence among the retrieved passages, a gold answer among
the sentences the verified prompt would show, the rewrite's token F1 against the gold
standalone form, and the rewrite's time.

    PYTHONPATH=. python scripts/rewrite_study.py --methods asis concat context \
        llm:qwen2.5-coder-0.5b llm:qwen2.5-coder-1.5b gold --out /tmp/rewrite-study.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def token_f1(a: str, b: str) -> float:
    from eval.metrics import token_f1 as f1

    return f1(a, [b])


def main() -> None:
    from eval.gold import load_chat_gold
    from eval.metrics import contains
    from eval.squad import build_corpus
    from rag.answer.conversation import fallback_search, history_turns, rewrite_question
    from rag.config import BUNDLED_CORPUS, Settings, data_home
    from rag.generate.backends import make_generator
    from rag.generate.prompt_cache import default_folder
    from rag.pipeline import Pipeline

    ap = argparse.ArgumentParser()
    ap.add_argument("--methods", nargs="+",
                    default=["asis", "concat", "context", "gold"])
    ap.add_argument("--squad", type=Path,
                    default=ROOT.parent / "shared" / "datasets" / "squad_v2_dev12.json")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--avoid", action="store_true",
                    help="keep the question's pronouns out of the rewrite")
    args = ap.parse_args()

    sets = [(ROOT / "eval" / "chat_gold_nhs.jsonl", BUNDLED_CORPUS),
            (ROOT / "eval" / "chat_gold_squad.jsonl",
             build_corpus(args.squad, data_home() / "eval-corpora"))]
    generators = {}
    for m in args.methods:
        if m.startswith("llm:"):
            generators[m] = make_generator(m[4:], prompt_cache=default_folder())
    rows = []
    for gold, corpus in sets:
        pipe = Pipeline(Settings().with_overrides(corpus=corpus))
        pipe.index(corpus)
        pool_n = pipe.pool_size(pipe.settings.k)
        turns = load_chat_gold(gold)
        for g in generators.values():  # load, and keep the prompt's fixed part cached
            pipe.models.prime(g, "condense")
        for t in turns:
            if t.turn == 1 or not t.follow_up:
                continue
            earlier = [u for u in turns if u.conversation == t.conversation
                       and u.turn < t.turn]
            history = [m for u in earlier for m in history_turns(
                {"question": u.standalone, "answer": "; ".join(u.item.answers) or "unknown"})]
            q = t.item.question
            for m in args.methods:
                secs, used = 0.0, True
                search = score_text = {"asis": q, "concat": fallback_search(q, history),
                                       "gold": t.standalone}.get(m, "")
                if m == "context":  # what the pipeline does without a usable rewrite
                    search, score_text = fallback_search(q, history), q
                elif m.startswith("llm:"):
                    s = time.perf_counter()
                    rewrite = rewrite_question(generators[m], q, history,
                                               avoid_pronouns=args.avoid)
                    secs = time.perf_counter() - s
                    used = rewrite is not None
                    # no usable rewrite: what the pipeline then does ("context")
                    search, score_text = ((rewrite, rewrite) if used else
                                          (fallback_search(q, history), q))
                pool = pipe.retriever.retrieve(search, pool_n)
                _, evidence = pipe.evidence_for(score_text, pool)
                ev_texts = [e.text for e in t.item.evidence]
                row = {"set": gold.stem, "id": t.item.id, "method": m, "search": search,
                       "used": used, "rewrite_s": secs, "answerable": t.item.answerable,
                       "f1_standalone": token_f1(search, t.standalone)}
                if t.item.answerable:
                    row["pool_hit"] = any(any(" ".join(e.split()) in " ".join(p.text.split())
                                              for e in ev_texts) for p in pool)
                    row["evidence_hit"] = any(contains(e.text, t.item.answers)
                                              for e in evidence)
                rows.append(row)
                print(json.dumps(row, ensure_ascii=False), file=sys.stderr, flush=True)
    summary = {}
    for m in args.methods:
        rs = [r for r in rows if r["method"] == m]
        ans = [r for r in rs if r["answerable"]]
        times = [r["rewrite_s"] for r in rs if r["rewrite_s"]]
        summary[m] = {
            "n": len(rs), "n_answerable": len(ans),
            "pool_hit": round(statistics.mean(r["pool_hit"] for r in ans), 3),
            "evidence_hit": round(statistics.mean(r["evidence_hit"] for r in ans), 3),
            "f1_standalone": round(statistics.mean(r["f1_standalone"] for r in rs), 3),
            "rewrites_used": sum(r["used"] for r in rs),
            "rewrite_p50_s": round(statistics.median(times), 3) if times else 0.0,
            "rewrite_p95_s": round(sorted(times)[int(0.95 * (len(times) - 1))], 3)
            if times else 0.0,
            "by_set": {s: round(statistics.mean(r["evidence_hit"] for r in ans
                                                if r["set"] == s), 3)
                       for s in sorted({r["set"] for r in ans})},
        }
    out = {"summary": summary, "rows": rows}
    print(json.dumps(summary, indent=2))
    if args.out:
        args.out.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
