"""Fit the answer-or-refuse decision (rag/decision.json) across many articles.

    rag fit-decision --squad ../shared/datasets/squad_v2_dev12.json --per-article 40

1. Signals: one model pass per sampled question (eval.signals, cached), ``per_article``
   answerable and as many unanswerable questions of each article, plus the NHS gold set
   as a check that no fitting sees.
2. Articles are split: ``holdout`` of them are left out of everything below and only
   scored at the end; the others are the fitting articles.
3. Replay: rag.draft.settle turns each stored reply into a draft and its signals, with
   each hand-written rule on or off, without the model.
4. A logistic regression (scikit-learn) on standardised signals predicts whether the
   draft is right (an answerable question's draft judged correct by eval.metrics).
   Leave-one-article-out cross-validation over the fitting articles gives out-of-fold
   probabilities; each fold picks its own threshold: the lowest at which its training
   articles' unanswerable questions are refused at ``target`` or more.
5. Choices made on those out-of-fold figures only: the regularisation, and each rule,
   kept only when it adds at least one point of out-of-fold answer accuracy. A rule that
   changes fewer than ``MIN_CHANGED`` drafts of the fitting articles cannot show one point
   there (one point is 2.5 of 252 answerable questions); it is measured on the NHS check
   set instead (a model fitted with every rule on, at its threshold), with the same one
   point. The NHS set is the one the rules were first written against, so a gain there is
   the weaker evidence; the report says where each rule was measured.
6. The shipped model: fitted on all fitting articles, its threshold chosen the same way
   on their out-of-fold probabilities. Then scored on the held-out articles and NHS.

Writes rag/decision.json (model, data, metrics, fold models for ``rag eval
--out-of-fold``) and a report folder: report.md, curve.png, rows.jsonl.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from datetime import date
from pathlib import Path

import numpy as np

from eval import metrics as M
from eval.signals import row_evidence, row_probe, row_scored
from rag.decision import FEATURES, DecisionModel
from rag.draft import DraftRules, settle
from rag.verify import render

TARGET_REFUSAL = 0.85
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
RULE_GAIN = 0.01  # a rule stays only if it adds this much out-of-fold answer accuracy
MIN_CHANGED = 10  # drafts a rule must change on the fitting articles to be measured there


@dataclass
class Replayed:
    """One cached question after settle(): its signals and how each outcome scores."""

    row: dict
    features: dict[str, float]
    shown: bool  # the draft has something to show
    correct: bool  # the draft, shown, would be right (answerable questions only)
    answer: str
    citations: list[dict]


def replay(rows: Sequence[dict], rules: DraftRules) -> list[Replayed]:
    """settle() every row with the fallback decision: the draft and its signals."""
    from rag.decision import FALLBACK

    out = []
    for r in rows:
        evidence = row_evidence(r)
        s = settle(r["question"], row_scored(r), evidence, r["reply"], row_probe(r),
                   FALLBACK, rules=rules)
        text, cites, _ = render(s.draft.sentences, evidence)
        cdicts = [c.to_dict() for c in cites]
        ok = bool(r["answerable"] and s.draft.shown and cdicts
                  and M.score_answer(text, r["answers"], False)["correct"])
        out.append(Replayed(r, s.features, bool(s.draft.shown and cdicts), ok, text, cdicts))
    return out


def matrix(rep: Sequence[Replayed], feats: Sequence[str]) -> np.ndarray:
    return np.array([[x.features[f] for f in feats] for x in rep], np.float64)


def fit_model(rep: Sequence[Replayed], feats: Sequence[str], c: float) -> DecisionModel:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    X = matrix(rep, feats)
    y = np.array([x.correct for x in rep], int)
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-6] = 1.0
    with threadpool_limits(1):  # a small problem: BLAS threads only wait on each other
        clf = LogisticRegression(C=c, max_iter=2000).fit((X - mean) / scale, y)
    return DecisionModel(tuple(feats), tuple(mean.round(6)), tuple(scale.round(6)),
                         tuple(clf.coef_[0].round(6)), round(float(clf.intercept_[0]), 6))


def threshold_for(probs: np.ndarray, rep: Sequence[Replayed], target: float) -> float:
    """The lowest threshold at which ``target`` of the unanswerable questions are refused
    (a question is answered when its probability reaches the threshold)."""
    una = np.sort([p for p, x in zip(probs, rep, strict=True) if not x.row["answerable"]])
    if not len(una):
        return 0.5
    i = min(int(math.ceil(target * len(una))), len(una)) - 1  # refuse the lowest i+1
    return float(min(1.0, una[i] + 1e-9))


def outcomes(rep: Sequence[Replayed], probs: np.ndarray, threshold: float) -> list[dict]:
    rows = []
    for x, p in zip(rep, probs, strict=True):
        answered = bool(x.shown and p >= threshold)
        ans = x.row["answerable"]
        cj = M.citation_judge(x.citations, [tuple(g) for g in x.row["gold_spans"]]) \
            if answered and ans else None
        rows.append({"id": x.row["id"], "group": x.row["group"], "answerable": ans,
                     "answered": answered, "correct": bool(ans and answered and x.correct),
                     "refused_ok": bool(not ans and not answered), "p": float(p),
                     "citations": cj["citations"] if cj else 0,
                     "citations_correct": cj["citations_correct"] if cj else 0,
                     "answer": x.answer if answered else "", "gold": x.row["answers"],
                     "question": x.row["question"], "type": x.row.get("type", "")})
    return rows


def scores(rows: Sequence[dict]) -> dict:
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    n_cit = sum(r["citations"] for r in ans)
    return {"n": len(rows), "n_answerable": len(ans), "n_unanswerable": len(una),
            "answer_accuracy": M.mean(r["correct"] for r in ans),
            "refusal_accuracy": M.mean(r["refused_ok"] for r in una),
            "false_refusal_rate": M.mean(not r["answered"] for r in ans),
            "wrong_answers": M.mean(r["answered"] and not r["correct"] for r in ans),
            "citations_correct": (sum(r["citations_correct"] for r in ans) / n_cit
                                  if n_cit else None)}


def by_group(rows: Sequence[dict]) -> dict[str, dict]:
    groups = sorted({r["group"] for r in rows})
    return {g: scores([r for r in rows if r["group"] == g]) for g in groups}


def interval(values: Sequence[float]) -> dict:
    """Mean and a 95% t-interval over groups (articles)."""
    v = np.array([x for x in values if x is not None], np.float64)
    if len(v) < 2:
        return {"mean": float(v.mean()) if len(v) else None, "lo": None, "hi": None}
    from scipy import stats

    half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
    return {"mean": float(v.mean()), "lo": float(v.mean() - half),
            "hi": float(v.mean() + half)}


def out_of_fold(rep: Sequence[Replayed], feats: Sequence[str], c: float, target: float
                ) -> tuple[np.ndarray, list[dict], dict[str, DecisionModel]]:
    """Leave-one-article-out: probabilities and outcomes of each article from a model and
    threshold fitted on the others."""
    groups = sorted({x.row["group"] for x in rep})
    probs = np.zeros(len(rep))
    rows: list[dict] = [{}] * len(rep)
    folds: dict[str, DecisionModel] = {}
    for g in groups:
        tr = [i for i, x in enumerate(rep) if x.row["group"] != g]
        te = [i for i, x in enumerate(rep) if x.row["group"] == g]
        model = fit_model([rep[i] for i in tr], feats, c)
        tr_p = np.array([model.probability(rep[i].features) for i in tr])
        model = replace(model, threshold=threshold_for(tr_p, [rep[i] for i in tr], target))
        folds[g] = model
        te_p = np.array([model.probability(rep[i].features) for i in te])
        probs[te] = te_p
        for i, o in zip(te, outcomes([rep[i] for i in te], te_p, model.threshold),
                        strict=True):
            rows[i] = o
    return probs, rows, folds


def summary(rows: Sequence[dict]) -> dict:
    per = by_group(rows)
    keys = ("answer_accuracy", "refusal_accuracy", "false_refusal_rate", "citations_correct")
    return {"pooled": scores(rows), "per_article": per,
            "across_articles": {k: interval([p[k] for p in per.values()]) for k in keys}}


def curve(rep: Sequence[Replayed], probs: np.ndarray) -> list[dict]:
    """Answer accuracy, answered share and refusal accuracy at every threshold."""
    pts = []
    for t in np.linspace(0, 1, 101):
        s = scores(outcomes(rep, probs, float(t)))
        pts.append({"threshold": round(float(t), 2), **s})
    return pts


def plot_curve(points: Sequence[dict], chosen: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    ra = [p["refusal_accuracy"] for p in points]
    ax.plot(ra, [1 - p["false_refusal_rate"] for p in points], label="answered (answerable)")
    ax.plot(ra, [p["answer_accuracy"] for p in points], label="answered correctly")
    ax.scatter([chosen["refusal_accuracy"]], [chosen["answer_accuracy"]], color="black",
               zorder=3, label=f"operating point (target {TARGET_REFUSAL:.2f})")
    ax.set_xlabel("refusal accuracy (unanswerable questions refused)")
    ax.set_ylabel("share of answerable questions")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


@dataclass
class FitResult:
    model: DecisionModel
    rules: DraftRules
    c: float
    oof: dict
    holdout: dict | None
    nhs: dict | None
    rule_gains: dict[str, float]  # out of fold on the fitting articles
    rule_check_gains: dict[str, float]  # on the NHS check set
    rule_changes: dict[str, int]  # drafts of the fitting articles each rule changes
    c_scores: dict[str, float]
    curve: list[dict]
    folds: dict[str, DecisionModel]
    oof_rows: list[dict]
    test_rows: list[dict]


def split_groups(groups: Sequence[str], holdout: int, seed: int) -> tuple[list[str], list[str]]:
    g = sorted(groups)
    held = sorted(random.Random(seed).sample(g, holdout)) if holdout else []
    return [x for x in g if x not in held], held


def fit(rows: Sequence[dict], holdout_groups: Sequence[str], check_rows: Sequence[dict] = (),
        target: float = TARGET_REFUSAL, feats: Sequence[str] = FEATURES) -> FitResult:
    """Everything of steps 3-6 on cached rows (see the module's text)."""
    fit_rows = [r for r in rows if r["group"] not in holdout_groups]
    test_rows = [r for r in rows if r["group"] in holdout_groups]

    replays: dict[DraftRules, list[Replayed]] = {}

    def oof_accuracy(rules: DraftRules, c: float) -> tuple[float, list]:
        if rules not in replays:
            replays[rules] = replay(fit_rows, rules)
        rep = replays[rules]
        _, out, _ = out_of_fold(rep, feats, c, target)
        return scores(out)["answer_accuracy"], rep

    # regularisation, with every rule on
    rules = DraftRules()
    c_scores = {str(c): oof_accuracy(rules, c)[0] for c in C_GRID}
    c = float(max(c_scores, key=lambda k: (c_scores[k], -float(k))))
    base, _ = oof_accuracy(rules, c)
    gains, check_gains, changes, keep = {}, {}, {}, {}
    for f in fields(DraftRules):
        off = replace(rules, **{f.name: False})
        gains[f.name] = base - oof_accuracy(off, c)[0]
        changes[f.name] = sum(x.answer != y.answer or x.shown != y.shown
                              for x, y in zip(replays[rules], replays[off], strict=True))
        check_gains[f.name] = (_check_gain(replays[rules], check_rows, rules, off, c, target)
                               if check_rows else 0.0)
        measured = (check_gains[f.name] if check_rows and changes[f.name] < MIN_CHANGED
                    else gains[f.name])
        keep[f.name] = measured >= RULE_GAIN
    kept = DraftRules(**keep)
    rep = replays.get(kept) or replay(fit_rows, kept)
    probs, oof_rows, folds = out_of_fold(rep, feats, c, target)
    model = fit_model(rep, feats, c)
    model = replace(model, threshold=threshold_for(probs, rep, target))
    pts = curve(rep, probs)

    def score_set(rs: Sequence[dict]) -> tuple[dict | None, list[dict]]:
        if not rs:
            return None, []
        rp = replay(rs, kept)
        p = np.array([model.probability(x.features) for x in rp])
        out = outcomes(rp, p, model.threshold)
        return summary(out), out

    held, held_rows = score_set(test_rows)
    nhs, _ = score_set(check_rows)
    return FitResult(model, kept, c, summary(oof_rows), held, nhs, gains, check_gains,
                     changes, c_scores, pts, folds, oof_rows, held_rows)


def _check_gain(rep: Sequence[Replayed], check_rows: Sequence[dict], on: DraftRules,
                off: DraftRules, c: float, target: float, feats: Sequence[str] = FEATURES
                ) -> float:
    """Answer accuracy on ``check_rows`` with the rule on minus with it off, decided by a
    model fitted on ``rep`` (every rule on) at its out-of-fold threshold."""
    probs, _, _ = out_of_fold(rep, feats, c, target)
    model = replace(fit_model(rep, feats, c), threshold=threshold_for(probs, rep, target))

    def accuracy(rules: DraftRules) -> float:
        rp = replay(check_rows, rules)
        p = np.array([model.probability(x.features) for x in rp])
        return scores(outcomes(rp, p, model.threshold))["answer_accuracy"]

    return accuracy(on) - accuracy(off)


def write(result: FitResult, out_dir: Path, decision_path: Path, meta: dict) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen = result.oof["pooled"]
    plot_curve(result.curve, chosen, out_dir / "curve.png",
               "Out of fold, leave one article out")
    twelve = None
    if result.holdout:
        twelve = summary(result.oof_rows + result.test_rows)
    metrics = {"out_of_fold": result.oof, "holdout": result.holdout, "nhs": result.nhs,
               "all_articles": twelve, "rule_gains": result.rule_gains,
               "rule_check_gains": result.rule_check_gains,
               "rule_changes": result.rule_changes, "c_scores": result.c_scores}
    model = replace(result.model, meta={
        **meta, "fitted": date.today().isoformat(), "c": result.c,
        "target_refusal_accuracy": TARGET_REFUSAL, "rules": asdict(result.rules),
        "metrics": _round(metrics),
        "folds": {g: _round(m.to_dict()) for g, m in result.folds.items()}})
    Path(decision_path).write_text(json.dumps(model.to_dict(), indent=1) + "\n",
                                   encoding="utf-8")
    with open(out_dir / "rows.jsonl", "w", encoding="utf-8") as f:
        for r in result.oof_rows + result.test_rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    (out_dir / "curve.json").write_text(json.dumps(result.curve, indent=1), encoding="utf-8")
    (out_dir / "report.md").write_text(report_md(result, twelve, meta), encoding="utf-8")


def _round(x):
    if isinstance(x, float):
        return round(x, 4)
    if isinstance(x, dict):
        return {k: _round(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_round(v) for v in x]
    return x


def _fmt(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def _ci(d: dict) -> str:
    if d["mean"] is None:
        return "—"
    if d["lo"] is None:
        return f"{d['mean']:.3f}"
    return f"{d['mean']:.3f} [{d['lo']:.3f}, {d['hi']:.3f}]"


def report_md(result: FitResult, twelve: dict | None, meta: dict) -> str:
    m = result.model
    lines = ["# The answer-or-refuse decision", "",
             f"Generator: {m.generator}. Fitted on {meta.get('n_fit_rows')} questions of "
             f"{len(result.folds)} articles; held out: "
             f"{', '.join(meta.get('holdout_groups', [])) or 'none'}.",
             f"Regularisation C = {result.c}; threshold {m.threshold:.3f} "
             f"(target refusal accuracy {TARGET_REFUSAL:.2f}).", "",
             "## Out of fold (leave one article out)", "",
             "| article | n | answer accuracy | refusal accuracy | false refusals | "
             "citations correct |", "|---|---|---|---|---|---|"]
    sets = [("", result.oof["per_article"])]
    if result.holdout:
        sets.append((" (held out)", result.holdout["per_article"]))
    for tag, per in sets:
        for g, s in per.items():
            lines.append(f"| {g}{tag} | {s['n']} | {_fmt(s['answer_accuracy'])} | "
                         f"{_fmt(s['refusal_accuracy'])} | {_fmt(s['false_refusal_rate'])} | "
                         f"{_fmt(s['citations_correct'])} |")
    for name, summ in (("fitting articles, out of fold", result.oof),
                       ("held-out articles", result.holdout),
                       ("all articles", twelve), ("NHS gold set", result.nhs)):
        if not summ:
            continue
        a = summ["across_articles"]
        p = summ["pooled"]
        lines += ["", f"**{name}**: pooled answer accuracy {_fmt(p['answer_accuracy'])}, "
                  f"refusal accuracy {_fmt(p['refusal_accuracy'])}, false refusals "
                  f"{_fmt(p['false_refusal_rate'])}, wrong answers {_fmt(p['wrong_answers'])}, "
                  f"citations correct {_fmt(p['citations_correct'])}; mean over articles "
                  f"with 95% interval: answers {_ci(a['answer_accuracy'])}, refusals "
                  f"{_ci(a['refusal_accuracy'])}, false refusals "
                  f"{_ci(a['false_refusal_rate'])}."]
    lines += ["", "## Signals (standardised coefficients)", "", "| signal | coefficient |",
              "|---|---|"]
    lines += [f"| {f} | {c:+.3f} |" for f, c in zip(m.features, m.coef, strict=True)]
    lines += ["", "## Rules", "", "Answer accuracy lost when a rule is off, out of fold on "
              f"the fitting articles, or on the NHS check set for a rule that changes fewer "
              f"than {MIN_CHANGED} drafts of the fitting articles (kept when ≥ "
              f"{RULE_GAIN:.2f}):", "",
              "| rule | drafts changed | out of fold | NHS | kept |", "|---|---|---|---|---|"]
    lines += [f"| {k} | {result.rule_changes.get(k, 0)} | {v:+.3f} | "
              f"{result.rule_check_gains.get(k, 0.0):+.3f} | "
              f"{'yes' if getattr(result.rules, k) else 'no'} |"
              for k, v in result.rule_gains.items()]
    lines += ["", "Regularisation, out-of-fold answer accuracy: " + ", ".join(
        f"C={k}: {v:.3f}" for k, v in result.c_scores.items()), "",
        "![answer rate against refusal accuracy](curve.png)", ""]
    return "\n".join(lines)


def gold_spans_for(documents: dict[str, str]):
    """(doc, start, end) of each gold evidence as whole sentences (``M.gold_sentences``)."""
    def spans(item) -> list[tuple[str, int, int]]:
        out = []
        for ev in item.evidence:
            text = documents.get(ev.doc, "")
            out += [(ev.doc, s, e) for s, e in M.gold_sentences(text, ev.spans(text))]
        return out
    return spans


def collect_set(pipeline, corpus: Path, items, cache_dir: Path, name: str, group_of
                ) -> list[dict]:
    """Index ``corpus`` and collect (or read back) the signals of ``items``, with a
    pipeline for that corpus sharing ``pipeline``'s models."""
    from eval.signals import cache_key, collect
    from rag.pipeline import Pipeline

    pipeline = Pipeline(pipeline.settings.with_overrides(corpus=corpus),
                        embedder=pipeline.embedder, generator=pipeline.generator)
    pipeline.index(Path(corpus))
    docs = {d: doc.text for d, doc in pipeline.retriever.data.documents.items()}
    cache = Path(cache_dir) / f"{name}-{cache_key(pipeline)}.jsonl"
    return collect(pipeline, items, cache, group_of, gold_spans_for(docs))


def run(squad: Path, out: Path, per_article: int = 40, holdout: int = 3, seed: int = 0,
        nhs: bool = True, cache_dir: Path | None = None, decision_path: Path | None = None,
        pipeline=None) -> FitResult:
    """Collect (cached) and fit; writes the decision file and the report."""
    from eval.cli import GOLD_DEFAULT
    from eval.gold import load_gold
    from eval.signals import per_group_sample
    from eval.squad import build_corpus, item_articles, read_squad, squad_items
    from rag.config import BUNDLED_CORPUS, Settings, data_home
    from rag.decision import DECISION_FILE

    if pipeline is None:
        from rag.pipeline import Pipeline

        pipeline = Pipeline(Settings())
    cache_dir = Path(cache_dir or data_home() / "decision-signals")
    items = squad_items(read_squad(squad))
    group = item_articles(read_squad(squad))
    sample = per_group_sample(items, lambda it: group[it.id], per_article, seed)
    corpus = build_corpus(squad, data_home() / "eval-corpora")
    rows = collect_set(pipeline, corpus, sample, cache_dir, "squad",
                       lambda it: group[it.id])
    fit_groups, held = split_groups(sorted({r["group"] for r in rows}), holdout, seed)
    check = []
    if nhs:
        gold = load_gold(GOLD_DEFAULT)
        check = collect_set(pipeline, BUNDLED_CORPUS, gold, cache_dir, "nhs",
                            lambda it: "nhs")
    result = fit(rows, held, check)
    model = replace(result.model, generator=pipeline.settings.model,
                    backend=getattr(pipeline.generator, "backend", ""))
    result.model = model
    meta = {"data": {"squad": Path(squad).name, "per_article": per_article, "seed": seed,
                     "nhs_check": bool(nhs)},
            "holdout_groups": held, "fit_groups": fit_groups,
            "n_fit_rows": sum(r["group"] in fit_groups for r in rows),
            "n_holdout_rows": sum(r["group"] in held for r in rows)}
    write(result, out, Path(decision_path or DECISION_FILE), meta)
    return result
