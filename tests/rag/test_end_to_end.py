"""The whole path on the real parts: MiniLM embeddings, FAISS + BM25 and a real GGUF model
(SmolLM2, fast enough for every run), over the synthetic corpus."""

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import KARROW_CORPUS

pytestmark = pytest.mark.model

QUESTIONS = ["When was the lighthouse at Karrow Point built?",
             "How many members does the fishing cooperative have?",
             "What did the council say about selling the harbour land?"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, real_embedder, small_generator):
    pipe = Pipeline(Settings(corpus=KARROW_CORPUS, index=tmp_path_factory.mktemp("k-idx"),
                             model="smollm2-135m"),
                    embedder=real_embedder, generator=small_generator)
    pipe.index()
    return pipe


@pytest.fixture(scope="module")
def answers(pipeline):
    return [pipeline.ask(q) for q in QUESTIONS]


def test_every_run_reports_the_decision_and_its_timings(answers):
    for ans in answers:
        assert ans.retrieved and ans.mode == "verified"
        assert ans.timings["first_token_s"] > 0 and ans.tokens_generated > 0
        assert ans.refused or ans.confidence is not None


def test_cited_spans_equal_the_source_files(answers):
    cited = [c for ans in answers for c in ans.citations]
    assert cited, [a.answer for a in answers]
    for c in cited:
        assert (KARROW_CORPUS / c.doc).read_text(encoding="utf-8")[c.start:c.end] == c.text


def test_every_shown_sentence_is_supported_and_cited(answers):
    for ans in answers:
        if ans.refused:
            assert ans.citations == []
            continue
        shown = [s for s in ans.sentences if s.supported]
        assert shown and all(s.citations for s in shown)
        assert {n for s in shown for n in s.citations} == {c.n for c in ans.citations}
