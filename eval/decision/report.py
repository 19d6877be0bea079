"""Collect, fit and write the graded decision: rag/grounding/decision.json and a report folder
(report.md, curve.png, rows.jsonl, summary.json). ``rag fit-decision`` runs ``run``."""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, replace
from datetime import date
from pathlib import Path

import numpy as np

from eval.decision.fit import (
    TARGET_OOC,
    TARGET_PRECISION,
    FitResult,
    by,
    curve,
    fit,
    scores,
)

SET_NAMES = {"squad": "SQuAD (answerable and adversarial unanswerable)",
             "out_of_corpus": "out of corpus (another article's questions)",
             "yesno": "yes/no and their negations", "nhs": "NHS gold (check set)"}


def interval(values: Sequence[float | None]) -> dict:
    """Mean and a 95% t-interval over groups (articles)."""
    v = np.array([x for x in values if x is not None], np.float64)
    if len(v) < 2:
        return {"mean": float(v.mean()) if len(v) else None, "lo": None, "hi": None}
    from scipy import stats

    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return {"mean": float(v.mean()), "lo": float(v.mean() - half), "hi": float(v.mean() + half)}


SPREAD_KEYS = ("right_shown", "right_confident", "confident_precision",
               "confident_unanswerable", "refused_unanswerable")


def summary(result: FitResult) -> dict:
    rows = result.oof_rows
    per_article = by(rows, "group")
    fitting = [r for r in rows if r["set"] != "out_of_corpus"]
    return {
        "out_of_fold": {
            "pooled": scores(rows),
            "in_corpus": scores(fitting),
            "by_set": by(rows, "set"),
            "per_article": per_article,
            "across_articles": {k: interval([p[k] for p in per_article.values()])
                                for k in SPREAD_KEYS},
        },
        "nhs": scores(result.check_rows) if result.check_rows else None,
        "c_log_loss": result.c_scores, "coverage_c_log_loss": result.cover_c_scores,
        "rule_gains": result.rule_gains,
        "rule_changes": result.rule_changes,
    }


