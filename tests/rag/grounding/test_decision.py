"""The answer-or-refuse decision: its signals, its model file and its fallback."""

import json
import math

import pytest

from rag.generate.base import Probe
from rag.grounding.decision import (
    FALLBACK,
    Coverage,
    DecisionModel,
    decision_for,
    decision_note,
)
from rag.grounding.draft import make_draft, reply_kind
from rag.grounding.signals import FEATURES, features, missing_signals
from rag.retrieve.evidence import ScoredSentence
from rag.types import Evidence

EVIDENCE = [
    Evidence(1, "a.txt", "A", 0, 60, "The bridge at Tollan was opened in 1904 by Mayor Ruth Ames.",
             0.9, lexical=0.8),
    Evidence(2, "a.txt", "A", 61, 110, "It carries a railway line and two footpaths.", 0.5,
             lexical=0.2),
]
SCORED = [ScoredSentence(e.doc, e.title, e.start, e.end, e.text, d, e.lexical, e.score, 1)
          for e, d in zip(EVIDENCE, (0.7, 0.3), strict=True)]


def signals(question, reply, p_refusal=0.3, logprobs=(-0.1, -0.5)):
    probe = Probe("NOT IN DOCUMENTS", p_refusal=p_refusal, suppressed=True,
                  logprobs=list(logprobs))
    draft = make_draft(question, EVIDENCE, reply)
    return features(question, SCORED, EVIDENCE, reply_kind(reply), probe, draft), draft


def test_every_signal_is_computed_and_finite():
    feats, draft = signals("Who opened the bridge at Tollan?", "Mayor Ruth Ames opened it [1].")
    assert set(feats) == set(FEATURES)
    assert all(isinstance(v, float) and abs(v) < 100 for v in feats.values())
    assert draft.source == "model" and feats["support"] == 1.0 and feats["cited_first"] == 1.0
    assert feats["refusal_logit"] == pytest.approx(-0.847, abs=1e-3)
    assert feats["mean_logprob"] == pytest.approx(-0.3) and feats["min_logprob"] == -0.5
    assert feats["kind_missing"] == 0.0 and feats["pointer"] == 0.0


def test_signals_tell_a_pointer_a_quote_and_a_missing_kind_apart():
    feats, draft = signals("When was the bridge at Tollan opened?", "[1]")
    assert draft.source == "pointer" and feats["pointer"] == 1.0 and feats["quoted"] == 1.0
    feats, draft = signals("How many footpaths does the bridge carry?",
                           "The bridge is painted green [2].")
    assert draft.source == "quote" and "footpaths" in draft.text
    feats, _ = signals("Who opened the bridge at Tollan?", "It carries a railway line [2].")
    assert feats["kind_missing"] == 1.0  # "who" wants a name the answer does not hold
    feats, draft = signals("Who opened the bridge?", "NOT IN DOCUMENTS")
    assert draft.source == "declined" and feats["declined"] == 1.0


def test_a_fitted_model_is_a_calibrated_logistic_regression():
    m = DecisionModel(("support", "refusal_logit"), (0.5, 0.0), (0.5, 2.0), (1.0, -2.0), 0.0,
                      threshold=0.6, generator="g")
    assert m.probability({"support": 0.5, "refusal_logit": 0.0}) == pytest.approx(0.5)
    hi = m.probability({"support": 1.0, "refusal_logit": -2.0})
    lo = m.probability({"support": 0.0, "refusal_logit": 2.0})
    assert lo < 0.5 < hi and hi == pytest.approx(1 / (1 + 2.718281828 ** -3), abs=1e-4)


def test_a_model_file_round_trips_and_is_used_only_for_its_generator(tmp_path):
    m = DecisionModel(("support",), (0.5,), (0.2,), (1.5,), -0.2, 0.4, "gen-a", {"n": 3})
    path = tmp_path / "d.json"
    path.write_text(json.dumps(m.to_dict()))
    assert decision_for("gen-a", path=path) == m
    assert decision_for("gen-b", path=path) is FALLBACK
    assert decision_for("gen-a", path=tmp_path / "missing.json") is FALLBACK


def test_the_fallback_follows_the_first_step():
    assert FALLBACK.probability({"refusal_logit": -2.0, "declined": 0.0}) > 0.5
    assert FALLBACK.probability({"refusal_logit": 2.0, "declined": 0.0}) < 0.5
    assert FALLBACK.probability({"refusal_logit": -5.0, "declined": 1.0}) == 0.0


@pytest.mark.parametrize("bad", [dict(features=("nope",), mean=(0.0,), scale=(1.0,),
                                      coef=(1.0,)),
                                 dict(features=("support",), mean=(), scale=(1.0,),
                                      coef=(1.0,)),
                                 dict(threshold=1.5)])
def test_a_broken_model_is_rejected_with_the_reason(bad):
    with pytest.raises(ValueError):
        DecisionModel(**bad)


