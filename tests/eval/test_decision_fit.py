"""Fitting the graded decision on cached signals: grouped cross-validation, two
thresholds, rules, the written model and report. Synthetic rows stand in for a model pass."""

import json
import random
from dataclasses import asdict, replace

import numpy as np
import pytest

from eval.decision.data import corpus_without, out_of_corpus
from eval.decision.fit import (
    Spec,
    fit,
    fitted,
    grade_of,
    out_of_fold,
    replay,
    scores,
    thresholds,
)
from eval.decision.report import write
from eval.decision.signals import per_group_sample
from eval.gold import GoldItem
from rag.grounding.decision import Coverage, DecisionModel
from rag.grounding.draft import DraftRules
from rag.types import Evidence

FACTS = [("Who designed the {x} bridge?", "The {x} bridge was designed by Nora Vale in 1910.",
          "Nora Vale"),
         ("When did the {x} mill close?", "The {x} mill closed in 1987 after a long strike.",
          "1987"),
         ("How many arches does the {x} viaduct have?",
          "The {x} viaduct has 21 arches of local stone.", "21")]
UNANSWERABLE = "Who painted the {x} ferry?"


def make_row(i, group, rng, kind="squad"):
    x = f"{group}{i}"
    q, sent, gold = FACTS[i % len(FACTS)]
    answerable = kind != "out_of_corpus" and i % 2 == 0
    text = sent.format(x=x)
    lexical = 0.1 if kind == "out_of_corpus" else 0.7
    ev = [Evidence(1, f"{group}.txt", group, 0, len(text), text, 0.8, lexical=lexical)]
    if answerable:
        p = rng.uniform(0.0, 0.6)
        reply = f"{gold} [1]." if rng.random() < 0.85 else "[1]"
        question = q.format(x=x)
    else:
        p = rng.uniform(0.4, 1.0) if kind == "squad" else rng.uniform(0.8, 1.0)
        reply = "The ferry was painted by Nora Vale [1]." if rng.random() < 0.5 else "[1]"
        question = UNANSWERABLE.format(x=x)
    scored = [{"doc": e.doc, "title": e.title, "start": e.start, "end": e.end,
               "text": e.text, "dense": 0.6, "lexical": e.lexical, "score": e.score,
               "passage_rank": 1} for e in ev]
    return {"id": f"{kind}-{group}-{i}", "group": group, "set": kind, "question": question,
            "answerable": answerable, "answers": [gold] if answerable else [],
            "gold_spans": [[f"{group}.txt", 0, len(text)]] if answerable else [],
            "scored": scored, "evidence": [asdict(e) for e in ev], "reply": reply,
            "p_refusal": p, "suppressed": True, "logprobs": [-0.2, -0.4], "type": ""}


GROUPS = ("alpha", "beta", "gamma", "delta", "omega")
FEATS = ("refusal_logit", "support", "best_lexical")
SPEC = Spec(feats=FEATS, c=1.0, cover_feats=("best_lexical", "refusal_logit"), cover_c=1.0,
            precision=0.8, ooc=0.9)


@pytest.fixture(scope="module")
def rows():
    rng = random.Random(7)
    return [make_row(i, g, rng, kind) for g in GROUPS
            for kind, n in (("squad", 30), ("out_of_corpus", 10)) for i in range(n)]


def test_thresholds_meet_the_precision_and_out_of_corpus_targets(rows):
    rep = replay(rows, DraftRules())
    probs = np.array([1 - r["p_refusal"] for r in rows])
    covers = np.array([r["evidence"][0]["lexical"] + 0.1 * (1 - r["p_refusal"]) for r in rows])
    high, high_yn, low = thresholds(probs, covers, rep, precision=0.8, ooc=0.9)
    assert high_yn > 1.0  # no yes/no question among these rows: none confident
    conf = [x.correct for p, x in zip(probs, rep, strict=True) if x.shown and p >= high]
    assert len(conf) >= 10 and np.mean(conf) >= 0.8
    ooc = [c for c, x in zip(covers, rep, strict=True) if x.set == "out_of_corpus"]
    assert np.mean([c < low for c in ooc]) >= 0.9
    # the lowest such thresholds: one step lower misses its target
    below = [x.correct for p, x in zip(probs, rep, strict=True) if x.shown and p >= high - 0.005]
    assert high > 0.0 and np.mean(below) < 0.8
    assert low > 0.0 and np.mean([c < low - 0.005 for c in ooc]) < 0.9
    # the in-corpus questions' coverage is above the refusal line
    assert np.mean([c >= low for c, x in zip(covers, rep, strict=True)
                    if x.set == "squad"]) == 1.0
    m = DecisionModel(FEATS, (0.0,) * 3, (1.0,) * 3, (0.0,) * 3, 0.0, threshold=high,
                      low=low, generator="g", yes_no_threshold=0.3,
                      coverage=Coverage(("best_lexical",), (0.0,), (1.0,), (1.0,), 0.0))
    x = next(x for x in rep if x.shown)
    assert grade_of(x, 0.99, 0.99, m) == "answer"
    assert grade_of(x, 0.0, 0.99, m) == "caution"
    assert grade_of(x, 0.99, 0.0, m) == "refused"
    assert m.grade(0.99, False, 0.99) == "refused"
    # a yes/no question is held to its own threshold
    m = replace(m, threshold=0.8)
    assert m.grade(0.4, True, 0.99, yes_no=True) == "answer"
    assert m.grade(0.4, True, 0.99) == "caution"


