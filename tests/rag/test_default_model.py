"""The default model with the shipped answer-or-refuse decision, on an article that no
fitting used (tests/data/README.md): it answers from the text, cites exact spans, and
refuses a question the article does not answer."""

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
    assert "006_Harvard_University.txt" in pipeline.decision.meta["holdout_groups"]


@pytest.mark.parametrize(("question", "expected"), [
    ("Into how many individual libraries is the university's library system divided?", "79"),
    ("On which ship did the college's first printing press arrive?", "John of London"),
])
def test_answers_an_unseen_article_with_exact_citations(pipeline, question, expected):
    ans = pipeline.ask(question)
    assert not ans.refused, (ans.refusal_reason, ans.withheld)
    assert expected.lower() in ans.answer.lower(), ans.answer
    assert ans.citations and ans.confidence is not None and ans.confidence >= 0.0
    _spans_are_exact(ans)
    assert any(expected.lower() in c.text.lower() for c in ans.citations)


def test_refuses_what_the_article_does_not_say(pipeline):
    ans = pipeline.ask("At what temperature does liquid nitrogen boil?")
    assert ans.refused and ans.citations == [] and ans.retrieved
