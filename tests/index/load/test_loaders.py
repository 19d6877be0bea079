import pytest

from index.errors import CorpusError, DocumentError
from index.load.loaders import iter_documents, load_document, scan


def test_txt_title_is_first_non_empty_line(tmp_path):
    (tmp_path / "a.txt").write_text("\n\n  Headline here \nBody.", encoding="utf-8")
    doc = load_document(tmp_path / "a.txt", tmp_path)
    assert doc.id == "a.txt" and doc.title == "Headline here" and doc.kind == "txt"
    assert doc.text == "\n\n  Headline here \nBody."


def test_markdown_title_drops_hashes_and_ids_are_relative_paths(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "n.md").write_text("# Notes\ntext", encoding="utf-8")
    doc = load_document(tmp_path / "sub" / "n.md", tmp_path)
    assert doc.id == "sub/n.md" and doc.title == "Notes"


def test_html_uses_title_tag_and_drops_scripts(tmp_path):
    (tmp_path / "p.html").write_text(
        "<html><head><title>The Page</title><style>x{}</style></head>"
        "<body><h1>Head</h1><script>alert(1)</script><p>First para.</p></body></html>",
        encoding="utf-8")
    doc = load_document(tmp_path / "p.html", tmp_path)
    assert doc.title == "The Page"
    assert doc.text == "Head\nFirst para."


def test_pdf_text_and_metadata_title(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure()
    fig.text(0.1, 0.5, "The taskforce was denied by the department.")
    fig.savefig(tmp_path / "r.pdf", metadata={"Title": "Report Title"})
    plt.close(fig)
    doc = load_document(tmp_path / "r.pdf", tmp_path)
    assert doc.title == "Report Title" and doc.kind == "pdf"
    assert "taskforce was denied" in doc.text


@pytest.mark.parametrize("name,data,reason", [
    ("empty.txt", b"", "empty"),
    ("blank.txt", b"  \n\t ", "empty"),
    ("bin.txt", b"\x00\x01\x02binary", "binary"),
    ("bad.pdf", b"%PDF-1.4 this is not really a pdf", "PDF"),
])
def test_bad_files_raise_a_named_error(tmp_path, name, data, reason):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DocumentError, match=reason) as exc:
        load_document(tmp_path / name, tmp_path)
    assert str(exc.value).startswith(name)


def test_latin1_file_is_read(tmp_path):
    (tmp_path / "l.txt").write_bytes("Caf\xe9 ouvert".encode("latin-1"))
    assert load_document(tmp_path / "l.txt", tmp_path).text == "Café ouvert"


def test_scan_is_recursive_sorted_and_skips_hidden_and_unsupported(tmp_path):
    for rel in ["b.txt", "a/c.md", ".hidden/x.txt", "d.exe", "a/.e.txt", "f.HTML", "g.zip"]:
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x", encoding="utf-8")
    assert [p.relative_to(tmp_path).as_posix() for p in scan(tmp_path)] == [
        "b.txt", "f.HTML", "a/c.md"]


def test_iter_documents_reports_errors_and_keeps_going(tmp_path):
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    (tmp_path / "zero.txt").write_bytes(b"")
    out = list(iter_documents(tmp_path))
    assert [type(x).__name__ for x in out] == ["Document", "DocumentError"]


def test_missing_corpus_is_a_clear_error(tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        scan(tmp_path / "nope")
