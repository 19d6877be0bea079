"""Conversations: each gold conversation is asked turn by turn with its history (the
pipeline's own earlier answers), and every turn is also asked in its standalone form
without history, so follow-up accuracy stands beside the same questions asked alone."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from eval import metrics as M
from eval.gold import ChatTurn, check_evidence
from eval.runner import score_row, summarize

FOLLOW_UP = "follow-up"
STANDALONE = "standalone"
# the same two, on the turns that need the conversation (question != standalone form)
FOLLOW_UP_ONLY = "follow-up (turns needing context)"
STANDALONE_ONLY = "standalone (same turns)"


def detection(turns: Sequence[ChatTurn]) -> dict:
    """How well the cheap test ``rag.answer.conversation.needs_rewrite`` picks the turns
    that need the conversation, with each conversation's earlier gold turns as history:
    recall on the follow-ups, and how often it would rewrite a question that stands alone
    (the standalone forms of later turns, and the turns written to stand alone)."""
    from rag.answer.conversation import needs_rewrite

    flagged_follow, n_follow, flagged_alone, n_alone = 0, 0, 0, 0
    history: dict[str, list[dict]] = {}
    for t in turns:
        h = history.setdefault(t.conversation, [])
        if h:
            if t.follow_up:
                n_follow += 1
                flagged_follow += needs_rewrite(t.item.question, h)
            n_alone += 1
            flagged_alone += needs_rewrite(t.standalone, h)
        h += [{"role": "user", "content": t.standalone},
              {"role": "assistant", "content": "; ".join(t.item.answers) or "unknown"}]
    return {"follow_ups": n_follow, "follow_ups_flagged": flagged_follow,
            "recall": flagged_follow / n_follow if n_follow else None,
            "standalone_asked_with_history": n_alone,
            "standalone_flagged": flagged_alone,
            "false_positive_rate": flagged_alone / n_alone if n_alone else None}


def run_chat_eval(pipeline, turns: Sequence[ChatTurn], out_dir: Path, k: int | None = None,
                  mode: str = "verified", meta: dict | None = None,
                  progress: bool = True) -> dict:
    """Ask every conversation turn by turn (history: the pipeline's own earlier answers)
    and every turn's standalone form alone; score both; write results.jsonl,
    summary.json and report.md to ``out_dir``. A turn asked in the conversation without
    a rewrite, whose question is its standalone form, is the same computation as the
    standalone question: it is answered once and scored for both."""
    from tqdm import tqdm

    from eval.report import write_report
    from rag.answer.conversation import history_turns

    k = k or pipeline.settings.k
    documents = pipeline.document_texts()
    check_evidence([t.item for t in turns], documents)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {FOLLOW_UP: [], STANDALONE: []}
    histories: dict[str, list[dict]] = {}
    bar = tqdm(total=len(turns), desc="chat eval", unit="turn", file=sys.stderr,
               disable=not progress)
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as f:
        for t in turns:
            history = histories.setdefault(t.conversation, [])
            asked = pipeline.ask(t.item.question, k=k, mode=mode,
                                 history=list(history)).to_dict()
            rewritten = "rewrite_s" in asked.get("timings", {})
            # how the follow-up was resolved: by the model's rewrite, or (no usable
            # rewrite) answered as asked; "" when it stood alone
            how = "" if not rewritten else (
                "as asked" if asked.get("standalone_question") == asked["question"]
                else "rewrite")
            if not rewritten and t.item.question.strip() == t.standalone.strip():
                alone = asked
            else:
                alone = pipeline.ask(t.standalone, k=k, mode=mode).to_dict()
            history += history_turns(asked)
            extra = {"conversation": t.conversation, "turn": t.turn,
                     "follow_up": t.follow_up, "gold_standalone": t.standalone}
            for form, answer, item in ((FOLLOW_UP, asked, t.item),
                                       (STANDALONE, alone, t.standalone_item())):
                answer = dict(answer, mode=mode)
                row = score_row(item, answer, documents, k, group=t.conversation)
                row.update(extra, form=form, rewritten=rewritten if form == FOLLOW_UP else
                           False, resolved=how if form == FOLLOW_UP else "",
                           standalone_question=answer.get("standalone_question", ""),
                           rewrite_s=answer.get("timings", {}).get("rewrite_s"))
                rows[form].append(row)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(1)
    bar.close()
    rows[FOLLOW_UP_ONLY] = [r for r in rows[FOLLOW_UP] if r["follow_up"]]
    rows[STANDALONE_ONLY] = [r for r in rows[STANDALONE] if r["follow_up"]]
    summaries = {m: summarize(rs) for m, rs in rows.items()}
    for m in rows:
        summaries[m]["by_group"] = {}  # per conversation: too small to read
    follow = rows[FOLLOW_UP]
    rewrite_times = [r["rewrite_s"] for r in follow if r["rewrite_s"] is not None]
    summary = {
        "meta": dict(meta or {}, k=k, n_turns=len(turns), mode=mode,
                     n_conversations=len({t.conversation for t in turns}),
                     modes=list(rows)),
        "modes": summaries,
        "chat": {
            "n_follow_ups": sum(t.follow_up for t in turns),
            "rewritten": sum(r["rewritten"] for r in follow),  # the model was asked
            # its reply was a new question (else: answered as asked, searched with the
            # conversation's last question beside it)
            "rewrites_used": sum(r.get("resolved") == "rewrite" for r in follow),
            "rewrite_p50_s": M.percentile(rewrite_times, 50),
            "rewrite_p95_s": M.percentile(rewrite_times, 95),
            "answer_gap": _gap(summaries, "answer_accuracy"),
            "confident_gap": _gap(summaries, "right_confident"),
            "refusal_gap": _gap(summaries, "refusal_accuracy"),
            # 95% intervals, resampling conversations
            "answer_gap_ci": gap_interval(rows[FOLLOW_UP_ONLY], rows[STANDALONE_ONLY],
                                          "correct"),
            "refusal_gap_ci": gap_interval(rows[FOLLOW_UP_ONLY], rows[STANDALONE_ONLY],
                                           "refusal_correct"),
            "detection": detection(turns),
        },
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    report = write_report(out_dir, summary, rows)
    text = report.read_text(encoding="utf-8")
    report.write_text(text.replace("## Summary\n", "## Conversations\n\n" + chat_table(summary)
                                   .replace("\n", "  \n") + "\n\n## Summary\n", 1),
                      encoding="utf-8")
    return summary


def gap_interval(follow: Sequence[dict], alone: Sequence[dict], key: str,
                 n_boot: int = 2000, seed: int = 0) -> list[float] | None:
    """95% interval (points) of follow-up minus standalone accuracy on the same turns,
    resampling whole conversations: ``key`` "correct" (answerable turns) or
    "refusal_correct" (unanswerable ones). None without such turns."""
    import numpy as np

    answerable = key == "correct"
    alone_by_id = {r["id"]: r for r in alone}
    by_conv: dict[str, list[tuple[float, float]]] = {}
    for r in follow:
        if bool(r["answerable"]) == answerable and r["id"] in alone_by_id:
            by_conv.setdefault(r["conversation"], []).append(
                (float(r[key]), float(alone_by_id[r["id"]][key])))
    convs = list(by_conv.values())
    if not convs:
        return None
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        pairs = [p for i in rng.integers(0, len(convs), len(convs)) for p in convs[i]]
        diffs.append(np.mean([a - b for a, b in pairs]))
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return [round(100 * float(lo), 1), round(100 * float(hi), 1)]


def _gap(summaries: dict, key: str) -> float | None:
    """Follow-up minus standalone on the turns that need the conversation (points)."""
    a, b = summaries[FOLLOW_UP_ONLY].get(key), summaries[STANDALONE_ONLY].get(key)
    return None if a is None or b is None else round(100 * (a - b), 1)


def chat_table(summary: dict) -> str:
    """The lines ``rag eval`` prints under the metric table for a conversation set."""
    c = summary["chat"]
    d = c["detection"]
    from eval.report import fmt

    return "\n".join([
        f"follow-up turns: {c['n_follow_ups']}; rewrite asked for {c['rewritten']} of "
        f"{summary['meta']['n_turns']} turns, used {c.get('rewrites_used', '–')}; "
        f"rewrite p50 {fmt(c['rewrite_p50_s'])} s, "
        f"p95 {fmt(c['rewrite_p95_s'])} s",
        f"follow-up minus standalone (turns needing context): answers "
        f"{c['answer_gap']} points {_ci(c.get('answer_gap_ci'))} (right and confident "
        f"{c.get('confident_gap')} points), refusals "
        f"{c['refusal_gap']} points {_ci(c.get('refusal_gap_ci'))}",
        f"needs-rewrite test: {d['follow_ups_flagged']}/{d['follow_ups']} follow-ups "
        f"flagged; {d['standalone_flagged']}/{d['standalone_asked_with_history']} "
        f"standalone questions flagged (needless rewrites)"])


def _ci(interval: list[float] | None) -> str:
    return f"[95% {interval[0]:+.1f}, {interval[1]:+.1f}]" if interval else ""
