"""Vector stores: FAISS (default, on-disk format unchanged) and Qdrant in local mode."""

import numpy as np
import pytest

from index.builder import build_index
from index.errors import VectorStoreError
from index.stores import disk
from index.stores.vectors import (
    FaissVectors,
    QdrantVectors,
    StoreSpec,
    _client,
    close_clients,
    qdrant_spec,
)
from rag.retrieve.retrievers import HybridRetriever
from tests.fakes import HashEmbedder


@pytest.fixture(autouse=True)
def _close_qdrant():
    yield
    close_clients()


def _vecs(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["faiss", "qdrant"])
def test_store_protocol_add_search_delete(tmp_path, kind):
    vecs = _vecs(40)
    keys = [f"k{i}" for i in range(40)]
    s = (FaissVectors(16) if kind == "faiss" else
         QdrantVectors(qdrant_spec(tmp_path / "idx"), 16, create=True))
    s.add(keys, vecs)
    assert s.count() == 40
    hits = s.search(vecs[7], 5)
    assert hits[0][0] == "k7" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    expected = np.argsort(-(vecs @ vecs[7]))[:5]
    assert [k for k, _ in hits] == [keys[i] for i in expected]
    s.delete(["k7", "k8"])
    assert s.count() == 38 and "k7" not in {k for k, _ in s.search(vecs[7], 40)}
    np.testing.assert_allclose(s.get(["k3"])["k3"], vecs[3], atol=1e-6)
    assert sorted(s.keys()) == sorted(set(keys) - {"k7", "k8"})


def test_manifest_records_the_store_and_faiss_format_is_unchanged(tmp_path, nhs_corpus):
    emb = HashEmbedder()
    build_index(nhs_corpus, tmp_path / "f", emb)
    assert disk.read_manifest(tmp_path / "f")["vectors"] == {"store": "faiss"}
    files = {p.name for p in disk.current_version(tmp_path / "f").iterdir()}
    assert {"embeddings.npy", "dense.faiss"} <= files

    spec = qdrant_spec(tmp_path / "q")
    build_index(nhs_corpus, tmp_path / "q", emb, store_spec=spec)
    manifest = disk.read_manifest(tmp_path / "q")
    vectors = manifest["vectors"]
    assert vectors["store"] == "qdrant" and vectors["path"] == str(tmp_path / "q" / "qdrant")
    assert vectors["collection"].startswith("cited-rag-q-")
    assert qdrant_spec(tmp_path / "other" / "q").collection != vectors["collection"]
    files = {p.name for p in disk.current_version(tmp_path / "q").iterdir()}
    assert not {"embeddings.npy", "dense.faiss"} & files


def test_qdrant_retrieval_matches_faiss(tmp_path, nhs_corpus):
    emb = HashEmbedder()
    build_index(nhs_corpus, tmp_path / "f", emb)
    build_index(nhs_corpus, tmp_path / "q", emb, store_spec=qdrant_spec(tmp_path / "q"))
    f = HybridRetriever(disk.load(tmp_path / "f"), emb)
    q = HybridRetriever(disk.load(tmp_path / "q"), emb)
    assert isinstance(q.data.vectors, QdrantVectors)
    for question in ["Did the health department confirm the taskforce?", "Who heads NHS Digital?",
                     "data sharing with police"]:
        fd, qd = f.dense(question, 10), q.dense(question, 10)
        assert [r for r, _ in fd] == [r for r, _ in qd]
        np.testing.assert_allclose([s for _, s in fd], [s for _, s in qd], atol=1e-5)
        assert [p.chunk_id for p in f.retrieve(question, 5)] == \
               [p.chunk_id for p in q.retrieve(question, 5)]


def test_qdrant_incremental_reindex_embeds_only_changes_and_deletes(tmp_path, nhs_corpus):
    idx, emb = tmp_path / "idx", HashEmbedder()
    build_index(nhs_corpus, idx, emb, store_spec=qdrant_spec(idx))

    emb.embedded = 0
    again = build_index(nhs_corpus, idx, emb)  # the store is kept from the manifest
    assert not again.written and emb.embedded == 0

    (nhs_corpus / "extra.md").write_text("# Extra\nFerries run on Tuesdays.", encoding="utf-8")
    added = build_index(nhs_corpus, idx, emb)
    assert added.added == ["extra.md"] and emb.embedded == 1
    data = disk.load(idx)
    assert data.vectors.count() == len(data.chunks)
    top = HybridRetriever(data, emb, mode="dense").retrieve("ferries tuesdays", 1)
    assert top[0].doc == "extra.md"

    emb.embedded = 0
    target = nhs_corpus / "002_460e449dcac45b62.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\nA new closing line.",
                      encoding="utf-8")
    modified = build_index(nhs_corpus, idx, emb)
    assert modified.updated == ["002_460e449dcac45b62.txt"]
    assert 0 < emb.embedded == modified.embedded_chunks < modified.total_chunks
    data = disk.load(idx)
    assert data.vectors.count() == len(data.chunks)  # the old version's points are gone

    (nhs_corpus / "extra.md").unlink()
    removed = build_index(nhs_corpus, idx, emb)
    assert removed.removed == ["extra.md"]
    data = disk.load(idx)
    assert set(data.vectors.keys()) == set(data.keys)
    assert all(p.doc != "extra.md" for p in
               HybridRetriever(data, emb, mode="dense").retrieve("ferries tuesdays", 5))


def test_migrate_faiss_to_qdrant_and_back_without_re_embedding(tmp_path, nhs_corpus):
    idx, emb = tmp_path / "idx", HashEmbedder()
    build_index(nhs_corpus, idx, emb)
    before = HybridRetriever(disk.load(idx), emb).retrieve("DHSC taskforce", 5)
    emb.embedded = 0
    moved = build_index(nhs_corpus, idx, emb, store_spec=qdrant_spec(idx))
    assert moved.written and emb.embedded == 0
    data = disk.load(idx)
    assert data.store_spec.store == "qdrant" and data.vectors.count() == len(data.chunks)
    mid = HybridRetriever(data, emb).retrieve("DHSC taskforce", 5)
    assert [p.chunk_id for p in mid] == [p.chunk_id for p in before]

    back = build_index(nhs_corpus, idx, emb, store_spec=StoreSpec())
    assert back.written and emb.embedded == 0
    data = disk.load(idx)
    assert data.store_spec.store == "faiss" and data.faiss_index.ntotal == len(data.chunks)
    after = HybridRetriever(data, emb).retrieve("DHSC taskforce", 5)
    assert [p.chunk_id for p in after] == [p.chunk_id for p in before]


def test_missing_collection_is_a_clear_error(tmp_path, nhs_corpus):
    idx = tmp_path / "idx"
    spec = qdrant_spec(idx)
    build_index(nhs_corpus, idx, HashEmbedder(), store_spec=spec)
    _client(spec).delete_collection(spec.collection)
    with pytest.raises(disk.IndexCorruptError, match="--store qdrant --rebuild"):
        disk.load(idx)


def test_unreachable_qdrant_server_is_a_clear_error(tmp_path):
    spec = StoreSpec("qdrant", collection="c", url="http://127.0.0.1:9")
    with pytest.raises(VectorStoreError, match="cannot reach Qdrant"):
        QdrantVectors(spec, 16)
