from rag.relevance import (
    answer_kind,
    has_kind,
    inverted,
    relevance_problem,
    swapped_entity,
)

CEO = ("CEO of the NHS Digital (NHSD), Simon Bolton stressed the importance of working "
       "relationships between NHS England and NHSX, during a board meeting on 21 July.")
CHAIR = "The review is being led by NHSD chair, Laura Wade-Gery with consultants McKinsey."
TOOK = "Bolton was previously at Test and Trace, and took over from Sarah Wilkinson in 2020."


def test_answer_kind_from_the_wh_word():
    assert answer_kind("Who chairs NHSX?") == "name"
    assert answer_kind("Whose budgets fund it?") == "name"
    assert answer_kind("How many employees lost their jobs?") == "number"
    assert answer_kind("When did he take over?") == "date"
    assert answer_kind("In what year was it set up?") == "date"
    assert answer_kind("How long is the track record?") == "duration"
    assert answer_kind("Where was it located?") == "name"
    assert answer_kind("Which list did they develop?") is None
    assert answer_kind("What was the name of Bohemond's nephew?") == "name"
    assert answer_kind("What was the name change about?") is None


def test_the_kind_must_be_new_to_the_question():
    assert has_kind("Simon Bolton [1].", "name", "Who is the CEO?")
    assert not has_kind("The CEO of NHS Digital leads it.", "name",
                        "Who is the CEO of NHS Digital?")
    assert has_kind("158 employees lost their jobs.", "number", "How many employees?")
    assert has_kind("Up to three hundred people.", "number", "How many people?")
    assert not has_kind("In 2018 it saw job losses.", "number", "How many jobs in 2018?")
    assert has_kind("It happened in June 2020.", "date", "When did it happen?")
    assert not has_kind("He works with NHS leaders.", "date", "When did he start?")
    assert has_kind("two decades' worth", "duration", "How long is the record?")


def test_a_name_first_in_a_sentence_counts_when_the_evidence_names_it():
    assert has_kind("Bolton took over.", "name", "Who took over?", context=CEO)
    assert not has_kind("Stating that it could be better.", "name", "Who said it?", context=CEO)


def test_who_verb_x_is_not_answered_by_a_sentence_about_x():
    q = "Who replaced Simon Bolton as chief executive?"
    assert inverted(q, "Simon Bolton took over from Sarah Wilkinson.")
    assert inverted(q, "Bolton was previously at Test and Trace.")
    assert not inverted(q, "Sarah Wilkinson replaced Simon Bolton.")
    # "Who did X ..." asks for the object: a sentence about X is the right shape
    assert not inverted("Who did Simon Bolton take over from?", "Simon Bolton took over from "
                        "Sarah Wilkinson.")


def test_a_role_paired_with_another_name_is_a_swapped_entity():
    assert swapped_entity("Who chairs NHSX?", "Laura Wade-Gery", [CHAIR])
    assert not swapped_entity("Who chairs NHSD?", "Laura Wade-Gery", [CHAIR])
    # the answer's own name next to the role, and names across a comma, do not count
    assert not swapped_entity("In which month was the board meeting of NHS Digital?", "July",
                              [CEO])


def test_a_role_abbreviation_is_a_role_not_a_name():
    nhsd_ceo = "-Simon Bolton, NHSD CEO"
    # "CEO" pairs with NHSX in the question and only with NHSD and NHS in the evidence
    assert swapped_entity("Who is the CEO of NHSX?", "Simon Bolton, NHSD CEO", [CEO, nhsd_ceo])
    assert not swapped_entity("Who is the CEO of NHS Digital?", "Simon Bolton", [CEO, nhsd_ceo])
    # a quote gives the CEO of NHS Digital, even if it names NHSX elsewhere
    assert relevance_problem("Who is the CEO of NHSX?", CEO, [CEO], quote=True) == "entity"
    assert relevance_problem("Who is the CEO of NHS Digital?", CEO, [CEO], quote=True) == ""
    # the names beside a role in a quote may be its answer; only the owner counts
    assert relevance_problem("Who was Bohemond's nephew?", "Bohemond of Taranto and his nephew "
                             "Tancred joined them.", [], quote=True) == ""
    # a sentence whose only capitalised word is the role holds no name
    assert not has_kind("The CEO said so.", "name", "Who said so?", context=CEO)


def test_relevance_problem_names_the_check_that_objects():
    assert relevance_problem("How many staff lost jobs?", "Bolton took over.", [TOOK]) == "type"
    assert relevance_problem("Who replaced Simon Bolton?", "Simon Bolton took over from Sarah "
                             "Wilkinson.", [TOOK]) == "inverted"
    assert relevance_problem("Who chairs NHSX?", "Laura Wade-Gery", [CHAIR]) == "entity"
    assert relevance_problem("Who chairs NHSX?", CHAIR, [CHAIR], quote=True) == ""
    assert relevance_problem("Who did Bolton take over from?", "Sarah Wilkinson.", [TOOK]) == ""


def test_times_of_day_answer_when():
    assert has_kind("The ferry leaves at noon every day.", "date", "When does the ferry leave?")
    assert has_kind("It opens on Saturday mornings.", "date", "When does it open?")
    assert not has_kind("The ferry leaves from the pier.", "date", "When does the ferry leave?")
    assert has_kind("The library opens at nine.", "date", "When does the library open?")
    assert has_kind("It closes on Sundays.", "date", "When does the library close?")


def test_a_passive_sentence_is_not_an_inverted_relation():
    q = "Who founded the Lantern Festival?"
    assert not inverted(q, "The Lantern Festival was founded by the glassblower Mirela Tovey.")
    assert inverted(q, "The Lantern Festival founded the glass museum in 1871.")
