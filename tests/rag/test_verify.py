from rag.types import Evidence, SentenceSupport
from rag.verify import polarity_conflict, render, split_answer, support, verify_answer

EV = [
    Evidence(1, "a.txt", "A", 0, 40, "The DHSC has denied plans for a taskforce.", 0.9, 0.5),
    Evidence(2, "a.txt", "A", 50, 90, "The taskforce would employ up to 300 people.", 0.8, 0.5),
    Evidence(3, "b.txt", "B", 0, 30, "Simon Bolton leads NHS Digital.", 0.7, 0.5),
]


def test_split_answer_keeps_markers_with_their_sentence():
    assert split_answer("No, it was denied. [1] It had 300 staff [2][3].") == [
        ("No, it was denied.", [1]), ("It had 300 staff.", [2, 3])]
    assert split_answer("Bolton leads it [3, 1]") == [("Bolton leads it", [3, 1])]


def test_support_counts_content_words_and_numbers():
    assert support("The DHSC denied the taskforce", [EV[0].text]) == 1.0
    assert support("The taskforce would employ 400 people", [EV[1].text]) == 0.0
    assert support("Matt Hancock confirmed it", [EV[0].text]) == 0.0


def test_polarity_conflict_on_yes_against_negating_evidence():
    q = "Did DHSC confirm the taskforce?"
    assert polarity_conflict("Yes, DHSC confirmed the taskforce.", q, [EV[0].text])
    assert not polarity_conflict("No, the DHSC denied it.", q, [EV[0].text])


def test_wrong_citation_is_repaired_and_unsupported_sentence_flagged():
    out = verify_answer("Simon Bolton leads NHS Digital [1]. Hancock resigned [2].",
                        "Who leads NHS Digital?", EV)
    assert out[0].supported and out[0].citations == [3] and out[0].repaired
    assert not out[1].supported and out[1].citations == []


def test_missing_citation_is_added():
    out = verify_answer("The taskforce would employ up to 300 people.", "How many?", EV)
    assert out[0].supported and out[0].citations == [2] and out[0].repaired


def test_unneeded_citation_is_dropped():
    out = verify_answer("The DHSC has denied plans for a taskforce [1][3].", "Did it?", EV)
    assert out[0].citations == [1]


def test_citation_to_evidence_unrelated_to_the_question_is_not_accepted():
    ev = EV + [Evidence(4, "b.txt", "B", 40, 70, "Bolton said it could be better.", 0.2, 0.1)]
    out = verify_answer("Bolton said it could be better [4].", "When did the taskforce start?",
                        ev)
    assert not out[0].supported and out[0].citations == []


def test_render_renumbers_by_first_use_and_skips_flagged():
    sents = [SentenceSupport("Bolton leads NHS Digital.", [3], True, 1.0),
             SentenceSupport("Invented.", [], False, 0.0),
             SentenceSupport("It was denied.", [1], True, 1.0, quote=True)]
    text, cites, kept = render(sents, EV)
    assert text == "Bolton leads NHS Digital [1]. \u201cIt was denied.\u201d [2]"
    assert [(c.n, c.doc, c.start) for c in cites] == [(1, "b.txt", 0), (2, "a.txt", 0)]
    assert [s.citations for s in kept] == [[1], [2]]
