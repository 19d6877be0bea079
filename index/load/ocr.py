"""Reading text from images: scanned PDF pages and image files, with RapidOCR (PP-OCRv4
models run by ONNX Runtime; the models ship inside the ``rapidocr-onnxruntime`` wheel, so
nothing is downloaded). PDF pages are rendered by pypdfium2. Both come with the ``ocr``
extra; ``RAG_OCR=0`` turns OCR off."""

from __future__ import annotations

import importlib.util
import os
import threading
from functools import lru_cache
from statistics import median

OCR_ENV = "RAG_OCR"
INSTALL_HINT = "pip install 'cited-rag[ocr]'"
RENDER_DPI = 300  # scans are rendered at this resolution ...
MAX_SIDE = 2000  # ... then shrunk to this many pixels on the longer side (RapidOCR's limit)
_lock = threading.Lock()


def unavailable_reason() -> str | None:
    """Why OCR cannot run here (not installed, or turned off), or None when it can."""
    if os.environ.get(OCR_ENV, "").strip().lower() in ("0", "false", "no", "off"):
        return f"OCR is turned off ({OCR_ENV}=0)"
    for module in ("rapidocr_onnxruntime", "pypdfium2"):
        if importlib.util.find_spec(module) is None:
            return f"OCR is not installed ({INSTALL_HINT})"
    return None


@lru_cache(maxsize=1)
def _engine():
    from rapidocr_onnxruntime import RapidOCR

    return RapidOCR()


def fit(image):
    """``image`` (PIL) in RGB, shrunk so that its longer side is at most ``MAX_SIDE``."""
    image = image.convert("RGB")
    scale = MAX_SIDE / max(image.size)
    if scale < 1:
        image = image.resize((max(1, int(image.width * scale)),
                              max(1, int(image.height * scale))))
    return image


def read_image(image) -> str:
    """The text OCR finds in a PIL image: lines in reading order (top to bottom, left to
    right), a blank line where a gap between lines shows a new paragraph."""
    import numpy as np

    with _lock:  # one ONNX session, used by one thread at a time
        result, _ = _engine()(np.asarray(fit(image)))
    return layout([(box, text) for box, text, _score in result or []])


def layout(boxes: list[tuple[list, str]]) -> str:
    """Recognised text boxes (four corner points, text) as lines of text: boxes whose
    vertical centres lie within half a line's height of each other form one line."""
    items = []
    for box, text in boxes:
        ys = [p[1] for p in box]
        xs = [p[0] for p in box]
        if text.strip():
            items.append((min(ys), max(ys), min(xs), text.strip()))
    if not items:
        return ""
    height = median(b - t for t, b, _, _ in items) or 1.0
    items.sort(key=lambda it: ((it[0] + it[1]) / 2, it[2]))
    lines: list[list] = []
    for it in items:
        centre = (it[0] + it[1]) / 2
        if lines and abs(centre - lines[-1][0]) <= height / 2:
            lines[-1][2].append(it)
        else:
            lines.append([centre, it[0], [it]])
    out: list[str] = []
    last_top = None
    for _, top, parts in lines:
        if last_top is not None and top - last_top > 1.9 * height:
            out.append("")
        out.append(" ".join(p[3] for p in sorted(parts, key=lambda p: p[2])))
        last_top = top
    return "\n".join(out)


def render_pdf_page(data: bytes, index: int):
    """Page ``index`` (0-based) of a PDF as a PIL image, for OCR."""
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(data)
    try:
        page = pdf[index]
        try:
            width, height = page.get_size()
            scale = min(RENDER_DPI / 72, MAX_SIDE / max(width, height, 1))
            return page.render(scale=scale).to_pil()
        finally:
            page.close()
    finally:
        pdf.close()
