"""Fitting the decision on cached signals: grouped cross-validation, thresholds, rules,
the written model and report. Synthetic rows stand in for a model pass."""

import json
import random
from dataclasses import asdict

import numpy as np
import pytest

from eval.decision import fit, out_of_fold, replay, split_groups, threshold_for, write
from eval.gold import GoldItem
from eval.signals import per_group_sample
from rag.decision import DecisionModel
from rag.draft import DraftRules
from rag.types import Evidence

FACTS = [("Who designed the {x} bridge?", "The {x} bridge was designed by Nora Vale in 1910.",
          "Nora Vale"),
         ("When did the {x} mill close?", "The {x} mill closed in 1987 after a long strike.",
          "1987"),
         ("How many arches does the {x} viaduct have?",
          "The {x} viaduct has 21 arches of local stone.", "21")]
UNANSWERABLE = "Who painted the {x} ferry?"


def make_row(i, group, rng):
    x = f"{group}{i}"
    q, sent, gold = FACTS[i % len(FACTS)]
    answerable = i % 2 == 0
    text = sent.format(x=x)
    ev = [Evidence(1, f"{group}.txt", group, 0, len(text), text, 0.8, lexical=0.7)]
    if answerable:
        p = rng.uniform(0.0, 0.6)
        reply = f"{gold} [1]." if rng.random() < 0.85 else "[1]"
        question = q.format(x=x)
    else:
        p = rng.uniform(0.4, 1.0)
        reply = "The ferry was painted by Nora Vale [1]." if rng.random() < 0.5 else "[1]"
        question = UNANSWERABLE.format(x=x)
    scored = [{"doc": e.doc, "title": e.title, "start": e.start, "end": e.end,
               "text": e.text, "dense": 0.6, "lexical": e.lexical, "score": e.score,
               "passage_rank": 1} for e in ev]
    return {"id": f"{group}-{i}", "group": group, "question": question,
            "answerable": answerable, "answers": [gold] if answerable else [],
            "gold_spans": [[f"{group}.txt", 0, len(text)]] if answerable else [],
            "scored": scored, "evidence": [asdict(e) for e in ev], "reply": reply,
            "p_refusal": p, "suppressed": True, "logprobs": [-0.2, -0.4], "type": ""}


@pytest.fixture(scope="module")
def rows():
    rng = random.Random(7)
    return [make_row(i, g, rng) for g in ("alpha", "beta", "gamma", "delta", "omega")
            for i in range(30)]


def test_threshold_refuses_the_target_share_of_unanswerable_questions(rows):
    rep = replay(rows, DraftRules())
    probs = np.array([1 - r["p_refusal"] for r in rows])
    t = threshold_for(probs, rep, 0.8)
    una = [p for p, r in zip(probs, rows, strict=True) if not r["answerable"]]
    assert np.mean([p < t for p in una]) >= 0.8


def test_each_article_is_scored_by_a_model_that_never_saw_it(rows):
    rep = replay(rows, DraftRules())
    probs, out, folds = out_of_fold(rep, ("refusal_logit", "support"), 1.0, 0.8)
    assert set(folds) == {"alpha", "beta", "gamma", "delta", "omega"}
    assert all(o["group"] == r["group"] for o, r in zip(out, rows, strict=True))
    # the signal separates: answerable questions get higher probabilities out of fold
    ans = np.mean([p for p, r in zip(probs, rows, strict=True) if r["answerable"]])
    una = np.mean([p for p, r in zip(probs, rows, strict=True) if not r["answerable"]])
    assert ans > una


def test_fit_holds_out_articles_and_writes_model_and_report(rows, tmp_path):
    fit_groups, held = split_groups(sorted({r["group"] for r in rows}), 1, seed=0)
    assert len(held) == 1 and held[0] not in fit_groups
    result = fit(rows, held, target=0.8)
    assert result.holdout["pooled"]["n"] == 30 and result.oof["pooled"]["n"] == 120
    assert set(result.rule_gains) == set(result.rule_check_gains) == {"yes_no"}
    assert 0 <= result.rule_changes["yes_no"] <= 120
    assert 0.0 <= result.model.threshold <= 1.0
    s = result.oof["across_articles"]["refusal_accuracy"]
    assert s["lo"] <= s["mean"] <= s["hi"]
    path = tmp_path / "decision.json"
    write(result, tmp_path / "report", path, {"holdout_groups": held, "fit_groups": fit_groups,
                                              "n_fit_rows": 120})
    model = DecisionModel.from_dict(json.loads(path.read_text()))
    assert model.features == result.model.features and model.meta["folds"]
    report = (tmp_path / "report" / "report.md").read_text()
    assert "Out of fold" in report and held[0] in report
    assert (tmp_path / "report" / "curve.png").stat().st_size > 1000


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
