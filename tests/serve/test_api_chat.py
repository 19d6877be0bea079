"""Conversations through the HTTP API: /v1/ask's history and the whole message list of
/v1/chat/completions (a hashing embedder and a scripted model, on a synthetic corpus)."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from rag.config import Settings
from rag.pipeline import Pipeline
from serve.api import create_app
from tests.conftest import KARROW_CORPUS
from tests.fakes import ChatGenerator, HashEmbedder, always_answer

FIRST = "Who built the lighthouse at Karrow Point?"
FIRST_REPLY = "The lighthouse was built in 1872 by the engineer Alice Brennan [1]."
STANDALONE = "How tall is the tower of the lighthouse at Karrow Point?"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    gen = ChatGenerator("The tower stands 31 metres tall [1].", STANDALONE)
    pipe = Pipeline(Settings(corpus=KARROW_CORPUS, index=tmp_path_factory.mktemp("idx")),
                    embedder=HashEmbedder(), generator=gen, decision=always_answer())
    pipe.index()
    return TestClient(create_app(pipe)), gen


def test_ask_with_history_answers_the_standalone_question(served):
    client, gen = served
    history = [{"role": "user", "content": FIRST},
               {"role": "assistant", "content": FIRST_REPLY}]
    body = client.post("/v1/ask", json={"question": "How tall is its tower?",
                                        "history": history}).json()
    assert body["question"] == "How tall is its tower?"
    assert body["standalone_question"] == STANDALONE
    assert not body["refused"] and "31 metres" in body["citations"][0]["text"]
    assert FIRST in gen.rewrites[-1][1]["content"]
    alone = client.post("/v1/ask", json={"question": FIRST}).json()
    assert alone["standalone_question"] == FIRST


@pytest.mark.parametrize("history", [[{"role": "system", "content": "x"}],
                                     [{"role": "user"}], "not a list"])
def test_a_bad_history_is_422(served, history):
    r = served[0].post("/v1/ask", json={"question": "How tall is its tower?",
                                        "history": history})
    assert r.status_code == 422 and r.json()["detail"].startswith("invalid request: history")


MESSAGES = [{"role": "system", "content": "You are a pirate."},
            {"role": "user", "content": FIRST},
            {"role": "assistant", "content": FIRST_REPLY},
            {"role": "user", "content": [{"type": "text", "text": "How tall is its tower?"}]}]


def test_chat_completion_uses_the_whole_conversation(served):
    client, gen = served
    before = len(gen.rewrites)
    body = client.post("/v1/chat/completions", json={"messages": MESSAGES}).json()
    assert len(gen.rewrites) == before + 1
    prompt = gen.rewrites[-1][1]["content"]
    assert FIRST in prompt and "Alice Brennan" in prompt and "pirate" not in prompt
    assert body["standalone_question"] == STANDALONE
    assert "31 metres" in body["citations"][0]["text"]
    assert body["choices"][0]["message"]["content"].startswith("The tower stands 31 metres")


def test_chat_stream_announces_the_standalone_question_before_the_sources(served):
    client, _ = served
    with client.stream("POST", "/v1/chat/completions",
                       json={"messages": MESSAGES, "stream": True}) as r:
        chunks = [json.loads(line[6:]) for line in r.iter_lines()
                  if line.startswith("data: {")]
    first = next(i for i, c in enumerate(chunks) if "standalone_question" in c)
    sources = next(i for i, c in enumerate(chunks) if "sources" in c)
    assert first < sources and chunks[first]["standalone_question"] == STANDALONE
    assert chunks[-1]["standalone_question"] == STANDALONE and chunks[-1]["citations"]
