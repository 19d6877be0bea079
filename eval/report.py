"""report.md with plots (matplotlib, Agg) and the definition of every metric."""

from __future__ import annotations

from pathlib import Path

DEFINITIONS = """\
- **answer_accuracy**: share of answerable questions answered correctly. Answers and gold
  answers are normalised as in SQuAD (lower case, punctuation, articles and [n] markers
  removed, whitespace collapsed). A factoid answer is correct when a normalised gold answer
  is contained (on word boundaries) in the normalised answer, or its token F1 with a gold
  answer is >= 0.5; a gold that lists names ("Simon Bolton and Matthew Gould", "Denmark,
  Iceland and Norway") needs every name contained. A yes/no question (first gold answer
  "yes" or "no") is correct when the answer's polarity equals the gold polarity: the
  answer's leading yes/no word, else "no" if it holds a negation cue (no, not, denied,
  never, n't, ...), else "yes". A refused answer to an answerable question is wrong.
- **grades**: every answer carries a grade: `answer` (confident), `caution` (shown with
  a note that the documents may not answer exactly this, its confidence and its quoted
  passages) or `refused`. `answer_accuracy` counts right answers of either grade;
  **right_confident** / **right_caution**: share of answerable questions answered right
  with that grade; **caution_answerable**: share of answerable questions given a caution;
  **confident_unanswerable** / **caution_unanswerable**: share of unanswerable questions
  answered with confidence / given a caution (`refusal_accuracy` is the rest);
  **confident_precision**: of all confident answers, the share that are right (a
  confident answer to an unanswerable question is wrong).
- **exact_match / f1 / containment**: SQuAD exact match, token F1 and containment, the
  maximum over the gold answers, averaged over answerable questions (refusals score 0).
- **overall_accuracy**: correct answers on answerable questions plus refusals on
  unanswerable ones, over all questions.
- **refusal_accuracy**: share of unanswerable questions that were refused.
- **false_refusal_rate**: share of answerable questions that were refused.
- **contradictions**: yes/no questions answered with the opposite polarity (count).
- **recall_at_k** (recall@k): share of answerable questions with evidence for which every
  gold evidence text lies entirely inside some retrieved passage (same document, its
  location found by str.find within the passage's [start, end)). **recall_any_at_k**: at
  least one evidence text does. **mrr**: mean of 1/rank of the first retrieved passage
  holding any gold evidence (0 when none does).
- **citation_recall / citation_precision** (ALCE, Gao et al. 2023), over answers that were
  not refused: the answer is split into sentences with their [n] markers; a sentence is
  supported when the concatenated texts of its cited passages support it (a sentence with
  no citation is not). Citation recall = share of supported sentences. A citation is
  irrelevant when it alone does not support its sentence and the sentence stays supported
  without it; citations of unsupported sentences count as not relevant. Citation precision
  = share of relevant citations. Support judge (lexical, not an NLI model): at least 60% of
  the sentence's content words (stemmed, stopwords removed; `index.text.content_tokens`)
  occur in the cited texts and every number in the sentence occurs in them. Per answer,
  then averaged.
- **citation_validity**: share of all citations whose text equals the characters
  [start:end] of the cited document as stored in the index.
- **citations_correct** (the independent citation judge): over the citations of answers
  to answerable questions, the share whose span overlaps the question's gold evidence:
  the sentence(s) around each SQuAD answer's `answer_start`, or the sentence(s) holding
  the gold evidence text of a JSONL gold set (sentences by pysbd). It compares positions
  only and shares nothing with the verifier's support rule.
- **evidence_has_answer**: share of answerable questions whose evidence sentences (the
  numbered sentences the verified prompt shows) contain a gold answer.
- **confidence** (per question, verified mode): the answer-or-refuse decision's
  probability that the draft answer is right (rag/grounding/decision.json). The decision curve
  sweeps its threshold over this run's confidences: at each threshold, the share of
  unanswerable questions refused against the share of answerable ones answered, and
  answered correctly (a refused draft is scored as if it had been shown).
- **conflict_alarms**: share of questions answered with "the sources disagree"
  (`conflict: true`, rag.grounding.conflicts). A clean gold set plants no disagreement, so each is a
  false alarm. **set_aside_rate**: share of questions for which a retrieved document was
  set aside as addressed to the assistant (rag.grounding.screen); on a clean set, false alarms of
  the screen. **answer_set_aside**: answerable questions whose gold evidence document
  was set aside (count).
- **latency_p50_s / latency_p95_s**: percentiles of the total answer time
  (`Answer.timings["total_s"]`: retrieval, evidence selection, generation, verification).
  **first_token_p50_s**: median time from the question to the first generated token.
  **tokens_per_s**: decoding speed: tokens after the first over the time from the first
  token to the end of the answer, pooled over all answers.
"""

_KEYS = ["answer_accuracy", "right_confident", "right_caution", "caution_answerable",
         "confident_unanswerable", "caution_unanswerable", "confident_precision",
         "exact_match", "f1", "containment", "overall_accuracy",
         "refusal_accuracy", "false_refusal_rate", "yes_no_accuracy", "contradictions",
         "recall_at_k", "recall_any_at_k", "mrr", "citation_recall", "citation_precision",
         "citation_validity", "citations_correct", "evidence_has_answer", "conflict_alarms",
         "set_aside_rate", "answer_set_aside", "latency_p50_s",
         "latency_p95_s", "first_token_p50_s", "tokens_per_s"]


def fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.3f}"
    return str(v)


