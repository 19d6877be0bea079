"""The rewrite of a follow-up on a real model (SmolLM2-135M through llama.cpp, MiniLM
embeddings) over the synthetic corpus: the model is asked, its reply is used only when
it is a question, and the answer still cites only document spans."""

from __future__ import annotations

import pytest

from rag.answer.conversation import condense_messages, fallback_search, history_turns, parse_rewrite
from rag.config import Settings
from rag.pipeline import Pipeline

pytestmark = pytest.mark.model

FIRST = "Who built the lighthouse at Karrow Point?"


def test_a_follow_up_goes_through_the_model_rewrite(tmp_path, karrow_corpus, real_embedder,
                                                    small_generator):
    pipe = Pipeline(Settings(corpus=karrow_corpus, index=tmp_path / "idx",
                             model="smollm2-135m"),
                    embedder=real_embedder, generator=small_generator)
    pipe.index()
    first = pipe.ask(FIRST)
    assert "rewrite_s" not in first.timings and first.standalone_question == FIRST
    history = history_turns(first.to_dict())
    follow = "When was it automated?"
    raw = "".join(small_generator.stream(condense_messages(follow, history), max_tokens=48,
                                         stop=["\n"]))
    assert raw.strip()  # the model replied to the rewrite prompt
    events = list(pipe.ask_stream(follow, history=history))
    ans = events[-1].answer
    assert ans.timings["rewrite_s"] > 0 and ans.question == follow
    # the model's reply, used only if it is a new question (a 135M model often answers);
    # else the question is answered as asked and searched with the earlier question
    rewrite = parse_rewrite(raw, follow, history)
    assert ans.standalone_question == (rewrite or follow)
    assert ans.standalone_question.endswith("?")
    searching = [e.text for e in events if e.kind == "status" and "Searching" in e.text]
    assert searching == [f"Searching for: {rewrite or fallback_search(follow, history)}"]
    for c in ans.citations:  # only documents are evidence
        assert pipe.live.document_text(c.doc)[c.start:c.end] == c.text
    assert {p.doc for p in ans.retrieved} <= {"lighthouse.txt", "council.txt"}
