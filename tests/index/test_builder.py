from index.builder import build_index
from index.stores import disk
from tests.fakes import HashEmbedder


def chunk_ids(idx, doc_id):
    return [c.id for c in disk.load(idx).chunks if c.doc_id == doc_id]


def test_incremental_reindex_add_modify_delete(tmp_path, nhs_corpus):
    idx = tmp_path / "idx"
    emb = HashEmbedder()
    first = build_index(nhs_corpus, idx, emb)
    assert sorted(first.added) == sorted(p.name for p in nhs_corpus.iterdir())
    total = first.total_chunks

    emb.embedded = 0
    again = build_index(nhs_corpus, idx, emb)
    assert emb.embedded == 0 and not again.written
    assert len(again.unchanged) == 2 and again.total_chunks == total

    (nhs_corpus / "extra.md").write_text("# Extra\nFerries run on Tuesdays.", encoding="utf-8")
    added = build_index(nhs_corpus, idx, emb)
    assert added.added == ["extra.md"] and emb.embedded == added.embedded_chunks == 1

    emb.embedded = 0
    kept = chunk_ids(idx, "000_d1addedd5fe89df8.txt")
    target = nhs_corpus / "002_460e449dcac45b62.txt"
    target.write_text(target.read_text(encoding="utf-8") + "\nA new closing line.",
                      encoding="utf-8")
    modified = build_index(nhs_corpus, idx, emb)
    assert modified.updated == ["002_460e449dcac45b62.txt"]
    assert emb.embedded == modified.embedded_chunks
    assert modified.embedded_chunks < modified.total_chunks
    assert chunk_ids(idx, "000_d1addedd5fe89df8.txt") == kept

    (nhs_corpus / "extra.md").unlink()
    removed = build_index(nhs_corpus, idx, emb)
    assert removed.removed == ["extra.md"]
    data = disk.load(idx)
    assert "extra.md" not in data.documents
    ids = [c.id for c in data.chunks]
    assert len(ids) == len(set(ids)), "no duplicate chunks"
    assert data.faiss_index.ntotal == len(ids)


def test_broken_file_is_named_skipped_and_the_rest_indexed(tmp_path, nhs_corpus):
    (nhs_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    report = build_index(nhs_corpus, tmp_path / "idx", HashEmbedder())
    assert report.partial and [e.path for e in report.errors] == ["broken.pdf"]
    assert len(report.added) == 2


def test_same_file_under_two_names_is_indexed_once(tmp_path, nhs_corpus):
    src = nhs_corpus / "000_d1addedd5fe89df8.txt"
    (nhs_corpus / "copy.txt").write_bytes(src.read_bytes())
    report = build_index(nhs_corpus, tmp_path / "idx", HashEmbedder())
    assert "copy.txt" not in disk.load(tmp_path / "idx").documents
    assert any("same content" in str(e) for e in report.errors)
