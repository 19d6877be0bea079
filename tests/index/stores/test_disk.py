import json

import numpy as np
import pytest

from index.builder import build_index
from index.chunking import ChunkerConfig
from index.errors import IndexCorruptError, IndexMismatchError, IndexNotFoundError
from index.stores import disk
from tests.fakes import HashEmbedder


def test_faiss_flat_ip_matches_numpy_brute_force():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(500, 32)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = rng.normal(size=(20, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    index = disk.build_faiss(vecs, 32)
    scores, ids = index.search(queries, 10)
    brute = queries @ vecs.T
    expected = np.argsort(-brute, axis=1)[:, :10]
    np.testing.assert_array_equal(ids, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected, 1), rtol=1e-5)


def test_round_trip_keeps_everything(tmp_path, nhs_corpus, fake_embedder):
    build_index(nhs_corpus, tmp_path / "idx", fake_embedder)
    data = disk.load(tmp_path / "idx", embedding_model=fake_embedder.name)
    assert len(data.documents) == 2
    assert data.embeddings.shape == (len(data.chunks), fake_embedder.dim)
    assert data.faiss_index.ntotal == len(data.chunks)
    for ch in data.chunks:
        assert data.documents[ch.doc_id].text[ch.start:ch.end] == ch.text
    manifest = data.manifest
    assert manifest["embedding"] == {"model": fake_embedder.name, "dim": fake_embedder.dim}
    assert manifest["chunker"] == {"chunk_words": 120, "overlap_words": 30}
    assert set(manifest["documents"]) == set(data.documents)
    files = {p.name for p in disk.current_version(tmp_path / "idx").iterdir()}
    assert {"manifest.json", "documents.jsonl", "chunks.jsonl", "embeddings.npy",
            "dense.faiss", "bm25"} <= files
    assert not any(p.suffix in (".pkl", ".pickle") for p in (tmp_path / "idx").rglob("*"))


def test_other_embedding_model_is_a_clear_error(tmp_path, nhs_corpus, fake_embedder):
    build_index(nhs_corpus, tmp_path / "idx", fake_embedder)
    with pytest.raises(IndexMismatchError, match="--rebuild") as exc:
        disk.load(tmp_path / "idx", embedding_model="other/model")
    assert fake_embedder.name in str(exc.value)
    with pytest.raises(IndexMismatchError, match="embedding model"):
        build_index(nhs_corpus, tmp_path / "idx", HashEmbedder(name="other/model"))


def test_other_chunker_settings_are_a_clear_error(tmp_path, nhs_corpus, fake_embedder):
    build_index(nhs_corpus, tmp_path / "idx", fake_embedder)
    with pytest.raises(IndexMismatchError, match="chunker"):
        build_index(nhs_corpus, tmp_path / "idx", fake_embedder, ChunkerConfig(60, 10))
    report = build_index(nhs_corpus, tmp_path / "idx", fake_embedder, ChunkerConfig(60, 10),
                         rebuild=True)
    assert report.written and len(report.added) == 2


def test_other_format_version_is_a_clear_error(tmp_path, nhs_corpus, fake_embedder):
    build_index(nhs_corpus, tmp_path / "idx", fake_embedder)
    mpath = disk.current_version(tmp_path / "idx") / "manifest.json"
    manifest = json.loads(mpath.read_text())
    manifest["format_version"] = 999
    mpath.write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatchError, match="format version 999"):
        disk.load(tmp_path / "idx")


def test_missing_and_damaged_indexes(tmp_path, nhs_corpus, fake_embedder):
    with pytest.raises(IndexNotFoundError, match="rag index"):
        disk.load(tmp_path / "none")
    build_index(nhs_corpus, tmp_path / "idx", fake_embedder)
    (disk.current_version(tmp_path / "idx") / "embeddings.npy").write_bytes(b"garbage")
    with pytest.raises(IndexCorruptError, match="--rebuild"):
        disk.load(tmp_path / "idx")


@pytest.mark.parametrize("stage", ["jsonl", "faiss", "bm25", "renamed"])
def test_crash_while_writing_leaves_previous_index_live(tmp_path, nhs_corpus, fake_embedder,
                                                        stage):
    idx = tmp_path / "idx"
    build_index(nhs_corpus, idx, fake_embedder)
    before = disk.load(idx)
    (nhs_corpus / "new.txt").write_text("A brand new document about ferries.",
                                        encoding="utf-8")

    def crash(at):
        if at == stage:
            raise KeyboardInterrupt("simulated crash")

    with pytest.raises(KeyboardInterrupt):
        build_index(nhs_corpus, idx, fake_embedder, crash_hook=crash)
    after = disk.load(idx)
    assert [c.id for c in after.chunks] == [c.id for c in before.chunks]
    report = build_index(nhs_corpus, idx, fake_embedder)  # leftovers do not get in the way
    assert report.added == ["new.txt"]
    assert [p.name for p in idx.iterdir() if p.name.startswith(".tmp")] == []
    assert len([p for p in idx.iterdir() if p.name.startswith("v-")]) == 1