def summary_table(modes: dict[str, dict]) -> str:
    names = list(modes)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for key in ["n", "n_answerable", "n_unanswerable", *_KEYS]:
        lines.append(f"| {key} | " + " | ".join(fmt(modes[m].get(key)) for m in names) + " |")
    return "\n".join(lines)


def _plots(out_dir: Path, summary: dict, rows: dict[str, list[dict]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    files = []
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for mode, rs in rows.items():
        lat = [r["latency_s"] for r in rs if r["latency_s"] is not None]
        if lat:
            ax.hist(lat, bins=15, alpha=0.6, label=mode)
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("questions")
    ax.set_title("Answer latency")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out_dir / "latency.png", dpi=100)
    plt.close(fig)
    files.append("latency.png")

    modes = summary["modes"]
    types = sorted({t for s in modes.values() for t in s["accuracy_by_type"]})
    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(len(modes), 1)
    for i, (mode, s) in enumerate(modes.items()):
        vals = [s["accuracy_by_type"].get(t) or 0.0 for t in types]
        ax.bar([j + i * width for j in range(len(types))], vals, width, label=mode)
    ax.set_xticks([j + width * (len(modes) - 1) / 2 for j in range(len(types))])
    ax.set_xticklabels(types)
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (unanswerable: refused)")
    ax.set_title("Accuracy by question type")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out_dir / "accuracy_by_type.png", dpi=100)
    plt.close(fig)
    files.append("accuracy_by_type.png")
    verified = [r for r in rows.get("verified", []) if r.get("confidence") is not None]
    if verified and any(not r["answerable"] for r in verified):
        pts = decision_curve(verified)
        fig, ax = plt.subplots(figsize=(6, 4))
        ra = [p["refusal_accuracy"] for p in pts]
        ax.plot(ra, [p["answered"] for p in pts], label="answerable questions answered")
        ax.plot(ra, [p["answer_accuracy"] for p in pts], label="answered correctly")
        run = summary["modes"].get("verified", {})
        ax.scatter([run.get("refusal_accuracy") or 0], [run.get("answer_accuracy") or 0],
                   color="black", zorder=3, label="this run")
        ax.set_xlabel("refusal accuracy")
        ax.set_ylabel("share of answerable questions")
        ax.set_title("Answer or refuse: the decision's threshold swept")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out_dir / "decision_curve.png", dpi=100)
        plt.close(fig)
        files.append("decision_curve.png")
    return files


def decision_curve(rows: list[dict]) -> list[dict]:
    """Refusal accuracy, answered share and answer accuracy at thresholds 0..1 over the
    verified rows' confidences; a question answers when its confidence reaches the
    threshold and it has a draft (shown or withheld)."""
    pts = []
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    def draft(r):
        return bool(r["answer"] if not r["refused"] else r.get("withheld"))

    def right(r):
        return r["correct"] if not r["refused"] else bool(r.get("withheld_correct"))

    for i in range(101):
        t = i / 100
        shown = {id(r) for r in rows if r["confidence"] >= t and draft(r)}
        pts.append({"threshold": t,
                    "refusal_accuracy": sum(id(r) not in shown for r in una)
                    / max(len(una), 1),
                    "answered": sum(id(r) in shown for r in ans) / max(len(ans), 1),
                    "answer_accuracy": sum(id(r) in shown and right(r) for r in ans)
                    / max(len(ans), 1)})
    return pts


def write_report(out_dir: Path, summary: dict, rows: dict[str, list[dict]]) -> Path:
    out_dir = Path(out_dir)
    plots = _plots(out_dir, summary, rows)
    meta = summary.get("meta", {})
    modes = summary["modes"]
    by_type = ["| type | n | " + " | ".join(modes) + " |", "|---" * (len(modes) + 2) + "|"]
    types = sorted({t for s in modes.values() for t in s["accuracy_by_type"]})
    first = next(iter(modes.values()), {})
    for t in types:
        by_type.append(f"| {t} | {first.get('n_by_type', {}).get(t, 0)} | "
                       + " | ".join(fmt(s["accuracy_by_type"].get(t)) for s in modes.values())
                       + " |")
    groups = first.get("by_group") or {}
    per_group = []
    if groups:
        per_group = ["| article | n | " + " | ".join(
            f"{m}: answers / refusals / false refusals / evidence" for m in modes) + " |",
            "|---" * (len(modes) + 2) + "|"]
        for g in groups:
            cells = []
            for s in modes.values():
                d = s.get("by_group", {}).get(g, {})
                cells.append(" / ".join(fmt(d.get(k)) for k in (
                    "answer_accuracy", "refusal_accuracy", "false_refusal_rate",
                    "evidence_has_answer")))
            per_group.append(f"| {g} | {groups[g]['n']} | " + " | ".join(cells) + " |")
    wrong = []
    for mode, rs in rows.items():
        for r in rs:
            if not r["correct"]:
                wrong.append(f"- `{r['id']}` ({mode}, {r['type']}): {r['question']} → "
                             f"{' '.join(str(r['answer']).split())[:160]!r} "
                             f"(gold: {r['gold'][:2]})")
    text = "\n\n".join([
        "# Evaluation report",
        "\n".join(f"- {k}: `{v}`" for k, v in meta.items()),
        "## Summary\n\n" + summary_table(modes),
        "## Accuracy by question type\n\n" + "\n".join(by_type),
        "## By article\n\n" + ("\n".join(per_group) or "One corpus."),
        "\n".join(f"![{p}]({p})" for p in plots),
        "## Metric definitions\n\n" + DEFINITIONS,
        "## Wrong answers\n\n" + ("\n".join(wrong) or "None."),
    ]) + "\n"
    path = out_dir / "report.md"
    path.write_text(text, encoding="utf-8")
    return path