def plot_curve(points: Sequence[dict], high: float, low: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [p["t"] for p in points]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    a.plot(t, [p["confident_precision"] for p in points], label="confident answers right")
    a.plot(t, [p["right_confident"] for p in points], label="answerable: right and confident")
    a.axhline(TARGET_PRECISION, color="grey", ls=":", lw=1)
    a.axvline(high, color="black", lw=1, label=f"t_high = {high:.2f}")
    a.set_xlabel("threshold on P(draft right), out of fold")
    a.set_title("the confident grade", fontsize=10)
    b.plot(t, [p["ooc_refused"] for p in points], label="out-of-corpus questions refused")
    b.plot(t, [p["right_drafts_refused"] for p in points], label="right drafts refused")
    b.axhline(TARGET_OOC, color="grey", ls=":", lw=1)
    b.axvline(low, color="black", lw=1, label=f"t_low = {low:.2f}")
    b.set_xlabel("threshold on P(draft right), out of fold")
    b.set_title("refusals", fontsize=10)
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        ax.set_ylim(0, 1.02)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _f(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def _ci(d: dict) -> str:
    if d["mean"] is None:
        return "—"
    if d["lo"] is None:
        return f"{d['mean']:.3f}"
    return f"{d['mean']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]"


COLS = ("right_shown", "right_confident", "caution_answerable", "refused_answerable",
        "confident_unanswerable", "caution_unanswerable", "refused_unanswerable",
        "confident_precision")
HEAD = ("| {0} | n | right shown | right, confident | caution | refused | unanswerable: "
        "confident | caution | refused | confident precision |")


def _row(name: str, s: dict) -> str:
    return f"| {name} | {s['n']} | " + " | ".join(_f(s[k]) for k in COLS) + " |"


def report_md(result: FitResult, summ: dict, meta: dict) -> str:
    m = result.model
    oof = summ["out_of_fold"]
    sets = ", ".join(f"{k}: {v}" for k, v in meta.get("sets", {}).items())
    lines = [
        "# The graded decision", "",
        f"Generator: {m.generator}. Rows: {meta.get('n_rows')} questions of "
        f"{len(result.folds)} articles ({sets}); "
        f"NHS check set {meta.get('n_check')} (never used for a choice). Commit "
        f"{meta.get('commit', '?')}; command `{meta.get('command', '')}`.", "",
        f"Shipped thresholds: answer at P(right) ≥ {m.threshold:.3f}, a yes/no question "
        f"at ≥ {m.answer_at(True):.3f} (t_high, each for confident precision ≥ "
        f"{TARGET_PRECISION} on its own form of question), refuse at P(covered) < "
        f"{m.caution_at:.3f} (t_low, for ≥ {TARGET_OOC} of out-of-corpus questions "
        "refused), a caution between; chosen on the shipped models' own out-of-fold "
        f"probabilities. Regularisation C = {result.spec.c} for P(right), "
        f"{result.spec.cover_c} for P(covered) (lowest out-of-fold log loss).", "",
        "## Out of fold: each article scored by a model and thresholds fitted without it", "",
        HEAD.format("article"), "|---" * 11 + "|"]
    lines += [_row(g, s) for g, s in oof["per_article"].items()]
    lines += ["", HEAD.format("set"), "|---" * 11 + "|"]
    lines += [_row(SET_NAMES.get(k, k), s) for k, s in oof["by_set"].items()]
    lines += [_row("all sets, pooled", oof["pooled"]),
              _row("in-corpus sets (all but out of corpus)", oof["in_corpus"])]
    if summ["nhs"]:
        lines += [_row("NHS gold, shipped model", summ["nhs"])]
    a = oof["across_articles"]
    lines += ["", "Mean over articles with a 95% interval: " + "; ".join(
        f"{k.replace('_', ' ')} {_ci(a[k])}" for k in a) + ".", "",
        "## Signals (standardised coefficients)", "", "P(right):", "",
        "| signal | coefficient |", "|---|---|"]
    lines += [f"| {f} | {c:+.3f} |" for f, c in zip(m.features, m.coef, strict=True)]
    lines += ["", "## Rules", "", "Right answers shown out of fold, rule on minus off (kept "
              "when ≥ 0.01); drafts changed of all rows:", "", "| rule | drafts changed | "
              "gain | kept |", "|---|---|---|---|"]
    lines += [f"| {k} | {result.rule_changes[k]} | {v:+.3f} | "
              f"{'yes' if getattr(result.rules, k) else 'no'} |"
              for k, v in result.rule_gains.items()]
    if m.coverage is not None:
        lines += ["", "P(covered):", "", "| signal | coefficient |", "|---|---|"]
        lines += [f"| {f} | {c:+.3f} |"
                  for f, c in zip(m.coverage.features, m.coverage.coef, strict=True)]
    lines += ["", "Regularisation, out-of-fold log loss: P(right) " + ", ".join(
        f"C={k}: {v:.4f}" for k, v in result.c_scores.items()) + "; P(covered) " + ", ".join(
        f"C={k}: {v:.4f}" for k, v in result.cover_c_scores.items()), "",
        "![thresholds](curve.png)", ""]
    return "\n".join(lines)


def _round(x):
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_round(v) for v in x]
    return x


def write(result: FitResult, out_dir: Path, decision_path: Path, meta: dict) -> dict:
    """The decision file and the report folder; returns the summary."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summ = summary(result)
    plot_curve(curve(result.replayed, result.oof_probs, result.oof_covers,
                     result.model.caution_at),
               result.model.threshold, result.model.caution_at, out_dir / "curve.png")
    model = replace(result.model, meta={
        **meta, "fitted": date.today().isoformat(), "c": result.spec.c,
        "coverage_c": result.spec.cover_c,
        "targets": {"confident_precision": TARGET_PRECISION, "out_of_corpus_refused":
                    TARGET_OOC},
        "rules": asdict(result.rules), "metrics": _round(summ),
        "folds": {g: _round(m.to_dict()) for g, m in result.folds.items()}})
    text = json.dumps(model.to_dict(), indent=1) + "\n"
    Path(decision_path).write_text(text, encoding="utf-8")
    meta["decision_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    with open(out_dir / "rows.jsonl", "w", encoding="utf-8") as f:
        for r in result.oof_rows + [dict(r, set="nhs") for r in result.check_rows]:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out_dir / "summary.json").write_text(json.dumps(
        {"meta": meta, **_round(summ)}, indent=1, ensure_ascii=False), encoding="utf-8")
    (out_dir / "report.md").write_text(report_md(result, summ, meta), encoding="utf-8")
    return summ


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, cwd=Path(__file__).parent, timeout=10).stdout.strip()
    except OSError:
        return ""


def run(squad: Path, out: Path, per_article: int = 40, ooc_per_article: int = 20,
        seed: int = 0, nhs: bool = True, cache_dir: Path | None = None,
        decision_path: Path | None = None, pipeline=None, command: str = "") -> FitResult:
    """Collect (cached) and fit; writes the decision file and the report."""
    from collections import Counter

    from eval.decision.data import CHECK_SET, YESNO_GOLD, collect_all
    from rag.config import Settings, data_home
    from rag.grounding.decision import DECISION_FILE

    if pipeline is None:
        from rag.pipeline import Pipeline

        pipeline = Pipeline(Settings())
    gold = Path(__file__).resolve().parents[1] / "nhs_gold.jsonl"
    rows = collect_all(pipeline, squad, per_article, ooc_per_article, YESNO_GOLD,
                       gold if nhs else None,
                       Path(cache_dir or data_home() / "decision-signals"), seed)
    fitting = [r for r in rows if r["set"] != CHECK_SET]
    check = [r for r in rows if r["set"] == CHECK_SET]
    result = fit(fitting, check)
    result.model = replace(result.model, generator=pipeline.settings.model,
                           backend=getattr(pipeline.generator, "backend", "llama"))
    meta = {"data": {"squad": Path(squad).name, "per_article": per_article,
                     "ooc_per_article": ooc_per_article, "seed": seed,
                     "yesno": YESNO_GOLD.name},
            "sets": dict(Counter(r["set"] for r in fitting)), "n_rows": len(fitting),
            "n_check": len(check), "groups": sorted({r["group"] for r in fitting}),
            "commit": _commit(), "command": command}
    write(result, out, Path(decision_path or DECISION_FILE), meta)
    return result