def test_the_shipped_decision_file_is_valid():
    from rag.grounding.decision import DECISION_FILE

    if not DECISION_FILE.is_file():
        pytest.fail("rag/grounding/decision.json is missing: run rag fit-decision")
    m = DecisionModel.from_dict(json.loads(DECISION_FILE.read_text()))
    assert m.fitted and m.generator and 0 < m.caution_at <= 1 and 0 < m.threshold < 1
    assert m.coverage is not None
    meta = m.meta
    assert set(meta["folds"]) == set(meta["groups"])  # every article scored out of fold
    assert meta["metrics"]["out_of_fold"]["pooled"]["n"] == meta["n_rows"]


def test_grades_follow_both_thresholds():
    cover = Coverage(("best_lexical",), (0.5,), (0.25,), (4.0,), 0.0)
    m = DecisionModel(("support",), (0.5,), (0.5,), (2.0,), 0.0, threshold=0.8, low=0.3,
                      generator="gen-a", coverage=cover)
    sure, unsure = {"support": 1.0, "best_lexical": 0.9}, {"support": 0.2, "best_lexical": 0.9}
    elsewhere = {"support": 1.0, "best_lexical": 0.0}
    assert m.covers(sure) > 0.9 and m.covers(elsewhere) < 0.3
    assert m.grade(m.probability(sure), True, m.covers(sure)) == "answer"
    assert m.grade(m.probability(unsure), True, m.covers(unsure)) == "caution"
    # a confident draft of a question the documents do not cover is refused
    assert m.grade(m.probability(elsewhere), True, m.covers(elsewhere)) == "refused"
    assert m.grade(m.probability(sure), False, m.covers(sure)) == "refused"
    assert DecisionModel.from_dict(json.loads(json.dumps(m.to_dict()))).coverage == cover
    # a decision not fitted for its generator is never confident
    assert FALLBACK.grade(0.99, True) == "caution" and FALLBACK.grade(0.1, True) == "refused"


# ---- which decision a generator gets, and what the answer says about it ---------------
FITTED = DecisionModel(("support", "refusal_logit"), (0.5, 0.0), (0.5, 2.0), (1.0, -2.0), 0.0,
                       threshold=0.6, generator="gen-a")


def test_a_fit_holds_for_its_generator_on_its_backend_only(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(FITTED.to_dict()))
    assert FITTED.backend == "llama" and json.loads(path.read_text())["backend"] == "llama"
    assert FITTED.calibrated_for("gen-a", "llama")
    assert not FITTED.calibrated_for("gen-a", "openai")
    assert not FITTED.calibrated_for("gen-b", "llama")
    assert not FALLBACK.calibrated_for("", "llama")
    assert decision_for("gen-a", "llama", path) == FITTED
    assert decision_for("gen-a", "openai", path) is FALLBACK  # a served model
    assert decision_for("gen-a", "transformers", path) is FALLBACK
    old = {k: v for k, v in FITTED.to_dict().items() if k != "backend"}
    assert DecisionModel.from_dict(old).backend == "llama"  # fitted before it was recorded


def test_the_note_names_what_the_decision_was_not_fitted_for(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(FITTED.to_dict()))
    feats, _ = signals("Who opened the bridge at Tollan?", "Mayor Ruth Ames opened it [1].")
    assert decision_note(FITTED, "gen-a", "llama", feats, path) == ""
    served = decision_note(FALLBACK, "gen-a", "openai", feats, path)
    assert served.startswith("decision: not calibrated for this backend (fitted for gen-a "
                             "on llama, this is gen-a on openai)"), served
    assert served.endswith("the model's first-step refusal probability decided")
    other = decision_note(FALLBACK, "gen-b", "llama", feats, path)
    assert other.startswith("decision: not calibrated for this model (fitted for gen-a on "
                            "llama, this is gen-b on llama)"), other
    nothing = decision_note(FALLBACK, "gen-b", "llama", feats, tmp_path / "none.json")
    assert nothing.startswith("decision: not calibrated for this model (none is fitted for "
                              "gen-b)"), nothing


def test_no_probabilities_is_never_a_silent_even_chance():
    reply = "Mayor Ruth Ames opened it [1]."
    draft = make_draft("Who opened the bridge at Tollan?", EVIDENCE, reply)
    for probe in (None, Probe("NOT IN DOCUMENTS")):  # none, or a server that sent none
        feats = features("Who opened the bridge at Tollan?", SCORED, EVIDENCE,
                         reply_kind(reply), probe, draft)
        assert missing_signals(feats) == ["refusal_logit", "mean_logprob", "min_logprob"]
        assert all(math.isnan(feats[f]) for f in missing_signals(feats))
        # the named fallback: the reply's own choice, not 1 - sigmoid(0)
        assert FALLBACK.probability(feats) == 1.0
        assert FITTED.probability(feats) == 1.0  # a fit that needs them falls back too
        assert FALLBACK.probability(dict(feats, declined=1.0)) == 0.0
        note = decision_note(FITTED, "gen-a", "llama", feats)
        assert note == ("decision: the generator gave no probabilities, so the reply's own "
                        "choice decided (the fitted decision needs them)")
