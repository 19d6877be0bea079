"""Each office format read into the text the index holds: reading order, tables as
"Header: value" rows, slides and sheets named, e-mail headers, page starts for slides,
titles; and the format chosen by content as well as by extension."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from index.errors import DocumentError
from index.load.formats import sniff
from index.load.loaders import load_document, scan
from tests import docfiles


def load(path: Path):
    return load_document(path, path.parent)


def page_of(doc, needle: str) -> int | None:
    return doc.page_at(doc.text.index(needle))


def test_docx_paragraphs_headings_lists_and_tables_in_reading_order(tmp_path):
    p = docfiles.write_docx(tmp_path / "orchard.docx", [
        ("heading", "Tarrow Valley orchard"),
        "The orchard planted 318 quince trees in the spring of 2019.",
        ("list", ["Pruning in March", "Harvest in October"]),
        ("table", [["Fruit", "Trees", "Planted"], ["Quince", "318", "2019"],
                   ["Medlar", "", "2021"]]),
        "Volunteers meet on Saturdays."], title="Orchard notes")
    doc = load(p)
    assert doc.kind == "docx" and doc.title == "Orchard notes" and doc.pages == ()
    assert doc.text == (
        "Tarrow Valley orchard\n\n"
        "The orchard planted 318 quince trees in the spring of 2019.\n\n"
        "- Pruning in March\n\n- Harvest in October\n\n"
        "Fruit | Trees | Planted\n"
        "Fruit: Quince; Trees: 318; Planted: 2019\n"
        "Fruit: Medlar; Planted: 2021\n\n"
        "Volunteers meet on Saturdays.")
    assert doc.page_at(10) is None


def test_docx_title_falls_back_to_the_first_heading(tmp_path):
    p = docfiles.write_docx(tmp_path / "t.docx", ["", ("heading", "Minutes of May"), "Text."])
    assert load(p).title == "Minutes of May"


def test_pptx_slides_are_pages_with_numbers_titles_tables_and_notes(tmp_path):
    p = docfiles.write_pptx(tmp_path / "deck.pptx", [
        {"title": "Glassworks review", "lines": ["Welcome"], "notes": "Thank the team."},
        {"title": "The kiln", "lines": ["The kiln runs at 1,320 degrees.", "Fired daily."],
         "table": [["Kiln", "Hours"], ["North", "16"]]},
        {"title": "Questions", "lines": []}])
    doc = load(p)
    assert doc.kind == "pptx" and doc.title == "Glassworks review"
    assert doc.text == (
        "Slide 1: Glassworks review\nWelcome\nNotes: Thank the team.\n\n"
        "Slide 2: The kiln\nThe kiln runs at 1,320 degrees.\nFired daily.\n"
        "Kiln | Hours\nKiln: North; Hours: 16\n\n"
        "Slide 3: Questions")
    assert len(doc.pages) == 3
    assert page_of(doc, "Slide 1") == 1 and page_of(doc, "Thank the team") == 1
    assert page_of(doc, "1,320 degrees") == 2 and page_of(doc, "Kiln: North") == 2
    assert page_of(doc, "Slide 3") == 3


def test_xlsx_sheets_are_named_and_rows_read_as_header_value(tmp_path):
    import datetime as dt

    p = docfiles.write_xlsx(tmp_path / "lights.xlsx", {
        "Lighthouses": [["Name", "Keeper", "Lit"], ["Skerry Light", "Morag Dunlop", 1861],
                        [None, None, None], ["Hook Point", "Ewan Bell", 1872.0]],
        "Costs": [["Item", "Amount", "Due"], ["Lamp", 12.5, dt.datetime(2024, 6, 1)]]})
    doc = load(p)
    assert doc.kind == "xlsx" and doc.title == "lights"
    assert doc.text == (
        "Sheet: Lighthouses\nName | Keeper | Lit\n"
        "Name: Skerry Light; Keeper: Morag Dunlop; Lit: 1861\n"
        "Name: Hook Point; Keeper: Ewan Bell; Lit: 1872\n\n"
        "Sheet: Costs\nItem | Amount | Due\nItem: Lamp; Amount: 12.5; Due: 2024-06-01")


def test_odt_ods_and_odp(tmp_path):
    odt = load(docfiles.write_odt(tmp_path / "bakery.odt", [
        ("heading", "Quill Street bakery"), "Rye loaves cost 4 pounds.",
        ("list", ["Open at six"]), ("table", [["Loaf", "Price"], ["Rye", "4"]])]))
    assert odt.kind == "odt" and odt.title == "Quill Street bakery"
    assert odt.text == ("Quill Street bakery\n\nRye loaves cost 4 pounds.\n\n- Open at six"
                        "\n\nLoaf | Price\nLoaf: Rye; Price: 4")
    ods = load(docfiles.write_ods(tmp_path / "birds.ods",
                                  {"Counts": [["Bird", "Count"], ["Puffin", "41"]]}))
    assert ods.kind == "ods" and ods.text == ("Sheet: Counts\nBird | Count\n"
                                              "Bird: Puffin; Count: 41")
    odp = load(docfiles.write_odp(tmp_path / "talk.odp", [
        {"title": "Opening", "lines": ["Hello"]},
        {"title": "The lighthouse", "lines": ["It was painted red in 1990."]}]))
    assert odp.kind == "odp" and odp.title == "Opening"
    assert odp.text == ("Slide 1: Opening\nHello\n\n"
                        "Slide 2: The lighthouse\nIt was painted red in 1990.")
    assert page_of(odp, "painted red") == 2 and page_of(odp, "Hello") == 1


def test_epub_chapters_in_spine_order_with_inline_tags_kept_in_the_line(tmp_path):
    p = docfiles.write_epub(tmp_path / "clock.epub", "The Clockmaker", [
        ("Chapter One", ["Ansel Varga arrived in <em>early</em> spring.", "He slept."]),
        ("Chapter Two", ["He repaired the tower clock with a <b>brass</b> pendulum."])])
    doc = load(p)
    assert doc.kind == "epub" and doc.title == "The Clockmaker"
    assert doc.text == ("Chapter One\n\nAnsel Varga arrived in early spring.\n\nHe slept."
                        "\n\nChapter Two\n\nHe repaired the tower clock with a brass "
                        "pendulum.")


def test_eml_header_lines_body_and_readable_attachments(tmp_path):
    memo = docfiles.write_docx(tmp_path / "memo.docx", ["The hall key is at the bar."])
    p = docfiles.write_eml(tmp_path / "choir.eml", "Ann Lee <ann@example.org>",
                           "Choir <choir@example.org>", "Rehearsal moved",
                           "Tue, 04 Jun 2024 10:00:00 +0100",
                           "Hello all,\n\nRehearsal moves to Fenwick Hall on Thursday.\n",
                           attachments=[("memo.docx", memo.read_bytes()),
                                        ("logo.png", b"\x89PNG not read")])
    doc = load(p)
    assert doc.kind == "eml" and doc.title == "Rehearsal moved"
    assert doc.text == (
        "From: Ann Lee <ann@example.org>\nTo: Choir <choir@example.org>\n"
        "Date: Tue, 04 Jun 2024 10:00:00 +0100\nSubject: Rehearsal moved\n\n"
        "Hello all,\n\nRehearsal moves to Fenwick Hall on Thursday.\n\n"
        "Attachment: memo.docx\n\nThe hall key is at the bar.\n\nAttachment: logo.png")


def test_eml_with_only_an_html_body(tmp_path):
    p = docfiles.write_eml(tmp_path / "h.eml", "a@example.org", "b@example.org", "News",
                           "Wed, 05 Jun 2024 09:00:00 +0000", "x",
                           html="<p>The <b>market</b> opens at dawn.</p><p>Bye</p>")
    # the plain part is preferred; drop it to leave the HTML one
    raw = p.read_bytes().replace(b"Content-Type: text/plain", b"Content-Type: text/x-nope")
    p.write_bytes(raw)
    assert load(p).text.endswith("Subject: News\n\nThe market opens at dawn.\n\nBye")


def test_rtf_paragraphs_and_escapes(tmp_path):
    p = docfiles.write_rtf(tmp_path / "ferry.rtf",
                           ["The ferry Marigold carries 64 passengers.", "Caf\u00e9 {open}."])
    doc = load(p)
    assert doc.kind == "rtf"
    assert doc.text == "The ferry Marigold carries 64 passengers.\n\nCaf\u00e9 {open}."


def test_csv_rows_read_as_header_value(tmp_path):
    (tmp_path / "towns.csv").write_text("Name,Town\nAnn,Karrow\nBob,\"Pell, North\"\n")
    doc = load(tmp_path / "towns.csv")
    assert doc.text == "Name | Town\nName: Ann; Town: Karrow\nName: Bob; Town: Pell, North"


def test_pdf_page_starts_and_page_of_each_fact(tmp_path):
    p = docfiles.write_pdf(tmp_path / "three.pdf", [
        ["The first page is an introduction."], ["The second page has a table."],
        ["The observatory dome was repainted green in 2021."]], title="Observatory")
    doc = load(p)
    assert doc.kind == "pdf" and doc.title == "Observatory" and len(doc.pages) == 3
    assert page_of(doc, "introduction") == 1 and page_of(doc, "second page") == 2
    assert page_of(doc, "dome was repainted") == 3
    # the text is what pypdf extracts, pages joined by a blank line, as before pages
    assert doc.text.count("\n\n") == 2 and doc.ocr_pages == 0


def test_blank_pdf_page_keeps_the_numbering(tmp_path):
    p = docfiles.write_pdf(tmp_path / "gap.pdf", [["Front page."], [], ["Back page."]])
    doc = load(p)
    assert doc.text == "Front page.\n\nBack page." and doc.ocr_pages == 0
    assert page_of(doc, "Back") == 3 and page_of(doc, "Front") == 1


@pytest.mark.parametrize("wrong,writer", [
    ("report.doc", lambda p: docfiles.write_docx(p, ["Saved as docx, named doc."])),
    ("table.xls", lambda p: p.write_text("<html><body><p>Saved as web page.</p></body></html>")),
    ("paper.txt", lambda p: docfiles.write_pdf(p, [["A PDF named txt."]])),
    ("notes.doc", lambda p: docfiles.write_rtf(p, ["RTF named doc."])),
])
def test_the_content_decides_the_reader(tmp_path, wrong, writer):
    tmp = tmp_path / ("x" + Path(wrong).suffix)
    writer(tmp)
    path = tmp_path / wrong
    tmp.rename(path)
    doc = load(path)
    assert doc.kind in ("docx", "html", "pdf", "rtf") and doc.kind != Path(wrong).suffix[1:]
    assert "named" in doc.text or "web page" in doc.text


def test_sniff_names_what_the_bytes_are(tmp_path):
    assert sniff(docfiles.pdf_pages([["x"]])) == "pdf"
    assert sniff(docfiles.write_docx(tmp_path / "a.docx", ["x"]).read_bytes()) == "docx"
    assert sniff(docfiles.write_pptx(tmp_path / "a.pptx", [{"title": "t", "lines": ["x"]}])
                 .read_bytes()) == "pptx"
    assert sniff(docfiles.write_xlsx(tmp_path / "a.xlsx", {"S": [["x"]]}).read_bytes()) \
        == "xlsx"
    assert sniff(docfiles.write_epub(tmp_path / "a.epub", "t", [("c", ["x"])])
                 .read_bytes()) == "epub"
    assert sniff(b"plain words") is None


def test_scan_lists_the_new_formats(tmp_path):
    for name in ("a.docx", "b.pptx", "c.xlsx", "d.epub", "e.eml", "f.odt", "g.rtf",
                 "h.png", "i.JPG", "j.csv", "k.exe", "l.zip"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in scan(tmp_path)] == [
        "a.docx", "b.pptx", "c.xlsx", "d.epub", "e.eml", "f.odt", "g.rtf", "h.png",
        "i.JPG", "j.csv"]


def test_a_missing_extra_is_named(tmp_path, monkeypatch):
    p = docfiles.write_docx(tmp_path / "a.docx", ["Text."])
    monkeypatch.setitem(sys.modules, "docx", None)  # import docx now fails
    with pytest.raises(DocumentError) as exc:
        load(p)
    assert str(exc.value) == ("a.docx: reading a .docx file needs the office extra, which "
                              "is not installed (pip install 'cited-rag[office]')")
