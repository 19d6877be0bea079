"""Fit the graded decision (rag/grounding/decision.json): answer, caution or refuse.

    rag fit-decision --squad ../shared/datasets/squad_v2_dev12.json

1. Signals: one model pass per question of the fitting sets (eval.decision.data: SQuAD
   answerable and adversarial unanswerable questions, out-of-corpus questions, yes/no
   questions; every one tagged with its article) and of the NHS check set; cached.
2. Replay: rag.grounding.draft.settle turns each stored reply into a draft and its signals, with the
   hand-written rules on or off, without the model.
3. Two logistic regressions (scikit-learn) on standardised signals: P(right), whether
   the draft is right (an answerable question's draft judged correct by eval.metrics),
   and P(covered), whether the question was asked of its own documents (every set but
   the out-of-corpus one).
4. Leave one article out, over all the articles: each article is scored by models fitted
   on the others, at thresholds chosen on the others' own out-of-fold probabilities
   (an inner leave-one-article-out), so no article's figures come from a choice it
   took part in:
   - ``threshold`` (t_high, on P(right)): the lowest at which confident answers are right
     at least ``precision`` of the time, over the drafts t_low lets through; chosen for
     yes/no questions and for the others apart (``yes_no_threshold``), since the
     signals of a yes/no draft (its reading, its stance) are not those of a name or a
     number, and one threshold for both would hold neither form to the target;
   - ``low`` (t_low, on P(covered)): the lowest at which at least ``ooc`` of the
     out-of-corpus questions are refused, so that right drafts are refused as little as
     that allows.
   A draft is answered with confidence at P(right) ≥ t_high, refused at P(covered) <
   t_low, shown as a caution otherwise.
5. Choices made on the out-of-fold figures of all articles: each model's regularisation
   (the lowest out-of-fold log loss), and each rule (kept when it adds at least one point
   of right answers shown). P(right) reads every signal of ``rag.grounding.signals.FEATURES``;
   P(covered) the retrieval signals and the model's own (``COVERAGE_FEATURES``), not the
   draft's form or the question's. The NHS set is never used for a choice: it is only
   scored.
6. The shipped models: fitted on every fitting row, the thresholds chosen the same way on
   their own out-of-fold probabilities. Then scored on the NHS check set.

Writes rag/grounding/decision.json (model, data, metrics, fold models for ``rag eval
--out-of-fold``) and a report folder (eval.decision.report).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields, replace

import numpy as np

from eval import metrics as M
from eval.decision.signals import row_evidence, row_probe, row_reading, row_scored
from rag.grounding.decision import FALLBACK, Coverage, DecisionModel
from rag.grounding.draft import DraftRules, settle
from rag.grounding.signals import FEATURES
from rag.grounding.verify import render

TARGET_PRECISION = 0.80  # confident answers that are right
TARGET_OOC = 0.97  # out-of-corpus questions refused
C_GRID = (0.03, 0.1, 0.3, 1.0, 3.0)
RULE_GAIN = 0.01  # a rule stays only if it adds this much to the right answers shown
MIN_CONFIDENT = 10  # the precision of fewer confident answers is not trusted
GRID = np.round(np.arange(0.0, 1.0001, 0.005), 3)
# whether the documents cover a question: how well the retrieved sentences and passages
# meet it, and the model's own first step and reply; not the draft's form or the
# question's (chosen on out-of-fold log loss against all signals, and against the
# retrieval signals with and without the model's)
COVERAGE_FEATURES = ("best_score", "best_dense", "best_lexical", "cited_dense",
                     "cited_lexical", "names_missing", "pool_names_missing",
                     "pool_words_missing", "best_gap", "passage_dense", "refusal_logit",
                     "mean_logprob", "min_logprob", "declined", "pointer")


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
        args = (r["question"], row_scored(r), evidence, r["reply"], row_probe(r), FALLBACK)
        dense = [p["dense_score"] for p in r.get("passages", [])]
        s = settle(*args, rules=rules, passage_dense=dense)
        reading = row_reading(r, s.draft, evidence)
        if reading is not None:  # a yes/no draft, settled with the model's reading
            if math.isnan(reading):
                raise ValueError(f"row {r['id']} has no reading of its yes/no draft: "
                                 "collect the signals again (rag fit-decision)")
            s = settle(*args, rules=rules, passage_dense=dense, reading=reading)
        text, cites, _ = render(s.draft.sentences, evidence)
        cdicts = [c.to_dict() for c in cites]
        ok = bool(r["answerable"] and s.draft.shown and cdicts
                  and M.score_answer(text, r["answers"], False)["correct"])
        out.append(Replayed(r, s.features, bool(s.draft.shown and cdicts), ok, text, cdicts))
    return out


def matrix(rep: Sequence[Replayed], feats: Sequence[str]) -> np.ndarray:
    return np.array([[x.features[f] for f in feats] for x in rep], np.float64)


def _logistic(rep: Sequence[Replayed], feats: Sequence[str], c: float, y: np.ndarray):
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    X = matrix(rep, feats)
    mean, scale = X.mean(0), X.std(0)
    scale[scale < 1e-6] = 1.0
    with threadpool_limits(1):  # a small problem: BLAS threads only wait on each other
        clf = LogisticRegression(C=c, max_iter=2000).fit((X - mean) / scale, y)
    return (tuple(feats), tuple(mean.round(6)), tuple(scale.round(6)),
            tuple(clf.coef_[0].round(6)), round(float(clf.intercept_[0]), 6))


def covered(x: Replayed) -> bool:
    """The coverage model's label: asked of its own documents."""
    return x.set != "out_of_corpus"