def test_each_article_is_scored_by_models_and_thresholds_that_never_saw_it(rows):
    rep = replay(rows, DraftRules())
    probs, covers, out, folds = out_of_fold(rep, SPEC)
    assert set(folds) == set(GROUPS)
    assert all(o["group"] == r["group"] for o, r in zip(out, rows, strict=True))
    for g, model in folds.items():  # the fold's thresholds come from the other articles
        again = fitted([x for x in rep if x.group != g], SPEC)
        assert (model.threshold, model.caution_at) == (again.threshold, again.caution_at)
        assert model.coverage == again.coverage
    ans = np.mean([p for p, r in zip(probs, rows, strict=True) if r["answerable"]])
    una = np.mean([p for p, r in zip(probs, rows, strict=True) if not r["answerable"]])
    assert ans > una
    inside = np.mean([c for c, r in zip(covers, rows, strict=True) if r["set"] == "squad"])
    outside = np.mean([c for c, r in zip(covers, rows, strict=True)
                       if r["set"] == "out_of_corpus"])
    assert inside > outside
    s = scores(out)
    assert s["n"] == len(rows) and s["refused_unanswerable"] is not None
    assert {o["grade"] for o in out} <= {"answer", "caution", "refused"}


def test_fit_writes_the_graded_model_and_its_report(rows, tmp_path):
    check = [dict(r, group="check", set="nhs") for r in rows[:20]]
    result = fit(rows, check, SPEC)
    assert set(result.rule_gains) == set(result.rule_changes) == {"yes_no"}
    assert len(result.oof_rows) == len(rows) and len(result.check_rows) == 20
    assert 0.0 <= result.model.caution_at <= result.model.threshold <= 1.0
    path = tmp_path / "decision.json"
    meta = {"n_rows": len(rows), "n_check": 20}
    summ = write(result, tmp_path / "report", path, meta)
    model = DecisionModel.from_dict(json.loads(path.read_text()))
    assert (model.threshold, model.low) == (result.model.threshold, result.model.low)
    assert model.coverage == result.model.coverage is not None
    assert model.meta["folds"] and len(meta["decision_sha256"]) == 64
    assert set(summ["out_of_fold"]["per_article"]) == set(GROUPS)
    s = summ["out_of_fold"]["across_articles"]["right_shown"]
    assert s["lo"] <= s["mean"] <= s["hi"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Out of fold" in report and "omega" in report and "NHS gold" in report
    assert (tmp_path / "report" / "curve.png").stat().st_size > 1000


def test_out_of_corpus_questions_are_another_articles_questions(tmp_path):
    items = [GoldItem(f"{g}{i}", f"q{i}?", ["a"] if i % 2 else [], bool(i % 2))
             for g in "ab" for i in range(10)]
    group = {it.id: f"{it.id[0]}.txt" for it in items}
    picked = out_of_corpus(items, group, 4, seed=0)
    assert set(picked) == {"a.txt", "b.txt"}
    for doc, qs in picked.items():
        assert len(qs) == 4 and all(not q.answerable and q.group == doc for q in qs)
        assert all(q.kind == "out_of_corpus" and q.id.startswith("ooc-") for q in qs)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (corpus / name).write_text(name)
    other = corpus_without(corpus, "a.txt")
    assert sorted(p.name for p in other.iterdir()) == ["b.txt", "c.txt"]
    assert corpus_without(corpus, "a.txt") == other


def test_samples_are_balanced_nested_and_interleaved():
    items = [GoldItem(f"{g}{i}", "q?", ["a"] if i % 2 else [], bool(i % 2))
             for g in "ab" for i in range(20)]
    group = lambda it: it.id[0]  # noqa: E731
    small = per_group_sample(items, group, 3, seed=1)
    big = per_group_sample(items, group, 5, seed=1)
    assert len(small) == 12 and {it.id for it in small} <= {it.id for it in big}
    assert [group(it) for it in small[:4]] == ["a", "a", "b", "b"]
    everything = per_group_sample(items, group, None)
    assert sorted(it.id for it in everything) == sorted(it.id for it in items)
