"""Ask every gold question through a Pipeline, score each answer, write the results."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from eval import metrics as M
from eval.gold import GoldItem, check_evidence

MODES = ("naive", "verified")
# "plain": verified answers without the checks (no conflict check, no screen), answered in
# the same run for a side-by-side comparison (rag eval --answer-mode compare)
PLAIN = "plain"
PLAIN_SETTINGS = {"conflicts": False, "screen": "off"}


def ask(pipe, question: str, k: int | None, mode: str):
    """One answer in ``mode``: naive, verified or plain."""
    if mode == PLAIN:
        return pipe.variant(**PLAIN_SETTINGS).ask(question, k=k, mode="verified")
    return pipe.ask(question, k=k, mode=mode)


def gold_spans(item: GoldItem, documents: dict[str, str]) -> list[tuple[str, int, int]]:
    """The question's gold evidence as whole sentences (doc, start, end): what the
    independent citation judge compares citations with."""
    out = []
    for ev in item.evidence:
        text = documents.get(ev.doc, "")
        out += [(ev.doc, s, e) for s, e in M.gold_sentences(text, ev.spans(text))]
    return out


def score_row(item: GoldItem, answer: dict, documents: dict[str, str], k: int,
              group: str = "") -> dict:
    """One results.jsonl row: the answer, its timings and every per-question metric."""
    t = answer.get("timings", {})
    gen_s = t.get("generate_s")
    gold = gold_spans(item, documents) if item.answerable else []
    row = {
        "id": item.id, "group": group, "question": item.question, "mode": answer.get("mode"),
        "type": item.kind, "answerable": item.answerable, "gold": item.answers,
        "answer": answer["answer"], "refused": answer["refused"],
        "grade": answer.get("grade") or ("refused" if answer["refused"] else "answer"),
        "refusal_reason": answer.get("refusal_reason", ""),
        "raw_answer": answer.get("raw_answer", ""),
        "citations": answer.get("citations", []),
        "retrieved": [{kk: p[kk] for kk in ("doc", "start", "end", "score")}
                      for p in answer.get("retrieved", [])],
        "latency_s": t.get("total_s"), "first_token_s": t.get("first_token_s"),
        "generate_s": gen_s, "tokens": answer.get("tokens_generated", 0),
        "confidence": answer.get("confidence"), "withheld": answer.get("withheld", ""),
        # the answer says the sources disagree; on a clean gold set that is a false alarm
        "conflict": bool(answer.get("conflict")),
        "set_aside": [d["doc"] for d in answer.get("set_aside", [])],
        # a document holding the gold evidence was set aside by the screen
        "answer_set_aside": (bool({d["doc"] for d in answer.get("set_aside", [])}
                                  & {ev.doc for ev in item.evidence})
                             if item.answerable else None),
        # the evidence sentences shown to the model hold a gold answer (containment)
        "evidence_has_answer": (any(M.contains(e["text"], item.answers)
                                    for e in answer.get("evidence", []))
                                if item.answerable and answer.get("evidence") else None),
    }
    evidence = [(ev.doc, ev.spans(documents.get(ev.doc, ""))) for ev in item.evidence]
    if item.answerable and evidence:
        row.update(M.retrieval_scores(answer.get("retrieved", []), evidence, k))
    else:
        row.update(recall_all=None, recall_any=None, rr=None)
    if item.answerable:
        row.update(M.score_answer(answer["answer"], item.answers, answer["refused"]))
        row["false_refusal"] = bool(answer["refused"])
        row["refusal_correct"] = None
        row["withheld_correct"] = (M.score_answer(row["withheld"], item.answers, False)
                                   ["correct"] if row["withheld"] else None)
    else:
        row.update(em=None, f1=None, contains=None, correct=bool(answer["refused"]),
                   contradiction=False, polarity=None, yes_no=False, false_refusal=None,
                   refusal_correct=bool(answer["refused"]), withheld_correct=None)
    row.update(n_judged=0, n_judged_correct=0)
    if not answer["refused"] and item.answerable and gold:
        cj = M.citation_judge(answer.get("citations", []), gold)
        row.update(n_judged=cj["citations"], n_judged_correct=cj["citations_correct"])
    if answer["refused"]:
        row.update(citation_recall=None, citation_precision=None, citation_validity=None,
                   n_citations=0, n_valid_citations=0)
    else:
        cites = answer.get("citations", [])
        cs = M.citation_scores(answer["answer"], {c["n"]: c["text"] for c in cites})
        cv = M.citation_validity(cites, documents)
        row.update(citation_recall=cs["citation_recall"],
                   citation_precision=cs["citation_precision"],
                   citation_validity=cv["citation_validity"],
                   n_citations=cv["citations"], n_valid_citations=cv["valid"])
    return row


def summarize(rows: Sequence[dict]) -> dict:
    """Aggregate the rows of one answer mode."""
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    yn = [r for r in ans if r["yes_no"]]
    ret = [r for r in ans if r["recall_all"] is not None]
    types = sorted({r["type"] for r in rows})
    n_cit = sum(r["n_citations"] for r in rows)
    n_judged = sum(r.get("n_judged", 0) for r in rows)
    # decoding speed: tokens after the first over the time after the first token
    streamed = [r for r in rows if (r["tokens"] or 0) > 1 and r["first_token_s"] is not None]
    decode_s = sum(r["latency_s"] - r["first_token_s"] for r in streamed)
    return {
        "n": len(rows), "n_answerable": len(ans), "n_unanswerable": len(una),
        "answer_accuracy": M.mean(r["correct"] for r in ans),
        "exact_match": M.mean(r["em"] for r in ans),
        "f1": M.mean(r["f1"] for r in ans),
        "containment": M.mean(r["contains"] for r in ans),
        "overall_accuracy": M.mean(r["correct"] for r in rows),
        "refusal_accuracy": M.mean(r["refusal_correct"] for r in una),
        "false_refusal_rate": M.mean(r["false_refusal"] for r in ans),
        "n_yes_no": len(yn),
        "yes_no_accuracy": M.mean(r["correct"] for r in yn),
        "contradictions": sum(bool(r["contradiction"]) for r in rows),
        "recall_at_k": M.mean(r["recall_all"] for r in ret),
        "recall_any_at_k": M.mean(r["recall_any"] for r in ret),
        "mrr": M.mean(r["rr"] for r in ret),
        "citation_recall": M.mean(r["citation_recall"] for r in rows),
        "citation_precision": M.mean(r["citation_precision"] for r in rows),
        "citation_validity": (sum(r["n_valid_citations"] for r in rows) / n_cit
                              if n_cit else None),
        "citations_correct": (sum(r["n_judged_correct"] for r in rows) / n_judged
                              if n_judged else None),
        "evidence_has_answer": M.mean(r.get("evidence_has_answer") for r in ans),
        **grade_scores(rows),
        "conflict_alarms": M.mean(bool(r.get("conflict")) for r in rows),
        "set_aside_rate": M.mean(bool(r.get("set_aside")) for r in rows),
        "answer_set_aside": sum(bool(r.get("answer_set_aside")) for r in rows),
        "n_citations": n_cit,
        "latency_p50_s": M.percentile([r["latency_s"] for r in rows], 50),
        "latency_p95_s": M.percentile([r["latency_s"] for r in rows], 95),
        "first_token_p50_s": M.percentile([r["first_token_s"] for r in rows], 50),
        "tokens_per_s": (sum(r["tokens"] - 1 for r in streamed) / decode_s
                         if decode_s > 0 else None),
        "accuracy_by_type": {t: M.mean(r["correct"] for r in rows if r["type"] == t)
                             for t in types},
        "n_by_type": {t: sum(r["type"] == t for r in rows) for t in types},
        "by_group": by_group(rows),
    }


def grade_scores(rows: Sequence[dict]) -> dict:
    """How the graded answers (answer / caution / refused) fall: for answerable
    questions, right answers shown with either grade (``answer_accuracy``), right and
    confident, cautions and refusals; for unanswerable ones, confident answers,
    cautions and refusals; and the precision of the confident grade over all questions."""
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    confident = [r for r in rows if r.get("grade") == "answer"]
    return {
        "right_confident": M.mean(r["correct"] and r.get("grade") == "answer" for r in ans),
        "caution_answerable": M.mean(r.get("grade") == "caution" for r in ans),
        "right_caution": M.mean(r["correct"] and r.get("grade") == "caution" for r in ans),
        "confident_unanswerable": M.mean(r.get("grade") == "answer" for r in una),
        "caution_unanswerable": M.mean(r.get("grade") == "caution" for r in una),
        "confident_precision": M.mean(r["answerable"] and r["correct"] for r in confident),
        "n_confident": len(confident),
    }


def by_group(rows: Sequence[dict]) -> dict[str, dict]:
    """Answer and refusal accuracy per group (SQuAD article), with evidence recall."""
    out = {}
    for g in sorted({r.get("group", "") for r in rows} - {""}):
        rs = [r for r in rows if r.get("group") == g]
        ans = [r for r in rs if r["answerable"]]
        out[g] = {"n": len(rs), "answer_accuracy": M.mean(r["correct"] for r in ans),
                  "refusal_accuracy": M.mean(r["refusal_correct"] for r in rs
                                             if not r["answerable"]),
                  "false_refusal_rate": M.mean(r["false_refusal"] for r in ans),
                  "evidence_has_answer": M.mean(r.get("evidence_has_answer") for r in ans)}
    return out


def run_eval(pipeline, items: Sequence[GoldItem], out_dir: Path, modes: Sequence[str] = MODES,
             k: int | None = None, meta: dict | None = None, progress: bool = True,
             group_of=None, decisions: dict | None = None) -> dict:
    """Answer ``items`` with ``pipeline`` (already indexed) in each mode; write
    results.jsonl, summary.json and report.md (+ plots) to ``out_dir``. Returns the summary.
    ``group_of(item)`` names its group (SQuAD article); ``decisions`` maps a group to the
    decision to use for it (out of fold: a model fitted without that article)."""
    from tqdm import tqdm

    from eval.report import write_report

    k = k or pipeline.settings.k
    documents = pipeline.document_texts()
    check_evidence(list(items), documents)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows: dict[str, list[dict]] = {m: [] for m in modes}
    bar = tqdm(total=len(items) * len(modes), desc="eval", unit="answer", file=sys.stderr,
               disable=not progress)
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as f:
        for item in items:
            group = group_of(item) if group_of else ""
            pipe = pipeline
            if decisions and group in decisions:
                pipe = pipeline.variant(decision=decisions[group])
            for mode in modes:
                answer = ask(pipe, item.question, k, mode).to_dict()
                answer["mode"] = mode
                row = score_row(item, answer, documents, k, group)
                rows[mode].append(row)
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                f.flush()
                bar.update(1)
                bar.set_postfix({f"acc_{m}": f"{M.mean(r['correct'] for r in rows[m]) or 0:.2f}"
                                 for m in modes if rows[m]})
    bar.close()
    summary = {"meta": dict(meta or {}, k=k, n_questions=len(items), modes=list(modes)),
               "modes": {m: summarize(rows[m]) for m in modes}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    write_report(out_dir, summary, rows)
    return summary