def fit_model(rep: Sequence[Replayed], feats: Sequence[str], c: float) -> DecisionModel:
    """P(the draft is right)."""
    return DecisionModel(*_logistic(rep, feats, c, np.array([x.correct for x in rep], int)))


def fit_coverage(rep: Sequence[Replayed], feats: Sequence[str], c: float) -> Coverage:
    """P(the documents cover the question)."""
    return Coverage(*_logistic(rep, feats, c, np.array([covered(x) for x in rep], int)))


def yes_no(x: Replayed) -> bool:
    return bool(x.features["yes_no"])


def grade_of(x: Replayed, p: float, cover: float, model: DecisionModel) -> str:
    return model.grade(p, x.shown, cover, yes_no(x))


def _high(probs: np.ndarray, right: np.ndarray, kept: np.ndarray, precision: float
          ) -> float:
    """The lowest t at which the ``kept`` drafts with P(right) ≥ t are right at least
    ``precision`` of the time (at least ``MIN_CONFIDENT`` of them); above 1 if none."""
    for t in GRID:
        conf = kept & (probs >= t)
        if conf.sum() >= MIN_CONFIDENT and right[conf].mean() >= precision:
            return float(t)
    return 1.0 + 1e-9


def thresholds(probs: np.ndarray, covers: np.ndarray, rep: Sequence[Replayed],
               precision: float = TARGET_PRECISION, ooc: float = TARGET_OOC
               ) -> tuple[float, float, float]:
    """(t_high, t_high for yes/no questions, t_low) (see the module's text): t_low on
    P(covered) first, then each t_high on P(right) over the drafts t_low lets through,
    for each form of question apart. With no t at which ``precision`` holds for at least
    ``MIN_CONFIDENT`` answers, nothing of that form is confident."""
    shown = np.array([x.shown for x in rep])
    right = np.array([x.correct for x in rep])
    out = np.array([not covered(x) for x in rep])
    yn = np.array([yes_no(x) for x in rep])
    low = 0.0
    if out.any():
        for t in GRID:
            if np.mean(~shown[out] | (covers[out] < t)) >= ooc:
                low = float(t)
                break
    kept = shown & (covers >= low)  # what t_low lets through
    return (_high(probs, right, kept & ~yn, precision),
            _high(probs, right, kept & yn, precision), low)


