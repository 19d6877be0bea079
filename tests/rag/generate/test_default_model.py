"""The default model with the shipped graded decision, on one of the articles it was
fitted on (tests/data/README.md; the decision's figures for it are out of fold): it
answers from the text, cites exact spans, and refuses a question the article does not
answer."""

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import REPO

pytestmark = pytest.mark.model

ARTICLE = REPO / "tests" / "data" / "harvard"


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, real_embedder):
    pipe = Pipeline(Settings(corpus=ARTICLE, index=tmp_path_factory.mktemp("harvard-idx")),
                    embedder=real_embedder)
    pipe.index()
    return pipe


def _spans_are_exact(ans) -> None:
    for c in ans.citations:
        text = (ARTICLE / c.doc).read_text(encoding="utf-8")
        assert text[c.start:c.end] == c.text


def test_the_shipped_decision_is_the_default_models(pipeline):
    assert pipeline.decision.fitted
    # scored by a model fitted without it
    assert "006_Harvard_University.txt" in pipeline.decision.meta["folds"]


ANSWERABLE = [
    # the article gives both "79" and "nearly 80"
    ("Into how many individual libraries is the university's library system divided?",
     ("79", "80")),
    ("On which ship did the college's first printing press arrive?", ("John of London",)),
]
OFF_TOPIC = "At what temperature does liquid nitrogen boil?"


@pytest.fixture(scope="module")
def answers(pipeline):
    return {q: pipeline.ask(q) for q in [q for q, _ in ANSWERABLE] + [OFF_TOPIC]}


def test_the_draft_holds_the_answer_and_cites_exact_spans(answers):
    """Shown (as an answer or a caution), or refused: either way the draft found the
    answer, and what is cited is the article's exact text."""
    for question, expected in ANSWERABLE:
        ans = answers[question]
        shown = ans.answer if not ans.refused else ans.withheld
        assert any(e.lower() in shown.lower() for e in expected), (ans.answer, ans.withheld)
        assert ans.confidence is not None
        _spans_are_exact(ans)
        if not ans.refused:
            assert any(e.lower() in c.text.lower() for e in expected for c in ans.citations)


def test_refuses_what_the_article_does_not_say(answers):
    ans = answers[OFF_TOPIC]
    assert ans.refused and ans.citations == [] and ans.retrieved


def test_the_decision_ranks_grounded_questions_above_an_off_topic_one(answers):
    off = answers[OFF_TOPIC].confidence or 0.0
    assert all(answers[q].confidence > off for q, _ in ANSWERABLE)
