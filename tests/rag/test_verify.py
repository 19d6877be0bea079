"""Verification of answer sentences against numbered evidence (synthetic text)."""

from rag.types import Evidence, SentenceSupport
from rag.verify import (
    VerifyConfig,
    flip_conflict,
    on_topic,
    polarity_conflict,
    render,
    short_answer,
    split_answer,
    support,
    verify_answer,
)

EV = [
    Evidence(1, "a.txt", "A", 0, 40, "The ministry has denied plans for a flood agency.", 0.9,
             0.5),
    Evidence(2, "a.txt", "A", 50, 90, "The agency would employ up to 300 people.", 0.8, 0.5),
    Evidence(3, "b.txt", "B", 0, 30, "Hana Ruiz leads the Water Board.", 0.7, 0.5),
]


def test_split_answer_keeps_markers_with_their_sentence():
    assert split_answer("No, it was denied. [1] It had 300 staff [2][3].") == [
        ("No, it was denied.", [1]), ("It had 300 staff.", [2, 3])]
    assert split_answer("Ruiz leads it [3, 1]") == [("Ruiz leads it", [3, 1])]
    assert split_answer("[2]") == []


def test_support_counts_content_words_and_numbers():
    assert support("The ministry denied the flood agency", [EV[0].text]) == 1.0
    assert support("The agency would employ 400 people", [EV[1].text]) == 0.0
    assert support("Oskar Lind confirmed it", [EV[0].text]) == 0.0


def test_polarity_conflict_on_yes_against_negating_evidence():
    q = "Did the ministry confirm the flood agency?"
    assert polarity_conflict("Yes, the ministry confirmed the flood agency.", q, [EV[0].text])
    assert not polarity_conflict("No, the ministry denied it.", q, [EV[0].text])


def test_a_yes_against_a_denial_turns_into_a_quoted_no():
    q = "Did the ministry confirm the flood agency?"
    out = verify_answer("Yes, the ministry confirmed plans for a flood agency [1].", q, EV,
                        yes_no=True)
    assert out[0].conflict and not out[0].supported
    flipped = flip_conflict(EV, out)
    assert flipped.quote and flipped.prefix == "No:" and flipped.citations == [1]


def test_wrong_citation_is_repaired_and_unsupported_sentence_flagged():
    out = verify_answer("Hana Ruiz leads the Water Board [1]. Lind resigned [2].",
                        "Who leads the Water Board?", EV)
    assert out[0].supported and out[0].citations == [3] and out[0].repaired
    assert not out[1].supported and out[1].citations == []


def test_repair_can_be_switched_off():
    out = verify_answer("Hana Ruiz leads the Water Board [1].", "Who leads the Water Board?",
                        EV, VerifyConfig(repair=False, short_answer=False))
    assert not out[0].supported


def test_missing_citation_is_added():
    out = verify_answer("The agency would employ up to 300 people.", "How many?", EV)
    assert out[0].supported and out[0].citations == [2] and out[0].repaired


def test_unneeded_citation_is_dropped():
    out = verify_answer("The ministry has denied plans for a flood agency [1][3].", "Did it?",
                        EV)
    assert out[0].citations == [1]


def test_citation_to_evidence_unrelated_to_the_question_is_not_accepted():
    ev = EV + [Evidence(4, "b.txt", "B", 40, 70, "Ruiz said it could be better.", 0.2, 0.1)]
    out = verify_answer("Ruiz said it could be better [4].", "When did the agency start?", ev)
    assert not out[0].supported and out[0].citations == []
    loose = verify_answer("Ruiz said it could be better [4].", "When did the agency start?",
                          ev, VerifyConfig(relevant_only=False))
    assert loose[0].supported


def test_render_renumbers_by_first_use_and_skips_flagged():
    sents = [SentenceSupport("Ruiz leads the Water Board.", [3], True, 1.0),
             SentenceSupport("Invented.", [], False, 0.0),
             SentenceSupport("It was denied.", [1], True, 1.0, quote=True)]
    text, cites, kept = render(sents, EV)
    assert text == "Ruiz leads the Water Board [1]. \u201cIt was denied.\u201d [2]"
    assert [(c.n, c.doc, c.start) for c in cites] == [(1, "b.txt", 0), (2, "a.txt", 0)]
    assert [s.citations for s in kept] == [[1], [2]]


MILL = [
    Evidence(1, "a.txt", "A", 0, 60, "In 1987 the Dunmore mill closed, and 212 workers lost "
             "their jobs.", 0.7, 0.55),
    Evidence(2, "a.txt", "A", 70, 90, "The mill was founded by Oskar Lind.", 0.5, 0.4),
]


def test_a_supported_sentence_that_does_not_answer_is_flagged():
    q = "How many workers lost their jobs at the Dunmore mill?"
    out = on_topic(verify_answer("Oskar Lind founded the mill [2].", q, MILL), q, MILL)
    assert not out[0].supported and out[0].problem == "type" and out[0].citations == [2]
    off = on_topic(verify_answer("Oskar Lind founded the mill [2].", q, MILL), q, MILL,
                   checks=())
    assert off[0].supported


def test_an_unsupported_sentence_keeps_its_supported_new_words_as_a_short_answer():
    q = "Who is credited with founding the Dunmore paper mill in 1820?"
    said = "Oskar Lind is credited with founding the Dunmore paper mill in 1820"
    assert not verify_answer(said + " [2].", q, MILL, VerifyConfig(short_answer=False)
                             )[0].supported
    got = short_answer(said, q, MILL)
    assert got is not None and got.text == "Oskar Lind" and got.citations == [2]
    assert short_answer(said, q, MILL, max_words=1) is None
