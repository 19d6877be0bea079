"""Fit the graded decision (rag/decision.json): answer, caution or refuse.

    rag fit-decision --squad ../shared/datasets/squad_v2_dev12.json

1. Signals: one model pass per question of the fitting sets (eval.decision_data: SQuAD
   answerable and adversarial unanswerable questions, out-of-corpus questions, yes/no
   questions; every one tagged with its article) and of the NHS check set; cached.
2. Replay: rag.draft.settle turns each stored reply into a draft and its signals, with the
   hand-written rules on or off, without the model.
3. A logistic regression (scikit-learn) on standardised signals predicts whether the
   draft is right (an answerable question's draft judged correct by eval.metrics).
4. Leave one article out, over all the articles: each article is scored by a model fitted
   on the others, at thresholds chosen on the others' own out-of-fold probabilities
   (an inner leave-one-article-out), so no article's figures come from a choice it
   took part in:
   - ``threshold`` (t_high): the lowest at which confident answers are right at least
     ``precision`` of the time;
   - ``low`` (t_low): the lowest at which at least ``ooc`` of the out-of-corpus questions
     are refused, so that right drafts are refused as little as that allows.
5. Choices made on the out-of-fold figures of all articles: the regularisation (the
   lowest out-of-fold log loss), and each rule (kept when it adds at least one point of
   right answers shown). The NHS set is never used for a choice: it is only scored.
6. The shipped model: fitted on every fitting row, its thresholds chosen the same way on
   its own out-of-fold probabilities. Then scored on the NHS check set.

Writes rag/decision.json (model, data, metrics, fold models for ``rag eval
--out-of-fold``) and a report folder (eval.decision_report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from eval import metrics as M
from eval.signals import row_evidence, row_probe, row_scored
from rag.decision import FALLBACK, FEATURES, DecisionModel
from rag.draft import DraftRules, settle
from rag.verify import render

TARGET_PRECISION = 0.85  # confident answers that are right
TARGET_OOC = 0.97  # out-of-corpus questions refused
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
RULE_GAIN = 0.01  # a rule stays only if it adds this much to the right answers shown
MIN_CONFIDENT = 10  # the precision of fewer confident answers is not trusted
GRID = np.round(np.arange(0.0, 1.0001, 0.005), 3)


@dataclass
class Replayed:
    """One cached question after settle(): its signals and how each outcome scores."""

    row: dict
    features: dict[str, float]
    shown: bool  # the draft has something to show
    correct: bool  # the draft, shown, would be right (answerable questions only)
    answer: str
    citations: list[dict]

    @property
    def set(self) -> str:
        return self.row.get("set") or "squad"

    @property
    def group(self) -> str:
        return self.row["group"]


def replay(rows: Sequence[dict], rules: DraftRules) -> list[Replayed]:
    """settle() every row with the fallback decision: the draft and its signals."""
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


def grade_of(p: float, shown: bool, high: float, low: float) -> str:
    if not shown or p < low:
        return "refused"
    return "answer" if p >= high else "caution"


def thresholds(probs: np.ndarray, rep: Sequence[Replayed], precision: float = TARGET_PRECISION,
               ooc: float = TARGET_OOC) -> tuple[float, float]:
    """(t_high, t_low) on these probabilities (see the module's text). With no t at which
    ``precision`` holds for at least ``MIN_CONFIDENT`` answers, nothing is confident."""
    shown = np.array([x.shown for x in rep])
    right = np.array([x.correct for x in rep])
    high = 1.0 + 1e-9
    for t in GRID:
        conf = shown & (probs >= t)
        if conf.sum() >= MIN_CONFIDENT and right[conf].mean() >= precision:
            high = float(t)
            break
    out = np.array([x.set == "out_of_corpus" for x in rep])
    low = 0.0
    if out.any():
        for t in GRID:
            if np.mean(~shown[out] | (probs[out] < t)) >= ooc:
                low = float(t)
                break
    return high, min(low, high)


def _groups(rep: Sequence[Replayed]) -> list[str]:
    return sorted({x.group for x in rep})


def _probs(model: DecisionModel, rep: Sequence[Replayed]) -> np.ndarray:
    return np.array([model.probability(x.features) for x in rep])


def oof_probs(rep: Sequence[Replayed], feats: Sequence[str], c: float) -> np.ndarray:
    """Leave one article out: each row's probability from a model fitted without its
    article."""
    probs = np.zeros(len(rep))
    for g in _groups(rep):
        tr = [x for x in rep if x.group != g]
        te = [i for i, x in enumerate(rep) if x.group == g]
        probs[te] = _probs(fit_model(tr, feats, c), [rep[i] for i in te])
    return probs


def fitted(rep: Sequence[Replayed], feats: Sequence[str], c: float,
           precision: float = TARGET_PRECISION, ooc: float = TARGET_OOC) -> DecisionModel:
    """A model fitted on ``rep``, at thresholds chosen on its out-of-fold probabilities."""
    high, low = thresholds(oof_probs(rep, feats, c), rep, precision, ooc)
    return replace(fit_model(rep, feats, c), threshold=min(high, 1.0), low=low)


def out_of_fold(rep: Sequence[Replayed], feats: Sequence[str], c: float,
                precision: float = TARGET_PRECISION, ooc: float = TARGET_OOC
                ) -> tuple[np.ndarray, list[dict], dict[str, DecisionModel]]:
    """Each article scored by a model and thresholds that never saw it (the module's
    step 4): its probabilities, outcome rows and the fold models."""
    probs = np.zeros(len(rep))
    rows: list[dict] = [{}] * len(rep)
    folds: dict[str, DecisionModel] = {}
    for g in _groups(rep):
        tr = [x for x in rep if x.group != g]
        te = [i for i, x in enumerate(rep) if x.group == g]
        model = fitted(tr, feats, c, precision, ooc)
        folds[g] = model
        p = _probs(model, [rep[i] for i in te])
        probs[te] = p
        for i, o in zip(te, outcomes([rep[i] for i in te], p, model), strict=True):
            rows[i] = o
    return probs, rows, folds


def outcomes(rep: Sequence[Replayed], probs: np.ndarray, model: DecisionModel) -> list[dict]:
    rows = []
    for x, p in zip(rep, probs, strict=True):
        grade = grade_of(float(p), x.shown, model.threshold, model.caution_at)
        ans = bool(x.row["answerable"])
        shown = grade != "refused"
        cj = M.citation_judge(x.citations, [tuple(g) for g in x.row["gold_spans"]]) \
            if shown and ans else None
        rows.append({"id": x.row["id"], "group": x.group, "set": x.set, "answerable": ans,
                     "grade": grade, "correct": bool(ans and shown and x.correct),
                     "draft_correct": x.correct, "p": float(p),
                     "citations": cj["citations"] if cj else 0,
                     "citations_correct": cj["citations_correct"] if cj else 0,
                     "answer": x.answer if shown else "", "withheld": "" if shown else x.answer,
                     "gold": x.row["answers"], "question": x.row["question"],
                     "type": x.row.get("type", "")})
    return rows


def scores(rows: Sequence[dict]) -> dict:
    """The graded figures of a set of outcome rows."""
    ans = [r for r in rows if r["answerable"]]
    una = [r for r in rows if not r["answerable"]]
    conf = [r for r in rows if r["grade"] == "answer"]
    n_cit = sum(r["citations"] for r in ans)
    return {"n": len(rows), "n_answerable": len(ans), "n_unanswerable": len(una),
            "right_shown": M.mean(r["correct"] for r in ans),
            "right_confident": M.mean(r["correct"] and r["grade"] == "answer" for r in ans),
            "caution_answerable": M.mean(r["grade"] == "caution" for r in ans),
            "refused_answerable": M.mean(r["grade"] == "refused" for r in ans),
            "right_drafts_refused": M.mean(r["grade"] == "refused" for r in ans
                                           if r["draft_correct"]),
            "confident_unanswerable": M.mean(r["grade"] == "answer" for r in una),
            "caution_unanswerable": M.mean(r["grade"] == "caution" for r in una),
            "refused_unanswerable": M.mean(r["grade"] == "refused" for r in una),
            "confident_precision": M.mean(r["correct"] for r in conf),
            "n_confident": len(conf),
            "citations_correct": (sum(r["citations_correct"] for r in ans) / n_cit
                                  if n_cit else None)}


def by(rows: Sequence[dict], key: str) -> dict[str, dict]:
    return {v: scores([r for r in rows if r[key] == v]) for v in sorted({r[key] for r in rows})}


def log_loss(rep: Sequence[Replayed], probs: np.ndarray) -> float:
    y = np.array([x.correct for x in rep], float)
    p = np.clip(probs, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@dataclass
class FitResult:
    model: DecisionModel
    rules: DraftRules
    c: float
    oof_rows: list[dict]
    oof_probs: np.ndarray
    replayed: list[Replayed]
    folds: dict[str, DecisionModel]
    check_rows: list[dict]  # the NHS check set, scored by the shipped model
    c_scores: dict[str, float]  # out-of-fold log loss
    rule_gains: dict[str, float]  # out-of-fold right answers shown, rule on minus off
    rule_changes: dict[str, int]


def fit(rows: Sequence[dict], check_rows: Sequence[dict] = (),
        precision: float = TARGET_PRECISION, ooc: float = TARGET_OOC,
        feats: Sequence[str] = FEATURES) -> FitResult:
    """Steps 2-6 on cached rows (see the module's text)."""
    replays: dict[DraftRules, list[Replayed]] = {}

    def rep_for(rules: DraftRules) -> list[Replayed]:
        if rules not in replays:
            replays[rules] = replay(rows, rules)
        return replays[rules]

    rules = DraftRules()
    c_scores = {str(c): log_loss(rep_for(rules), oof_probs(rep_for(rules), feats, c))
                for c in C_GRID}
    c = float(min(c_scores, key=lambda k: (c_scores[k], float(k))))
    base = scores(out_of_fold(rep_for(rules), feats, c, precision, ooc)[1])["right_shown"]
    gains, changes, keep = {}, {}, {}
    for f in fields(DraftRules):
        off = replace(rules, **{f.name: False})
        oof_off = out_of_fold(rep_for(off), feats, c, precision, ooc)[1]
        gains[f.name] = base - scores(oof_off)["right_shown"]
        changes[f.name] = sum(x.answer != y.answer or x.shown != y.shown
                              for x, y in zip(rep_for(rules), rep_for(off), strict=True))
        keep[f.name] = gains[f.name] >= RULE_GAIN
    kept = DraftRules(**keep)
    rep = rep_for(kept)
    probs, oof_rows, folds = out_of_fold(rep, feats, c, precision, ooc)
    model = fitted(rep, feats, c, precision, ooc)
    check = []
    if check_rows:
        rp = replay(check_rows, kept)
        check = outcomes(rp, _probs(model, rp), model)
    return FitResult(model, kept, c, oof_rows, probs, rep, folds, check, c_scores, gains,
                     changes)


def curve(rep: Sequence[Replayed], probs: np.ndarray) -> list[dict]:
    """At every threshold t, as if t were both thresholds' place: confident precision
    and right confident answers (t as t_high), and out-of-corpus questions and right
    drafts refused (t as t_low)."""
    shown = np.array([x.shown for x in rep])
    right = np.array([x.correct for x in rep])
    ans = np.array([bool(x.row["answerable"]) for x in rep])
    out = np.array([x.set == "out_of_corpus" for x in rep])
    pts = []
    for t in GRID[::2]:
        conf = shown & (probs >= t)
        refused = ~shown | (probs < t)
        pts.append({"t": float(t),
                    "confident_precision": float(right[conf].mean()) if conf.any() else None,
                    "right_confident": float((right & conf)[ans].mean()),
                    "ooc_refused": float(refused[out].mean()) if out.any() else None,
                    "right_drafts_refused": float(refused[right].mean()) if right.any()
                    else None})
    return pts
