"""Verification of answer sentences against numbered evidence (synthetic text)."""

from rag.grounding.verify import (
    flip_conflict,
    polarity_conflict,
    render,
    split_answer,
    support,
    verify_answer,
)
from rag.types import Evidence, SentenceSupport

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


def test_polarity_is_read_against_the_question_s_own():
    # a negated question is answered yes by negated evidence
    q = "Is it true that the ministry never set up the flood agency?"
    assert not polarity_conflict("Yes, the ministry never set up the flood agency.", q,
                                 ["The ministry never set up the flood agency."])
    assert polarity_conflict("Yes, the ministry set it up.", q,
                             ["The ministry set up the flood agency in May."])
    q = "Did the ministry fail to open the flood agency?"
    assert not polarity_conflict("Yes, it never opened.", q, ["The agency never opened."])
    # a negation inside parentheses negates only the aside
    q = "Do board members get free parking?"
    assert not polarity_conflict("Yes, they park free.", q,
                                 ["Board members park free (but not at weekends)."])
    # a "No" over a wrong premise (another name in the same words) stands
    q = "Does Oskar Lind lead the Water Board?"
    out = verify_answer("No. Hana Ruiz leads the Water Board [3].", q, EV, yes_no=True)
    assert out[0].supported and out[0].text.startswith("No, Hana Ruiz leads")


def test_a_yes_against_a_denial_turns_into_a_quoted_no():
    q = "Did the ministry confirm the flood agency?"
    out = verify_answer("Yes, the ministry confirmed plans for a flood agency [1].", q, EV,
                        yes_no=True)
    assert out[0].conflict and not out[0].supported
    flipped = flip_conflict(EV, out)
    assert flipped.quote and flipped.prefix == "No:" and flipped.citations == [1]


def test_a_sentence_is_checked_only_against_the_evidence_it_cites():
    out = verify_answer("Hana Ruiz leads the Water Board [3]. Lind resigned [2].",
                        "Who leads the Water Board?", EV)
    assert out[0].supported and out[0].citations == [3]
    assert not out[1].supported and out[1].citations == []
    # the right words with a wrong number, or with none, are not supported
    wrong = verify_answer("Hana Ruiz leads the Water Board [1].", "Who leads it?", EV)
    bare = verify_answer("The agency would employ up to 300 people.", "How many?", EV)
    assert not wrong[0].supported and not bare[0].supported


def test_unneeded_citation_is_dropped():
    out = verify_answer("The ministry has denied plans for a flood agency [1][3].", "Did it?",
                        EV)
    assert out[0].citations == [1]


def test_render_renumbers_by_first_use_and_skips_flagged():
    sents = [SentenceSupport("Ruiz leads the Water Board.", [3], True, 1.0),
             SentenceSupport("Invented.", [], False, 0.0),
             SentenceSupport("It was denied.", [1], True, 1.0, quote=True)]
    text, cites, kept = render(sents, EV)
    assert text == "Ruiz leads the Water Board [1]. \u201cIt was denied.\u201d [2]"
    assert [(c.n, c.doc, c.start) for c in cites] == [(1, "b.txt", 0), (2, "a.txt", 0)]
    assert [s.citations for s in kept] == [[1], [2]]
