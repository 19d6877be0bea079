"""Follow-up questions: when a question is rewritten, what the rewrite prompt holds, and
that retrieval and the verified answer use the standalone question while the earlier
turns are never evidence (a hashing embedder and scripted models, on a synthetic
corpus). The rewrite on a real model: tests/rag/answer/test_conversation_model.py."""

from __future__ import annotations

import pytest

from rag.answer.conversation import (
    condense_messages,
    needs_rewrite,
    parse_rewrite,
    pronouns_to_replace,
)
from rag.config import Settings
from rag.errors import QuestionError
from rag.grounding.decision import DecisionModel
from rag.pipeline import Pipeline
from rag.types import Answer
from tests.fakes import ChatGenerator, always_answer

FIRST = "Who built the lighthouse at Karrow Point?"
FIRST_REPLY = "The lighthouse was built in 1872 by the engineer Alice Brennan [1]."
HISTORY = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": FIRST_REPLY}]
FOLLOW = "How tall is its tower?"
STANDALONE = "How tall is the tower of the lighthouse at Karrow Point?"
TOWER = "The tower stands 31 metres tall [1]."


def make(tmp_path, corpus, embedder, reply=TOWER, rewrite=STANDALONE, decision=None):
    gen = ChatGenerator(reply, rewrite)
    pipe = Pipeline(Settings(corpus=corpus, index=tmp_path / "idx"), embedder=embedder,
                    generator=gen, decision=decision or always_answer())
    pipe.index()
    return pipe, gen


@pytest.mark.parametrize("question", [
    "How tall is its tower?", "Who designed it?", "and the museum?", "What about the keeper?",
    "When?", "Why was that?", "Did he leave?"])
def test_follow_ups_that_lean_on_the_conversation_are_rewritten(question):
    assert needs_rewrite(question, HISTORY)


@pytest.mark.parametrize("question", [
    "When was the Karrow Point lighthouse automated?",
    "How many members does the Karrow fishing cooperative have?",
    "When did the Karrow IT department open?",  # an acronym, not the pronoun
    "Who chairs Valmere?", "Who runs the Karrow museum?"])  # short, but naming something
def test_questions_that_stand_alone_are_not(question):
    assert not needs_rewrite(question, HISTORY)


def test_without_earlier_turns_nothing_is_rewritten():
    assert not needs_rewrite("Who designed it?", [])
    assert not needs_rewrite("Who designed it?", None)
    assert not needs_rewrite("Who designed it?", [{"role": "assistant", "content": "Hi."}])


def test_the_rewrite_prompt_holds_the_last_turns_without_citation_marks():
    long = [{"role": "user", "content": f"question {i}"} for i in range(6)]
    msgs = condense_messages("Who designed it?", HISTORY + long + HISTORY)
    user = msgs[1]["content"]
    assert "[1]" not in user and "Alice Brennan" in user
    assert "question 3" not in user and "question 4" in user  # the last four messages
    assert user.rstrip().endswith("Last question: Who designed it?\nRewritten:")


def test_a_rewrite_avoids_the_pronouns_it_resolves():
    assert pronouns_to_replace("Did he sell it to them?") == ["he", "it", "them"]
    assert pronouns_to_replace("What did IT buy, and when?") == []  # an acronym
    assert pronouns_to_replace("and the museum?") == []  # nothing to avoid: ellipsis


def test_the_rewrite_is_read_from_the_reply():
    q = "Who designed it?"
    assert parse_rewrite(" Rewritten: \"Who designed the mill?\"\nmore", q) == \
        "Who designed the mill?"
    for no_rewrite in ("", "x " * 200 + "?",  # empty; ran on: answering, not rewriting
                       "The mill was designed by Oskar Venn.",  # an answer
                       "Who designed it?",  # the question itself
                       "Who built the lighthouse at Karrow Point?",  # an earlier question
                       "Who built the mill? And who designed it?"):  # two run together
        assert parse_rewrite(no_rewrite, q, HISTORY) is None, no_rewrite


def test_without_a_usable_rewrite_the_last_question_joins_the_search(
        tmp_path, karrow_corpus, fake_embedder):
    pipe, gen = make(tmp_path, karrow_corpus, fake_embedder, rewrite=FOLLOW)  # an echo
    events = list(pipe.ask_stream(FOLLOW, history=HISTORY))
    searched = [e.text for e in events if e.kind == "status" and "Searching" in e.text]
    assert searched == [f"Searching for: {FIRST} {FOLLOW}"]
    ans = events[-1].answer
    assert ans.standalone_question == FOLLOW and ans.retrieved[0].doc == "lighthouse.txt"
    assert FOLLOW in gen.messages[-1][1]["content"]  # answered as asked


