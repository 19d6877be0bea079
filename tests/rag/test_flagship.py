"""The sample corpus's own question, in the words of `make demo`, of the docs and in
other words: the default model with the shipped decision answers it with confidence,
"No", citing the denial with an exact span."""

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import DHSC_DOC, NHS_CORPUS, REPO

pytestmark = pytest.mark.model


def demo_question() -> str:
    for line in (REPO / "Makefile").read_text(encoding="utf-8").splitlines():
        if line.startswith("QUESTION ?="):
            return line.split("?=", 1)[1].strip()
    raise AssertionError("the Makefile names no demo question")


QUESTIONS = [demo_question(), "Did DHSC confirm the taskforce?",
             "Has the Department of Health and Social Care confirmed the new taskforce?"]


@pytest.fixture(scope="module")
def pipeline(real_index, real_embedder):
    return Pipeline(Settings(corpus=NHS_CORPUS, index=real_index), embedder=real_embedder)


@pytest.mark.parametrize("question", QUESTIONS)
def test_the_flagship_question_is_answered_with_confidence(pipeline, question):
    ans = pipeline.ask(question)
    assert ans.grade == "answer", (ans.grade, ans.confidence, ans.coverage, ans.withheld)
    assert ans.answer.startswith("No"), ans.answer
    text = (NHS_CORPUS / DHSC_DOC).read_text(encoding="utf-8")
    denial = [c for c in ans.citations if c.doc == DHSC_DOC and
              any(w in c.text for w in ("denied", "denies", "no plans"))]
    assert denial, ans.citations
    for c in denial:
        assert text[c.start:c.end] == c.text
