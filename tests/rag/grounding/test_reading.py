"""The model's reading of a yes/no draft (rag.grounding.reading) and what the decision makes of
it; synthetic text and a scripted model."""

import math

from rag.config import Settings
from rag.grounding.decision import DecisionModel
from rag.grounding.reading import (
    READING_SYSTEM,
    cited_texts,
    needs_reading,
    reading_messages,
)
from rag.grounding.signals import reading_signal
from rag.pipeline import Pipeline
from rag.types import Draft, Evidence, SentenceSupport
from tests.conftest import KARROW_CORPUS
from tests.fakes import HashEmbedder, ScriptedGenerator

Q = "Did the council agree to sell the harbour land?"


class ReadingGenerator(ScriptedGenerator):
    """Answers with ``reply``; asked for its reading, reports P(Yes) = ``p_yes``."""

    def __init__(self, reply: str, p_yes: float | None) -> None:
        super().__init__(reply, cite_best=True)
        self.p_yes = p_yes
        self.readings: list = []

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        if messages[0]["content"] == READING_SYSTEM:
            self.readings.append(messages)
            if probe is not None:
                probe.p_refusal = self.p_yes
            yield "Yes" if (self.p_yes or 0) > 0.5 else "No"
            return
        yield from super().stream(messages, max_tokens, temperature, stop, probe)


def by_reading(threshold: float = 0.5) -> DecisionModel:
    """A decision that trusts a draft as far as the model's reading agrees with it."""
    return DecisionModel(("reading",), (0.0,), (1.0,), (1.0,), 0.0, threshold=threshold,
                         low=0.1, generator="test/scripted")


def test_the_reading_is_signed_by_the_drafts_own_answer():
    no = [SentenceSupport("The council denied it.", [1], True, 1.0, prefix="No:")]
    yes = [SentenceSupport("The council agreed.", [1], True, 1.0, prefix="Yes:")]
    assert reading_signal(Q, no, 0.1) > 2 and reading_signal(Q, yes, 0.1) < -2
    assert reading_signal(Q, no, None) == 0.0  # not read
    assert math.isnan(reading_signal(Q, no, math.nan))  # read, but no probability
    assert reading_signal("Who leads the council?", yes, 0.9) == 0.0


def test_only_a_yes_no_draft_with_citations_is_read():
    ev = [Evidence(1, "c.txt", "c", 0, 20, "The council denied it.", 1.0),
          Evidence(2, "c.txt", "c", 21, 40, "The land is public.", 0.5)]
    draft = Draft([SentenceSupport("The council denied it.", [1, 1], True, 1.0,
                                   prefix="No:")], "model")
    assert cited_texts(draft, ev) == ["The council denied it."]
    assert needs_reading(Q, draft, ev)
    assert not needs_reading("Who denied it?", draft, ev)
    assert not needs_reading(Q, Draft([], "model"), ev)
    msgs = reading_messages(Q, ["The council  denied\nit."])
    assert "Evidence: The council denied it." in msgs[1]["content"] and Q in msgs[1]["content"]


def ask(tmp_path, p_yes: float | None):
    gen = ReadingGenerator("No. Karrow Town Council has denied reports that it plans to sell "
                           "the old harbour land [1].", p_yes)
    pipe = Pipeline(Settings(corpus=KARROW_CORPUS, index=tmp_path / "i"),
                    embedder=HashEmbedder(), generator=gen, decision=by_reading())
    pipe.index()
    return pipe.ask(Q), gen


def test_a_reading_that_agrees_makes_the_answer_confident(tmp_path):
    ans, gen = ask(tmp_path, p_yes=0.05)
    assert ans.grade == "answer" and ans.answer.startswith("No")
    # the model read exactly the sentence the draft cites, once
    assert len(gen.readings) == 1
    assert "has denied reports that it plans to sell" in gen.readings[0][1]["content"]
    assert "reading_s" in ans.timings


def test_a_reading_that_disagrees_leaves_a_caution(tmp_path):
    ans, _ = ask(tmp_path, p_yes=0.7)
    assert ans.grade == "caution" and ans.note


def test_a_question_that_is_not_yes_no_is_not_read(tmp_path):
    gen = ReadingGenerator("Peter Lindqvist [1].", 0.9)
    pipe = Pipeline(Settings(corpus=KARROW_CORPUS, index=tmp_path / "i"),
                    embedder=HashEmbedder(), generator=gen, decision=by_reading())
    pipe.index()
    pipe.ask("Who is the council leader?")
    assert gen.readings == []
