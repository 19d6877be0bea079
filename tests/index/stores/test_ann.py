"""Dense index types: exact vs graph search, the choice by size, appends and mmap loads."""

import numpy as np
import pytest

from index.builder import build_index
from index.stores import ann, disk
from index.stores.ann import DenseSpec


def clustered(n: int, dim: int = 64, clusters: int = 50, seed: int = 0) -> np.ndarray:
    """Unit vectors around random centres, shaped like text embeddings (they cluster)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + 0.7 * rng.normal(size=(n, dim)).astype(
        np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def recall_at_10(index, vecs: np.ndarray, queries: np.ndarray) -> float:
    exact = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    _, got = index.search(queries, 10)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, got,
                                                                     strict=True)]))


@pytest.mark.parametrize("kind,floor", [("hnsw", 0.95), ("hnsw-sq8", 0.93)])
def test_graph_index_recall_against_numpy_brute_force(kind, floor):
    vecs = clustered(5000)
    queries = clustered(100, seed=1)
    index = ann.build(vecs, 64, DenseSpec(kind))
    assert index.ntotal == 5000
    assert recall_at_10(index, vecs, queries) >= floor


def test_flat_is_exact():
    vecs, queries = clustered(2000), clustered(50, seed=2)
    assert recall_at_10(ann.build(vecs, 64, DenseSpec("flat")), vecs, queries) == 1.0


def test_auto_resolves_by_size_and_rejects_bad_values():
    spec = DenseSpec(flat_max=100)
    assert spec.resolve(100).type == "flat" and spec.resolve(101).type == "hnsw"
    assert spec.to_manifest(500)["type"] == "hnsw"
    assert spec.to_manifest(500)["requested"] == "auto"
    with pytest.raises(ValueError, match="flat, hnsw, hnsw-sq8"):
        DenseSpec("ivf")
    with pytest.raises(ValueError, match="ef_search"):
        DenseSpec(ef_search=0)


def test_memory_per_vector_is_reported():
    vecs = clustered(3000)
    flat = ann.bytes_per_vector(ann.build(vecs, 64, DenseSpec("flat")))
    hnsw = ann.bytes_per_vector(ann.build(vecs, 64, DenseSpec("hnsw")))
    sq8 = ann.bytes_per_vector(ann.build(vecs, 64, DenseSpec("hnsw-sq8")))
    assert flat == pytest.approx(64 * 4, rel=0.05)
    assert sq8 < hnsw and hnsw > flat


def test_auto_switches_to_hnsw_above_threshold_and_loads_mmapped(tmp_path, nhs_corpus,
                                                                 fake_embedder):
    idx = tmp_path / "idx"
    build_index(nhs_corpus, idx, fake_embedder, dense=DenseSpec(flat_max=3, ef_search=40))
    data = disk.load(idx, mmap=True)
    assert data.manifest["dense"]["type"] == "hnsw"
    assert data.manifest["dense"]["requested"] == "auto"
    assert data.faiss_index.hnsw.efSearch == 40
    q = data.embeddings[0]
    hits = data.vectors.search(q, 3)
    assert hits[0][0] == data.keys[0]  # a row finds itself first


def test_changing_the_type_rebuilds_the_dense_index_without_embedding(tmp_path, nhs_corpus,
                                                                      fake_embedder):
    idx = tmp_path / "idx"
    build_index(nhs_corpus, idx, fake_embedder)
    assert disk.load(idx).manifest["dense"]["type"] == "flat"
    before = fake_embedder.embedded
    report = build_index(nhs_corpus, idx, fake_embedder, dense=DenseSpec("hnsw"))
    assert report.written and report.embedded_chunks == 0
    assert fake_embedder.embedded == before
    assert disk.load(idx).manifest["dense"]["type"] == "hnsw"
    # the requested type is remembered by later updates
    assert not build_index(nhs_corpus, idx, fake_embedder).written


def test_adding_files_extends_the_old_index_instead_of_rebuilding(tmp_path, nhs_corpus,
                                                                  fake_embedder,
                                                                  monkeypatch):
    idx = tmp_path / "idx"
    build_index(nhs_corpus, idx, fake_embedder, dense=DenseSpec("hnsw"))
    old = disk.load(idx)
    builds = []
    real_build = ann.build
    monkeypatch.setattr(ann, "build", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    (nhs_corpus / "new.txt").write_text("The library opened in 1998. " * 20, encoding="utf-8")
    report = build_index(nhs_corpus, idx, fake_embedder)
    assert report.added == ["new.txt"] and not builds
    new = disk.load(idx)
    n_old = len(old.chunks)
    assert new.chunks[:n_old] == old.chunks  # old rows first, in their order
    assert new.faiss_index.ntotal == len(new.chunks) > n_old
    np.testing.assert_allclose(new.embeddings[:n_old], old.embeddings)
    # a removal cannot be appended: the dense index is built again
    (nhs_corpus / "new.txt").unlink()
    build_index(nhs_corpus, idx, fake_embedder)
    assert builds and disk.load(idx).faiss_index.ntotal == n_old
