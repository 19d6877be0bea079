"""Metrics on hand-made cases."""

from __future__ import annotations

import pytest

from eval import metrics as M

DOC = "Alpha beta. The DHSC denied plans for a taskforce of 300 people. Gamma delta."


def test_normalisation_and_answer_scores():
    assert M.normalize_answer("The  Shielded-Patient List! [1]") == "shielded patient list"
    assert M.exact_match("the Org2.", ["Org2"]) == 1.0
    assert M.contains("It was called Org2 [1].", ["Org2"]) == 1.0
    assert M.contains("Org20", ["Org2"]) == 0.0
    assert M.token_f1("Simon Bolton", ["Bolton"]) == pytest.approx(2 / 3)
    assert M.token_f1("x", ["y"]) == 0.0


@pytest.mark.parametrize("text,pol", [
    ("Yes, he did [1].", "yes"), ("No. The DHSC denied it.", "no"),
    ("The DHSC denied the speculation [1].", "no"), ("There were no plans.", "no"),
    ("It doesn't apply.", "no"), ("Hancock commissioned it.", "yes"), ("", None)])
def test_polarity(text, pol):
    assert M.answer_polarity(text) == pol


def test_score_answer_yes_no_contradiction_and_refusal():
    wrong = M.score_answer("Yes, the DHSC confirmed it [1].", ["no", "DHSC denied it"], False)
    assert wrong["yes_no"] and not wrong["correct"] and wrong["contradiction"]
    right = M.score_answer("The DHSC denied it [1].", ["no"], False)
    assert right["correct"] and not right["contradiction"]
    refused = M.score_answer("Org2", ["Org2"], True)
    assert not refused["correct"] and refused["f1"] == 0.0
    assert M.score_answer("It was Laura Wade-Gery.", ["Laura Wade-Gery"], False)["correct"]
    assert not M.score_answer("Matt Hancock", ["Laura Wade-Gery"], False)["correct"]


def test_a_gold_that_lists_names_needs_every_name():
    gold = ["Simon Bolton and Matthew Gould"]
    # token F1 is 0.6 here, but the second chief executive is wrong
    assert not M.score_answer("Simon Bolton and Sarah Wilkinson [1].", gold, False)["correct"]
    assert M.score_answer("Simon Bolton [1] and Matthew Gould [2].", gold, False)["correct"]
    assert M.list_items("Denmark, Iceland and Norway") == ["denmark", "iceland", "norway"]
    assert M.score_answer("NHSX and NHSD budgets [1].", ["NHSX and NHS Digital", "NHSX and NHSD"],
                          False)["correct"]
    # "and" inside one name or a phrase is not a list
    assert M.list_items("chief information officer of NHS Test and Trace") == [
        "chief information officer of nhs test and trace"]
    assert M.list_items("10th and 11th centuries") == ["10th and 11th centuries"]
    assert M.score_answer("Chief information officer of NHS Test.", [
        "chief information officer of NHS Test and Trace"], False)["correct"]


def test_retrieval_recall_and_mrr():
    ev_text = "denied plans for a taskforce"
    spans = M.locate(DOC, ev_text)
    assert spans == [(DOC.find(ev_text), DOC.find(ev_text) + len(ev_text))]
    other = ("b.txt", M.locate("zz Gamma", "Gamma"))
    hit = {"doc": "a.txt", "start": 0, "end": 70}
    cut = {"doc": "a.txt", "start": 0, "end": spans[0][0] + 5}  # evidence only partly inside
    wrong_doc = {"doc": "b.txt", "start": 0, "end": 8}
    one = M.retrieval_scores([cut, hit], [("a.txt", spans)], k=5)
    assert one == {"recall_all": 1.0, "recall_any": 1.0, "rr": 0.5}
    assert M.retrieval_scores([cut, hit], [("a.txt", spans)], k=1)["recall_all"] == 0.0
    multi = M.retrieval_scores([hit], [("a.txt", spans), other], k=5)
    assert multi["recall_all"] == 0.0 and multi["recall_any"] == 1.0 and multi["rr"] == 1.0
    both = M.retrieval_scores([wrong_doc, hit], [("a.txt", spans), other], k=5)
    assert both["recall_all"] == 1.0 and both["rr"] == 1.0


def test_split_cited_keeps_markers_with_sentences():
    parts = M.split_cited("Bolton leads NHSD [1]. He replaced Wilkinson. [2][3] Done.")
    assert parts == [("Bolton leads NHSD.", [1]), ("He replaced Wilkinson.", [2, 3]),
                     ("Done.", [])]


def test_citation_recall_and_precision_alce():
    cited = {1: "Simon Bolton runs NHS Digital as chief executive.",
             2: "The weather was sunny in July.",
             3: "The taskforce would employ up to 300 people."}
    # sentence 1 supported by [1]; [2] irrelevant (alone no support, [1] suffices)
    # sentence 2 unsupported: wrong number; sentence 3 has no citation
    ans = ("Simon Bolton runs NHS Digital as chief executive [1][2]. "
           "The taskforce would employ up to 500 people [3]. NHSX was set up in 2019.")
    s = M.citation_scores(ans, cited)
    assert s["sentences"] == 3 and s["supported"] == 1
    assert s["citation_recall"] == pytest.approx(1 / 3)
    assert s["citations"] == 3 and s["relevant"] == 1
    assert s["citation_precision"] == pytest.approx(1 / 3)


def test_citations_needed_jointly_are_both_relevant():
    cited = {1: "Bolton took over from Sarah Wilkinson.", 2: "That was in June 2020."}
    s = M.citation_scores("Bolton took over from Sarah Wilkinson in June 2020 [1][2].", cited)
    assert s["citation_recall"] == 1.0 and s["citation_precision"] == 1.0


def test_citation_with_wrong_span_is_invalid():
    docs = {"a.txt": DOC}
    start = DOC.find("The DHSC")
    good = {"doc": "a.txt", "start": start, "end": start + 8, "text": "The DHSC"}
    shifted = dict(good, start=start + 1, end=start + 9)  # same text, wrong span
    missing = dict(good, doc="nope.txt")
    v = M.citation_validity([good, shifted, missing], docs)
    assert v == {"citations": 3, "valid": 1, "citation_validity": pytest.approx(1 / 3)}
    assert M.citation_validity([], docs)["citation_validity"] is None


def test_percentile_and_mean():
    assert M.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert M.percentile([1.0, 2.0], 95) == pytest.approx(1.95)
    assert M.percentile([], 50) is None
    assert M.mean([1, None, 0]) == 0.5 and M.mean([]) is None
