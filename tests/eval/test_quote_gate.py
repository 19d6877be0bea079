from eval.gold import GoldItem
from eval.quote_gate import Declined, fitted_gate, sweep
from rag.types import Evidence


def _ev(text: str, lexical: float) -> list[Evidence]:
    return [Evidence(1, "a.txt", "A", 0, len(text), text, 0.6, lexical)]


CASES = [
    Declined(GoldItem("a1", "When did the Siege of Antioch take place?", ["1097"], True),
             _ev("After the successful Siege of Antioch in 1097, Bohemond moved on.", 0.46)),
    Declined(GoldItem("u1", "When did Tancred lay siege to Antioch?", [], False),
             _ev("Tancred joined the siege of Antioch with his uncle in 1098.", 0.37)),
]


def test_sweep_counts_quotes_per_gate():
    rows = {r["gate"]: r for r in sweep(CASES, [0.5, 0.4, 0.35])}
    assert rows[0.5] == {"gate": 0.5, "unanswerable_quoted": 0, "answerable_right": 0}
    assert rows[0.4] == {"gate": 0.4, "unanswerable_quoted": 0, "answerable_right": 1}
    assert rows[0.35] == {"gate": 0.35, "unanswerable_quoted": 1, "answerable_right": 1}


def test_the_fitted_gate_is_the_lowest_that_quotes_no_new_unanswerable_question():
    rows = sweep(CASES, [0.5, 0.45, 0.4, 0.35, 0.3])
    assert fitted_gate({"a": rows}) == 0.4
    # another set where 0.45 already quotes one more unanswerable question holds it at 0.5
    other = [{"gate": g, "unanswerable_quoted": 0 if g == 0.5 else 1, "answerable_right": 0}
             for g in (0.5, 0.45, 0.4, 0.35, 0.3)]
    assert fitted_gate({"a": rows, "b": other}) == 0.5