def _groups(rep: Sequence[Replayed]) -> list[str]:
    return sorted({x.group for x in rep})


def _probs(model: DecisionModel, rep: Sequence[Replayed]) -> np.ndarray:
    return np.array([model.probability(x.features) for x in rep])


def _covers(model: DecisionModel, rep: Sequence[Replayed]) -> np.ndarray:
    return np.array([model.covers(x.features) for x in rep], np.float64)


def oof_probs(rep: Sequence[Replayed], feats: Sequence[str], c: float,
              coverage: bool = False) -> np.ndarray:
    """Leave one article out: each row's P(right) (or P(covered)) from a model fitted
    without its article."""
    probs = np.zeros(len(rep))
    for g in _groups(rep):
        tr = [x for x in rep if x.group != g]
        te = [rep[i] for i, x in enumerate(rep) if x.group == g]
        idx = [i for i, x in enumerate(rep) if x.group == g]
        if coverage:
            cov = fit_coverage(tr, feats, c)
            probs[idx] = [cov.probability(x.features) for x in te]
        else:
            probs[idx] = _probs(fit_model(tr, feats, c), te)
    return probs


@dataclass(frozen=True)
class Spec:
    """What a fit uses: the signals and regularisation of each model and the targets."""

    feats: tuple[str, ...] = FEATURES
    c: float = 0.3
    cover_feats: tuple[str, ...] = COVERAGE_FEATURES
    cover_c: float = 0.3
    precision: float = TARGET_PRECISION
    ooc: float = TARGET_OOC


def fitted(rep: Sequence[Replayed], spec: Spec) -> DecisionModel:
    """Both models fitted on ``rep``, at thresholds chosen on their own out-of-fold
    probabilities."""
    high, high_yn, low = thresholds(
        oof_probs(rep, spec.feats, spec.c),
        oof_probs(rep, spec.cover_feats, spec.cover_c, coverage=True), rep,
        spec.precision, spec.ooc)
    return replace(fit_model(rep, spec.feats, spec.c), threshold=min(high, 1.0),
                   yes_no_threshold=min(high_yn, 1.0), low=low,
                   coverage=fit_coverage(rep, spec.cover_feats, spec.cover_c))


def out_of_fold(rep: Sequence[Replayed], spec: Spec
                ) -> tuple[np.ndarray, np.ndarray, list[dict], dict[str, DecisionModel]]:
    """Each article scored by models and thresholds that never saw it (the module's
    step 4): its P(right), P(covered), outcome rows and the fold models."""
    probs, covers = np.zeros(len(rep)), np.zeros(len(rep))
    rows: list[dict] = [{}] * len(rep)
    folds: dict[str, DecisionModel] = {}
    for g in _groups(rep):
        tr = [x for x in rep if x.group != g]
        te = [i for i, x in enumerate(rep) if x.group == g]
        model = fitted(tr, spec)
        folds[g] = model
        probs[te] = _probs(model, [rep[i] for i in te])
        covers[te] = _covers(model, [rep[i] for i in te])
        for i, o in zip(te, outcomes([rep[i] for i in te], probs[te], covers[te], model),
                        strict=True):
            rows[i] = o
    return probs, covers, rows, folds


