import pytest

from index.builder import build_index
from index.stores import disk
from rag.retrieve.retrievers import HybridRetriever, rrf_fuse
from tests.conftest import DHSC_DOC, NHSD_DOC

TASKFORCE_Q = "Did the health department confirm the taskforce?"


def test_rrf_rewards_agreement_between_rankings():
    fused = rrf_fuse([[1, 2, 3], [3, 1, 4]], k=4, rrf_k=60)
    assert [i for i, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[-1][1] == pytest.approx(1 / 63)


def test_rrf_handles_empty_rankings_and_k():
    assert rrf_fuse([[], []], k=3) == []
    assert len(rrf_fuse([[5, 6, 7, 8]], k=2)) == 2


@pytest.fixture
def fake_retriever(tmp_path, nhs_corpus, fake_embedder):
    build_index(nhs_corpus, tmp_path / "idx", fake_embedder)
    data = disk.load(tmp_path / "idx")
    return lambda mode: HybridRetriever(data, fake_embedder, mode=mode)


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_modes_find_the_right_document_with_scores(fake_retriever, mode):
    hits = fake_retriever(mode).retrieve("Did DHSC deny the taskforce plans?", k=3)
    assert hits[0].doc == DHSC_DOC
    assert [h.rank for h in hits] == [1, 2, 3]
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
    if mode == "hybrid":
        assert hits[0].dense_score is not None and hits[0].bm25_score is not None
    hits = fake_retriever(mode).retrieve("Org2 redundancy programme employees", k=2)
    assert hits[0].doc == NHSD_DOC


def test_bad_settings_name_valid_values(fake_retriever):
    with pytest.raises(ValueError, match="hybrid, dense, bm25"):
        fake_retriever("sparse")
    with pytest.raises(ValueError, match="k must be"):
        fake_retriever("hybrid").retrieve("x", k=0)


@pytest.mark.model
def test_real_embedder_hybrid_retrieval(real_index, real_embedder):
    data = disk.load(real_index, embedding_model=real_embedder.name)
    hits = HybridRetriever(data, real_embedder).retrieve(TASKFORCE_Q, 3)
    assert hits[0].doc == DHSC_DOC
    assert "denied" in hits[0].text or "no plans" in hits[0].text


def test_bm25_ranking_matches_bm25s_retrieve():
    from eval.bench import synthetic
    from index.text import bm25_query_tokens
    from tests.fakes import HashEmbedder

    texts = synthetic.zipf_texts(3000, 30)
    data = synthetic.in_memory_index(texts, synthetic.clustered_vectors(3000, 16, 20))
    retriever = HybridRetriever(data, HashEmbedder(16))
    for q in synthetic.questions(20, seed=9):
        ours = retriever.sparse(q, 10)
        ids, scores = data.bm25.retrieve(bm25_query_tokens(q), k=10, show_progress=False)
        theirs = [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if s > 0]
        assert [round(s, 4) for _, s in ours] == [round(s, 4) for _, s in theirs]
        assert {i for i, s in ours if s > theirs[-1][1] + 1e-6} <= {i for i, _ in theirs}
