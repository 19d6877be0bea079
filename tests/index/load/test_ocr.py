"""Scans and images: read by OCR (RapidOCR, models from its wheel) when it is installed,
counted in the index summary, and named with the extra to install when it is not."""

from __future__ import annotations

import pytest

from index.builder import build_index
from index.errors import DocumentError
from index.load import ocr
from index.load.loaders import load_document
from tests import docfiles
from tests.fakes import HashEmbedder


def test_layout_orders_boxes_into_lines_and_paragraphs():
    def box(x, y, w=100, h=20):
        return [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]

    boxes = [(box(300, 102), "world."), (box(100, 100), "Hello"),  # one line, two boxes
             (box(100, 130), "Second line."),
             (box(100, 220), "New paragraph after a gap.")]
    assert ocr.layout(boxes) == "Hello world.\nSecond line.\n\nNew paragraph after a gap."
    assert ocr.layout([]) == ""


def test_ocr_turned_off_or_missing_is_named(monkeypatch):
    monkeypatch.setenv("RAG_OCR", "0")
    assert ocr.unavailable_reason() == "OCR is turned off (RAG_OCR=0)"
    monkeypatch.delenv("RAG_OCR")
    real = ocr.importlib.util.find_spec
    monkeypatch.setattr(ocr.importlib.util, "find_spec",
                        lambda name: None if name == "rapidocr_onnxruntime" else real(name))
    assert ocr.unavailable_reason() == "OCR is not installed (pip install 'cited-rag[ocr]')"


def test_scan_without_ocr_is_skipped_with_the_extra_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_OCR", "0")
    p = docfiles.write_scan_pdf(tmp_path / "scan.pdf", [["The canal lock opened in 1794."]])
    with pytest.raises(DocumentError) as exc:
        load_document(p, tmp_path)
    assert str(exc.value) == ("scan.pdf: no text layer on its 1 page (a scan?); reading it "
                              "needs OCR: OCR is turned off (RAG_OCR=0)")
    img = docfiles.write_image(tmp_path / "sign.png", ["Museum opens at nine."])
    with pytest.raises(DocumentError, match="sign.png: an image: its text can be read only "
                                            "by OCR; OCR is turned off"):
        load_document(img, tmp_path)


def test_mixed_pdf_without_ocr_keeps_its_text_pages_and_warns(tmp_path, monkeypatch):
    monkeypatch.setenv("RAG_OCR", "0")
    import io

    from pypdf import PdfReader, PdfWriter

    text = PdfReader(io.BytesIO(docfiles.pdf_pages([["Typed page one."]])))
    scan = PdfReader(docfiles.write_scan_pdf(tmp_path / "s.pdf", [["Scanned page."]]))
    w = PdfWriter()
    w.add_page(text.pages[0])
    w.add_page(scan.pages[0])
    with open(tmp_path / "mixed.pdf", "wb") as f:
        w.write(f)
    (tmp_path / "s.pdf").unlink()
    warnings: list[str] = []
    doc = load_document(tmp_path / "mixed.pdf", tmp_path, warn=warnings.append)
    assert doc.text == "Typed page one." and len(doc.pages) == 2
    assert warnings == ["mixed.pdf: no text layer on page 2 (scanned?), so not read; OCR is "
                        "turned off (RAG_OCR=0)"]


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    root = tmp_path_factory.mktemp("scans")
    docfiles.write_scan_pdf(root / "canal.pdf", [
        ["Brindle canal survey"],
        ["The Brindle canal lock opened in 1794.", "It holds forty boats."]])
    docfiles.write_image(root / "sign.png", ["The museum opens at nine on Sundays."])
    docfiles.write_image(root / "sign.jpg", ["Closed on Mondays."])
    return root


def test_scanned_pdf_is_read_by_ocr_with_its_pages(scans):
    if ocr.unavailable_reason():
        pytest.skip(ocr.unavailable_reason())
    doc = load_document(scans / "canal.pdf", scans)
    assert doc.ocr_pages == 2 and len(doc.pages) == 2
    assert "Brindle canal lock opened in 1794" in doc.text
    assert doc.page_at(doc.text.index("1794")) == 2
    assert doc.page_at(doc.text.index("survey")) == 1


def test_images_are_read_by_ocr(scans):
    if ocr.unavailable_reason():
        pytest.skip(ocr.unavailable_reason())
    png = load_document(scans / "sign.png", scans)
    assert png.kind == "image" and png.ocr_pages == 1 and png.pages == ()
    assert png.text == "The museum opens at nine on Sundays."
    assert load_document(scans / "sign.jpg", scans).text == "Closed on Mondays."


def test_index_summary_counts_pages_read_by_ocr(scans, tmp_path):
    if ocr.unavailable_reason():
        pytest.skip(ocr.unavailable_reason())
    report = build_index(scans, tmp_path / "idx", HashEmbedder())
    assert report.ocr_pages == 4 and not report.errors
    assert "; 4 pages read by OCR (" in report.summary()
    again = build_index(scans, tmp_path / "idx", HashEmbedder())  # unchanged: not read again
    assert again.ocr_pages == 0 and "OCR" not in again.summary()


def test_no_model_is_downloaded(monkeypatch):
    """The models are files inside the installed package."""
    if ocr.unavailable_reason():
        pytest.skip(ocr.unavailable_reason())
    import importlib.util
    from pathlib import Path

    root = Path(importlib.util.find_spec("rapidocr_onnxruntime").origin).parent
    models = sorted(p.name for p in (root / "models").glob("*.onnx"))
    assert models == ["ch_PP-OCRv4_det_infer.onnx", "ch_PP-OCRv4_rec_infer.onnx",
                      "ch_ppocr_mobile_v2.0_cls_infer.onnx"]
    import socket

    def no_network(*a, **kw):
        raise AssertionError("OCR tried to open a network connection")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    ocr._engine.cache_clear()
    assert ocr.read_image(docfiles.text_image(["Offline"])) == "Offline"
