import pytest

from eval.calibrate import fit_threshold, held_out, rates

A = [(0.9, True), (0.8, True), (0.7, True), (0.3, False), (0.5, False)]
B = [(0.6, True), (0.65, True), (0.4, False), (0.75, False)]


def test_rates_of_a_threshold_on_a_set():
    r = rates(B, 0.62)
    assert r["false_refusal"] == 0.5 and r["refused_unanswerable"] == 0.5


def test_each_set_is_scored_with_the_threshold_fitted_on_the_others():
    out = held_out({"a": A, "b": B}, budget=0.0)
    assert out["b"]["threshold"] == fit_threshold(A, 0.0)["threshold"] == 0.7
    assert out["b"]["false_refusal"] == 1.0  # B's answerable scores are all below 0.7
    assert out["a"]["threshold"] == pytest.approx(0.6)
    assert out["a"]["refused_unanswerable"] == 1.0 and out["a"]["false_refusal"] == 0.0
