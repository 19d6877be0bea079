"""PDF files and images as text with page boundaries: pypdf reads each page's text layer;
a page without one (a scan) is read by OCR when it is installed (``index.load.ocr``), and
named otherwise. An image file is read by OCR, each frame of a TIFF a page."""

from __future__ import annotations

import io
import re
import time

from index.errors import DocumentError
from index.load import ocr
from index.load.extract import Extracted, TextBuilder


def _pages_list(numbers: list[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[:10])
    more = f" and {len(numbers) - 10} more" if len(numbers) > 10 else ""
    return f"page{'s' if len(numbers) > 1 else ''} {shown}{more}"


def _open(data: bytes, path: str):
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError

    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted:
        try:
            opened = reader.decrypt("")  # a PDF locked only against editing opens so
        except (DependencyError, NotImplementedError, FileNotDecryptedError) as exc:
            raise DocumentError(path, f"encrypted PDF that cannot be opened ({exc})") from exc
        if not opened:
            raise DocumentError(path, "password-protected PDF; remove the password (print "
                                      "or save it again without one) to index it")
    return reader


def read_pdf(data: bytes, path: str) -> Extracted:
    """The text of every page, pages joined by a blank line, and where each starts."""
    from pypdf.errors import PdfReadError

    try:
        reader = _open(data, path)
        texts = [(page.extract_text() or "").strip() for page in reader.pages]
        # a page without text and without any image or drawing object is blank, not a scan
        blank = [i for i, t in enumerate(texts) if not t and _has_objects(reader.pages[i])]
        meta = reader.metadata
        title = (meta.title or "") if meta else ""
    except DocumentError:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(path, f"corrupted or unreadable PDF ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - pypdf raises many kinds on damaged files
        raise DocumentError(path, f"corrupted or unreadable PDF "
                                  f"({type(exc).__name__}: {exc})") from exc
    notes: list[str] = []
    ocr_pages = 0
    if blank:
        why = ocr.unavailable_reason()
        if why is None:
            for i in blank:
                texts[i] = _ocr_page(data, i, path)
            ocr_pages = len(blank)
        elif not any(texts):
            raise DocumentError(path, f"no text layer on its {len(texts)} "
                                      f"page{'s' if len(texts) > 1 else ''} (a scan?); "
                                      f"reading it needs OCR: {why}")
        else:
            notes.append(f"{path}: no text layer on {_pages_list([i + 1 for i in blank])} "
                         f"(scanned?), so not read; {why}")
    b = TextBuilder()
    for text in texts:
        b.new_page()
        b.block(text, raw=True)
    out = b.build(str(title).strip(), paged=True)
    out.ocr_pages, out.notes = ocr_pages, notes
    return out


_DRAWS_OBJECT = re.compile(rb"/[^\s/\[\]()<>{}%]+\s+Do\b|\bBI\b")


def _has_objects(page) -> bool:
    """Whether a page draws an image or a form (what a scan is made of): its content
    paints an XObject ("/Im0 Do") or holds an inline image ("BI")."""
    try:
        contents = page.get_contents()
        return contents is not None and bool(_DRAWS_OBJECT.search(contents.get_data()))
    except Exception:  # noqa: BLE001 - unreadable contents: nothing OCR could read either
        return False


def _ocr_page(data: bytes, index: int, path: str) -> str:
    try:
        image = ocr.render_pdf_page(data, index)
    except Exception as exc:  # noqa: BLE001 - pdfium's errors on a damaged page
        raise DocumentError(path, f"page {index + 1} has no text layer and could not be "
                                  f"rendered for OCR ({exc})") from exc
    try:
        return ocr.read_image(image).strip()
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors
        raise DocumentError(path, f"OCR failed on page {index + 1} ({exc})") from exc


def read_image_file(data: bytes, path: str) -> Extracted:
    """An image file's text, by OCR; each frame of a multi-page TIFF is a page."""
    why = ocr.unavailable_reason()
    if why is not None:
        raise DocumentError(path, f"an image: its text can be read only by OCR; {why}")
    from PIL import Image, ImageSequence, UnidentifiedImageError

    t0 = time.perf_counter()
    b = TextBuilder()
    frames = 0
    try:
        with Image.open(io.BytesIO(data)) as img:
            for frame in ImageSequence.Iterator(img):
                frames += 1
                b.new_page()
                b.block(ocr.read_image(frame), raw=True)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            Image.DecompressionBombError) as exc:
        raise DocumentError(path, f"corrupted or unreadable image ({exc})") from exc
    out = b.build(paged=frames > 1)
    out.ocr_pages = frames
    if not out.text.strip():
        raise DocumentError(path, f"no text found in the image (OCR read nothing in "
                                  f"{time.perf_counter() - t0:.0f} s)")
    return out