def outcomes(rep: Sequence[Replayed], probs: np.ndarray, covers: np.ndarray,
             model: DecisionModel) -> list[dict]:
    rows = []
    for x, p, cov in zip(rep, probs, covers, strict=True):
        grade = grade_of(x, float(p), float(cov), model)
        ans = bool(x.row["answerable"])
        shown = grade != "refused"
        cj = M.citation_judge(x.citations, [tuple(g) for g in x.row["gold_spans"]]) \
            if shown and ans else None
        rows.append({"id": x.row["id"], "group": x.group, "set": x.set, "answerable": ans,
                     "grade": grade, "correct": bool(ans and shown and x.correct),
                     "draft_correct": x.correct, "p": float(p), "coverage": float(cov),
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


def log_loss(y: Sequence[bool], probs: np.ndarray) -> float:
    y = np.array(y, float)
    p = np.clip(probs, 1e-6, 1 - 1e-6)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@dataclass
class FitResult:
    model: DecisionModel
    rules: DraftRules
    spec: Spec
    oof_rows: list[dict]
    oof_probs: np.ndarray
    oof_covers: np.ndarray
    replayed: list[Replayed]
    folds: dict[str, DecisionModel]
    check_rows: list[dict]  # the NHS check set, scored by the shipped model
    c_scores: dict[str, float]  # out-of-fold log loss of P(right)
    cover_c_scores: dict[str, float]  # out-of-fold log loss of P(covered)
    rule_gains: dict[str, float]  # out-of-fold right answers shown, rule on minus off
    rule_changes: dict[str, int]


def fit(rows: Sequence[dict], check_rows: Sequence[dict] = (), spec: Spec | None = None
        ) -> FitResult:
    """Steps 2-6 on cached rows (see the module's text); ``spec``'s regularisations are
    chosen here, its signals and targets are kept."""
    spec = spec or Spec()
    replays: dict[DraftRules, list[Replayed]] = {}

    def rep_for(rules: DraftRules) -> list[Replayed]:
        if rules not in replays:
            replays[rules] = replay(rows, rules)
        return replays[rules]

    rules = DraftRules()
    rep = rep_for(rules)
    c_scores = {str(c): log_loss([x.correct for x in rep], oof_probs(rep, spec.feats, c))
                for c in C_GRID}
    cover_scores = {str(c): log_loss([covered(x) for x in rep],
                                     oof_probs(rep, spec.cover_feats, c, coverage=True))
                    for c in C_GRID}
    spec = replace(spec, c=float(min(c_scores, key=lambda k: (c_scores[k], float(k)))),
                   cover_c=float(min(cover_scores,
                                     key=lambda k: (cover_scores[k], float(k)))))
    base = scores(out_of_fold(rep, spec)[2])["right_shown"]
    gains, changes, keep = {}, {}, {}
    for f in fields(DraftRules):
        off = replace(rules, **{f.name: False})
        gains[f.name] = base - scores(out_of_fold(rep_for(off), spec)[2])["right_shown"]
        changes[f.name] = sum(x.answer != y.answer or x.shown != y.shown
                              for x, y in zip(rep, rep_for(off), strict=True))
        keep[f.name] = gains[f.name] >= RULE_GAIN
    kept = DraftRules(**keep)
    rep = rep_for(kept)
    probs, covers, oof_rows, folds = out_of_fold(rep, spec)
    model = fitted(rep, spec)
    check = []
    if check_rows:
        rp = replay(check_rows, kept)
        check = outcomes(rp, _probs(model, rp), _covers(model, rp), model)
    return FitResult(model, kept, spec, oof_rows, probs, covers, rep, folds, check, c_scores,
                     cover_scores, gains, changes)


def curve(rep: Sequence[Replayed], probs: np.ndarray, covers: np.ndarray, low: float
          ) -> list[dict]:
    """At every threshold t: confident precision and right confident answers with t as
    t_high on P(right) (over the drafts ``low`` lets through); out-of-corpus questions
    and right drafts refused with t as t_low on P(covered)."""
    shown = np.array([x.shown for x in rep])
    right = np.array([x.correct for x in rep])
    ans = np.array([bool(x.row["answerable"]) for x in rep])
    out = np.array([not covered(x) for x in rep])
    pts = []
    for t in GRID[::2]:
        conf = shown & (probs >= t) & (covers >= low)
        refused = ~shown | (covers < t)
        pts.append({"t": float(t),
                    "confident_precision": float(right[conf].mean()) if conf.any() else None,
                    "right_confident": float((right & conf)[ans].mean()),
                    "ooc_refused": float(refused[out].mean()) if out.any() else None,
                    "right_drafts_refused": float(refused[right].mean()) if right.any()
                    else None})
    return pts
