"""OpenDocument text (.odt), spreadsheets (.ods) and presentations (.odp) as text, read
with odfpy (the ``office`` extra): paragraphs, headings and list items in order, tables
as "Header: value" rows, sheets with their names, slides with their numbers and titles
(each slide a page)."""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath

from index.errors import DocumentError
from index.load.extract import (
    UNPACKED_FACTOR,
    Extracted,
    TextBuilder,
    check_text_size,
    check_unpacked_size,
    table_rows,
)

TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
DRAW_NS = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
PRES_NS = "urn:oasis:names:tc:opendocument:xmlns:presentation:1.0"
MAX_REPEAT = 100  # a cell or row "repeated" more often is an empty filler, kept once

WHAT = {"odt": "OpenDocument text", "ods": "OpenDocument spreadsheet",
        "odp": "OpenDocument presentation"}


def _check_package(data: bytes, path: str, what: str, limit: int) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            check_unpacked_size(zf, path, limit * UNPACKED_FACTOR)
            try:
                manifest = zf.read("META-INF/manifest.xml")
            except KeyError:
                manifest = b""
    except zipfile.BadZipFile as exc:
        raise DocumentError(path, f"corrupted or unreadable {what} ({exc})") from exc
    if b"encryption-data" in manifest:
        raise DocumentError(path, f"password-protected {what}; open it, remove the "
                                  f"password and save it again to index it")


def _text(element) -> str:
    from odf import teletype

    return teletype.extractText(element)


def _elements(node):
    return [c for c in node.childNodes if c.nodeType == c.ELEMENT_NODE]


def _repeat(element, attr: str) -> int:
    raw = element.attributes.get((TABLE_NS, attr))
    try:
        return max(1, int(raw)) if raw else 1
    except ValueError:
        return 1


def _table(table) -> list[str]:
    rows: list[list[str]] = []

    def walk_rows(node) -> None:
        for child in _elements(node):
            ns, name = child.qname
            if ns != TABLE_NS:
                continue
            if name == "table-row":
                cells: list[str] = []
                for cell in _elements(child):
                    if cell.qname[1] not in ("table-cell", "covered-table-cell"):
                        continue
                    value = " ".join(_text(p) for p in _elements(cell))
                    n = _repeat(cell, "number-columns-repeated")
                    cells.extend([value] * (n if value.strip() and n <= MAX_REPEAT else 1))
                if any(c.strip() for c in cells):
                    n = _repeat(child, "number-rows-repeated")
                    rows.extend([cells] * (n if n <= MAX_REPEAT else 1))
            elif name in ("table-header-rows", "table-rows", "table-row-group"):
                walk_rows(child)

    walk_rows(table)
    return table_rows(rows)


def _blocks(node, b: TextBuilder, path: str, limit: int, prefix: str = "") -> None:
    """Paragraphs, headings, lists and tables under ``node``, in document order."""
    for child in _elements(node):
        ns, name = child.qname
        if ns == TEXT_NS and name in ("p", "h"):
            text = _text(child)
            b.block(f"{prefix}{text}" if prefix and text.strip() else text)
        elif ns == TEXT_NS and name in ("list", "list-item", "list-header"):
            _blocks(child, b, path, limit, "- ")
        elif ns == TEXT_NS and name in ("section", "index-body", "table-of-content"):
            _blocks(child, b, path, limit, prefix)
        elif ns == TABLE_NS and name == "table":
            rows = _table(child)
            if rows:
                b.block(rows[0])
                for row in rows[1:]:
                    b.line(row)
        elif ns == DRAW_NS and name in ("frame", "text-box"):
            _blocks(child, b, path, limit, prefix)
        check_text_size(b.size, path, limit)


def _title(doc) -> str:
    from odf import dc

    for el in doc.meta.getElementsByType(dc.Title):
        return _text(el)
    return ""


def read_odf(data: bytes, path: str, limit: int, kind: str) -> Extracted:
    """Read an .odt, .ods or .odp file (``kind``)."""
    from odf.opendocument import load

    what = WHAT[kind]
    _check_package(data, path, what, limit)
    try:
        doc = load(io.BytesIO(data))
        b = TextBuilder()
        first = ""
        if kind == "odt":
            _blocks(doc.text, b, path, limit)
        elif kind == "ods":
            for table in _elements(doc.spreadsheet):
                if table.qname != (TABLE_NS, "table"):
                    continue
                b.block(f"Sheet: {table.getAttribute('name')}")
                for row in _table(table):
                    b.line(row)
                check_text_size(b.size, path, limit)
        else:
            first = _slides(doc, b, path, limit)
        title = _title(doc) or first or (PurePosixPath(path).stem if kind == "ods" else "")
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged files raise many kinds
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise DocumentError(path, f"corrupted or unreadable {what} ({detail})") from exc
    return b.build(title, paged=kind == "odp")


def _slides(doc, b: TextBuilder, path: str, limit: int) -> str:
    """Each slide of a presentation as a page: "Slide N: title", its text, its notes.
    Returns the first slide's title."""
    first = ""
    pages = [p for p in _elements(doc.presentation) if p.qname == (DRAW_NS, "page")]
    for number, page in enumerate(pages, start=1):
        b.new_page()
        title, body, notes = "", [], []
        for frame in _elements(page):
            if frame.qname == (PRES_NS, "notes"):
                notes.extend(_text(p) for f in _elements(frame) for p in _frame_paras(f))
                continue
            cls = frame.attributes.get((PRES_NS, "class"), "")
            paras = [_text(p) for p in _frame_paras(frame)]
            if cls == "title" and not title:
                title = " ".join(" ".join(paras).split())
            elif cls not in ("page-number", "date-time", "footer", "header"):
                body.extend(paras)
        first = first or title
        b.block(f"Slide {number}: {title}" if title else f"Slide {number}")
        for line in body:
            b.line(line)
        note = " ".join(n for n in notes if n.strip())
        if note:
            b.line(f"Notes: {note}")
        check_text_size(b.size, path, limit)
    return first


def _frame_paras(node) -> list:
    """The paragraphs inside a drawing frame (text boxes, lists), in order."""
    out = []
    for child in _elements(node):
        if child.qname[0] == TEXT_NS and child.qname[1] in ("p", "h"):
            out.append(child)
        else:
            out.extend(_frame_paras(child))
    return out
