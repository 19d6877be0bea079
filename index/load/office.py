"""Word (.docx), PowerPoint (.pptx), Excel (.xlsx), RTF and CSV files as text: paragraphs
and headings in reading order, tables as "Header: value" rows, slides with their numbers
and titles (each slide a page), sheets with their names. python-docx, python-pptx,
openpyxl and striprtf do the reading (the ``office`` extra)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable
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


def _open_zip(data: bytes, path: str, what: str, limit: int) -> None:
    """Check a packed Office file before a library parses it: a real zip, not too big
    once unpacked."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            check_unpacked_size(zf, path, limit * UNPACKED_FACTOR)
    except zipfile.BadZipFile as exc:
        raise DocumentError(path, f"corrupted or unreadable {what} ({exc})") from exc


def unreadable(path: str, what: str, exc: Exception) -> DocumentError:
    detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return DocumentError(path, f"corrupted or unreadable {what} ({detail})")


# ---- Word --------------------------------------------------------------------------

def _docx_table(table) -> list[str]:
    rows = []
    for row in table.rows:
        cells, last = [], None
        for cell in row.cells:  # a merged cell repeats: keep it once
            if last is not None and cell._tc is last:
                continue
            last = cell._tc
            cells.append(cell.text)
        rows.append(cells)
    return table_rows(rows)


def _is_list_item(paragraph, style: str) -> bool:
    ppr = paragraph._p.pPr
    return style.startswith("List") or (ppr is not None and ppr.numPr is not None)


def read_docx(data: bytes, path: str, limit: int) -> Extracted:
    import docx
    from docx.table import Table

    _open_zip(data, path, "Word document", limit)
    try:
        document = docx.Document(io.BytesIO(data))
        b = TextBuilder()
        heading = ""
        for item in document.iter_inner_content():
            if isinstance(item, Table):
                rows = _docx_table(item)
                if rows:
                    b.block(rows[0])
                    for row in rows[1:]:
                        b.line(row)
            else:
                text = item.text
                style = (item.style.name if item.style is not None else "") or ""
                if not heading and text.strip() and style.startswith(("Title", "Heading")):
                    heading = text
                b.block(f"- {text}" if text.strip() and _is_list_item(item, style) else text)
            check_text_size(b.size, path, limit)
        title = document.core_properties.title or heading
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - damaged files raise many kinds
        raise unreadable(path, "Word document", exc) from exc
    return b.build(title)


# ---- PowerPoint ----------------------------------------------------------------------

def _shape_lines(shape) -> list[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
        return [ln for s in _reading_order(shape.shapes) for ln in _shape_lines(s)]
    if getattr(shape, "has_table", False) and shape.has_table:
        return table_rows([c.text for c in row.cells] for row in shape.table.rows)
    if shape.has_text_frame:
        return [p_text for p in shape.text_frame.paragraphs if (p_text := _para(p))]
    return []


def _para(paragraph) -> str:
    return "".join(r.text for r in paragraph.runs) or paragraph.text


def _reading_order(shapes) -> list:
    return sorted(shapes, key=lambda s: ((s.top or 0) // 10_000, s.left or 0))


_SKIPPED_PLACEHOLDERS = {"DATE", "FOOTER", "SLIDE_NUMBER", "HEADER"}


def read_pptx(data: bytes, path: str, limit: int) -> Extracted:
    from pptx import Presentation

    _open_zip(data, path, "PowerPoint presentation", limit)
    try:
        prs = Presentation(io.BytesIO(data))
        b = TextBuilder()
        first_title = ""
        for number, slide in enumerate(prs.slides, start=1):
            b.new_page()
            title_shape = slide.shapes.title
            title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None \
                else ""
            first_title = first_title or title
            b.block(f"Slide {number}: {title}" if title else f"Slide {number}")
            for shape in _reading_order(slide.shapes):
                if title_shape is not None and shape.shape_id == title_shape.shape_id:
                    continue
                if shape.is_placeholder and \
                        shape.placeholder_format.type.name in _SKIPPED_PLACEHOLDERS:
                    continue
                for line in _shape_lines(shape):
                    b.line(line)
            if slide.has_notes_slide:
                notes = slide.notes_slide.notes_text_frame
                if notes is not None and notes.text.strip():
                    b.line(f"Notes: {notes.text}")
            check_text_size(b.size, path, limit)
        title = prs.core_properties.title or first_title
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise unreadable(path, "PowerPoint presentation", exc) from exc
    return b.build(title, paged=True)


# ---- Excel ---------------------------------------------------------------------------

def excel_value(value: object) -> str:
    """A cell's value as a person reads it: 4812 (not 4812.0), dates as YYYY-MM-DD."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:.10g}"
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else \
            value.isoformat(sep=" ", timespec="minutes")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def read_xlsx(data: bytes, path: str, limit: int) -> Extracted:
    import openpyxl

    _open_zip(data, path, "Excel workbook", limit)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            b = TextBuilder()
            for ws in wb.worksheets:
                b.block(f"Sheet: {ws.title}")
                rows = ([excel_value(v) for v in row] for row in ws.iter_rows(values_only=True))
                for i, line in enumerate(table_rows(_bounded(rows, b, path, limit))):
                    b.line(line)
                    if i % 1000 == 0:
                        check_text_size(b.size, path, limit)
            title = wb.properties.title or PurePosixPath(path).stem
        finally:
            wb.close()
    except DocumentError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise unreadable(path, "Excel workbook", exc) from exc
    return b.build(title)


def _bounded(rows: Iterable[list[str]], b: TextBuilder, path: str, limit: int):
    for i, row in enumerate(rows):
        if i % 1000 == 0:
            check_text_size(b.size, path, limit)
        yield row


# ---- RTF and CSV ---------------------------------------------------------------------

def read_rtf(data: bytes, path: str, limit: int) -> Extracted:
    from striprtf.striprtf import rtf_to_text

    try:
        raw = rtf_to_text(data.decode("latin-1"), errors="replace")
    except Exception as exc:  # noqa: BLE001
        raise unreadable(path, "RTF document", exc) from exc
    b = TextBuilder()
    for para in raw.split("\n"):
        b.block(para.replace("|", " | ").strip(" |") if "|" in para else para)
    check_text_size(b.size, path, limit)
    return b.build()


def read_csv(text: str, path: str, limit: int) -> Extracted:
    """A CSV (or tab-separated) file as a table: "Header: value; ..." rows."""
    sample = text[:8192]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    b = TextBuilder()
    try:
        lines = table_rows(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise DocumentError(path, f"unreadable CSV table ({exc})") from exc
    for line in lines:
        b.line(line)
    check_text_size(b.size, path, limit)
    return b.build(PurePosixPath(path).stem)