def test_a_follow_up_is_retrieved_and_answered_as_its_standalone_question(
        tmp_path, karrow_corpus, fake_embedder):
    pipe, gen = make(tmp_path, karrow_corpus, fake_embedder)
    events = list(pipe.ask_stream(FOLLOW, history=HISTORY))
    kinds = [e.kind for e in events]
    searching = [e for e in events if e.kind == "status" and e.text.startswith("Searching")]
    assert [e.text for e in searching] == [f"Searching for: {STANDALONE}"]
    assert kinds.index("status", kinds.index("status")) < kinds.index("sources")
    assert events.index(searching[0]) < kinds.index("sources")
    ans = events[-1].answer
    assert ans.question == FOLLOW and ans.standalone_question == STANDALONE
    assert not ans.refused and "31 metres" in ans.citations[0].text
    assert ans.retrieved[0].doc == "lighthouse.txt"
    assert len(gen.rewrites) == 1 and FOLLOW in gen.rewrites[0][1]["content"]
    assert gen.avoided == [["its"]]  # the rewrite has to say what "its" stands for
    assert STANDALONE in gen.messages[-1][1]["content"]  # the answer's prompt
    assert FOLLOW not in gen.messages[-1][1]["content"]
    assert ans.timings["rewrite_s"] >= 0
    assert ans.to_dict()["standalone_question"] == STANDALONE
    assert Answer.from_dict(ans.to_dict()).standalone_question == STANDALONE


def test_a_question_that_stands_alone_costs_no_rewrite(tmp_path, karrow_corpus,
                                                       fake_embedder):
    pipe, gen = make(tmp_path, karrow_corpus, fake_embedder)
    q = "How tall is the Karrow Point lighthouse tower?"
    for history in (None, HISTORY):
        ans = pipe.ask(q, history=history)
        assert ans.standalone_question == q and "rewrite_s" not in ans.timings
    assert gen.rewrites == [] and len(gen.messages) == 2


def test_earlier_turns_are_never_evidence(tmp_path, karrow_corpus, fake_embedder):
    """An assistant turn that says something no document says: the answer still cites
    only document spans, and the answer's prompt never shows the earlier turns."""
    planted = "The harbour master keeps a blue parrot named Juniper in the tower."
    history = [{"role": "user", "content": FIRST},
               {"role": "assistant", "content": planted + " [1]"}]
    reply = "The harbour master keeps a blue parrot named Juniper in the tower [1]."
    pipe, gen = make(tmp_path, karrow_corpus, fake_embedder, reply=reply,
                     rewrite="What does the harbour master keep in the lighthouse tower?")
    ans = pipe.ask("What does he keep in the tower?", history=history)
    assert "Juniper" not in gen.messages[-1][1]["content"]
    for c in ans.citations:
        assert pipe.live.document_text(c.doc)[c.start:c.end] == c.text
        assert "Juniper" not in c.text
    assert all("Juniper" not in e.text for e in ans.evidence)
    # the reply's sentence has no support in what it cites: flagged, and the sentence it
    # cites is quoted instead (the decision here always answers)
    assert not ans.refused and "Juniper" not in ans.answer
    juniper = [s for s in ans.sentences if "Juniper" in s.text]
    assert len(juniper) == 1 and not juniper[0].supported
    assert ans.sentences[0].quote and ans.citations[0].text in ans.answer


def test_a_follow_up_the_documents_do_not_answer_is_refused(tmp_path, karrow_corpus,
                                                            fake_embedder):
    never = DecisionModel(("support",), (0.0,), (1.0,), (0.0,), -10.0, threshold=0.5,
                          generator="test/scripted")
    pipe, _ = make(tmp_path, karrow_corpus, fake_embedder, reply="NOT IN DOCUMENTS",
                   rewrite="What did the lighthouse at Karrow Point cost to build?",
                   decision=never)
    ans = pipe.ask("How much money went into building it?", history=HISTORY)
    assert ans.refused and ans.citations == []
    assert ans.standalone_question == "What did the lighthouse at Karrow Point cost to build?"


def test_a_bad_history_is_a_question_error(tmp_path, karrow_corpus, fake_embedder):
    pipe, _ = make(tmp_path, karrow_corpus, fake_embedder)
    with pytest.raises(QuestionError, match="history turn 2"):
        pipe.ask(FOLLOW, history=[HISTORY[0], {"role": "assistant", "content": None}])
    assert pipe.queue.admitted == 0
