"""Which format a file is in: by its extension, then by its content, so that a Word file
named .doc, an HTML page named .xls or a PDF named .txt is read for what it is, and an
old binary Office file or a password-protected one is named with the reason."""

from __future__ import annotations

import io
import zipfile

from index.errors import DocumentError

# extension -> the kind of reader it names
SUFFIX_KINDS = {
    ".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md",
    ".html": "html", ".htm": "html", ".pdf": "pdf",
    ".docx": "docx", ".docm": "docx", ".pptx": "pptx", ".pptm": "pptx",
    ".xlsx": "xlsx", ".xlsm": "xlsx", ".csv": "csv",
    ".odt": "odt", ".ods": "ods", ".odp": "odp",
    ".epub": "epub", ".eml": "eml", ".rtf": "rtf",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".tif": "image", ".tiff": "image",
    ".bmp": "image", ".webp": "image",
    # older formats: read when the content is in fact one of the above (Word saves .doc
    # files as RTF or HTML too), else named with the reason
    ".doc": "doc", ".xls": "xls", ".ppt": "ppt", ".msg": "msg",
}
TEXT_KINDS = frozenset({"txt", "md", "html", "csv", "eml"})
PAGED_KINDS = frozenset({"pdf", "pptx", "odp", "image"})

_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"II*\x00", b"MM\x00*", b"BM")
_ODF_MIMETYPES = {"application/vnd.oasis.opendocument.text": "odt",
                  "application/vnd.oasis.opendocument.spreadsheet": "ods",
                  "application/vnd.oasis.opendocument.presentation": "odp",
                  "application/epub+zip": "epub"}
_OOXML_PARTS = {"word/document.xml": "docx", "ppt/presentation.xml": "pptx",
                "xl/workbook.xml": "xlsx"}
NAMES = {"pdf": "PDF", "docx": "Word document", "pptx": "PowerPoint presentation",
         "xlsx": "Excel workbook", "odt": "OpenDocument text", "ods": "OpenDocument "
         "spreadsheet", "odp": "OpenDocument presentation", "epub": "EPUB e-book",
         "eml": "e-mail", "rtf": "RTF document", "image": "image", "csv": "CSV table"}


def utf16(name: str) -> bytes:
    return name.encode("utf-16-le")


def _ole_kind(data: bytes, path: str) -> str:
    """Name what an OLE2 compound file (the container of old Office files) holds; it is
    never read, so this raises ``DocumentError`` with the reason."""
    if utf16("EncryptedPackage") in data or utf16("EncryptionInfo") in data:
        raise DocumentError(path, "password-protected (encrypted) Office file; open it, "
                                  "remove the password and save it again to index it")
    if utf16("WordDocument") in data:
        raise DocumentError(path, "old Word 97-2003 format (.doc), which is not read; "
                                  "save it as .docx to index it")
    if utf16("Workbook") in data or utf16("Book") in data:
        raise DocumentError(path, "old Excel 97-2003 format (.xls), which is not read; "
                                  "save it as .xlsx to index it")
    if utf16("PowerPoint Document") in data:
        raise DocumentError(path, "old PowerPoint 97-2003 format (.ppt), which is not "
                                  "read; save it as .pptx to index it")
    if utf16("__substg1.0_") in data:
        raise DocumentError(path, "Outlook message (.msg), which is not read; save or "
                                  "drag the message out as .eml to index it")
    raise DocumentError(path, "old Office (OLE2) file, which is not read; save it in a "
                              "current format (.docx, .xlsx, .pptx) to index it")


def _zip_kind(data: bytes) -> str | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            names = set(zf.namelist())
            if "mimetype" in names:
                mime = zf.read("mimetype")[:100].decode("ascii", "replace").strip()
                if mime in _ODF_MIMETYPES:
                    return _ODF_MIMETYPES[mime]
            for part, kind in _OOXML_PARTS.items():
                if part in names:
                    return kind
            if "META-INF/container.xml" in names:
                return "epub"
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return None  # a damaged zip: the reader its extension names says what is wrong
    return "zip"


def sniff(data: bytes) -> str | None:
    """The kind the content shows (``pdf``, ``docx``, ``image``, ``rtf``, ``ole``...), or
    None when the bytes are not one of the binary formats (text, HTML, e-mail)."""
    head = data[:1024]
    if b"%PDF-" in head:
        return "pdf"
    if data.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    if data.startswith(_OLE):
        return "ole"
    if data.lstrip()[:5] == b"{\\rtf":
        return "rtf"
    if data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        return "image"
    lowered = head.lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def detect(data: bytes, suffix_kind: str, path: str) -> str:
    """The reader for a file: its content decides when it is one of the binary formats,
    its extension otherwise. A text file (.txt, .md, .html, .csv, .eml) is read as text
    whatever its bytes, except that a PDF or Office file named .txt is read as such."""
    found = sniff(data)
    if suffix_kind in TEXT_KINDS:
        if found in ("pdf", "docx", "pptx", "xlsx", "odt", "ods", "odp", "epub", "rtf"):
            return found
        return suffix_kind
    if found == "ole":
        _ole_kind(data, path)
    if found == "zip":
        what = NAMES.get(suffix_kind, "document")
        raise DocumentError(path, f"not a {what}: a zip archive without the parts of one "
                                  f"(corrupted, or another kind of archive)")
    if found is not None:
        return found
    if suffix_kind in ("doc", "xls", "ppt", "msg"):
        raise DocumentError(path, f"not a readable .{suffix_kind} file (unrecognised "
                                  f"content)")
    return suffix_kind
