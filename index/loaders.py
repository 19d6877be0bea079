"""Read .txt, .md, .html and .pdf files into ``Document`` objects."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path

from index.errors import CorpusError, DocumentError
from index.types import Document

log = logging.getLogger(__name__)

SUPPORTED = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md",
             ".html": "html", ".htm": "html", ".pdf": "pdf"}
MAX_FILE_BYTES = 200 * 1024 * 1024


def doc_id_for(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan(root: Path) -> list[Path]:
    """Every supported file under ``root``, recursively, sorted; hidden entries skipped.
    Symlinked folders are not followed, so a symlink loop cannot hang the scan."""
    root = Path(root)
    if not root.exists():
        raise CorpusError(f"corpus folder not found: {root}")
    if root.is_file():
        raise CorpusError(f"{root} is a file; pass the folder that holds your documents")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            if p.suffix.lower() in SUPPORTED:
                found.append(p)
    return found


def _decode(data: bytes, path: str) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentError(path, "binary data, not text (NUL bytes found)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        log.warning("%s: not valid UTF-8, read as Windows-1252/Latin-1", path)
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            return data.decode("latin-1")


def _first_line_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return fallback


def _html_text(data: bytes, path: str) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data, path), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    body = soup.body or soup
    text = body.get_text("\n")
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in text.splitlines()]
    text = "\n".join(ln for ln in lines if ln)
    return text, title


def _pdf_text(data: bytes, path: str) -> tuple[str, str]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        meta = reader.metadata
        title = (meta.title or "") if meta else ""
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise DocumentError(path, f"corrupted or unreadable PDF ({exc})") from exc
    return "\n\n".join(p for p in pages if p), str(title).strip()


def load_document(path: Path, root: Path) -> Document:
    """Load one file. Raises ``DocumentError`` naming the file and the reason."""
    doc_id = doc_id_for(path, root)
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise DocumentError(doc_id, f"unsupported file type {path.suffix!r}; "
                            f"supported: {', '.join(sorted(SUPPORTED))}")
    try:
        stat = path.stat()
        if stat.st_size > MAX_FILE_BYTES:
            raise DocumentError(doc_id, f"file is larger than {MAX_FILE_BYTES // 2**20} MB")
        data = path.read_bytes()
    except PermissionError as exc:
        raise DocumentError(doc_id, "permission denied") from exc
    except FileNotFoundError as exc:
        raise DocumentError(doc_id, "file disappeared while indexing") from exc
    except OSError as exc:
        raise DocumentError(doc_id, f"cannot read file ({exc.strerror or exc})") from exc
    digest = hashlib.sha256(data).hexdigest()[:16]
    if kind in ("txt", "md"):
        text, title = _decode(data, doc_id), ""
    elif kind == "html":
        text, title = _html_text(data, doc_id)
    else:
        text, title = _pdf_text(data, doc_id)
    if not text.strip():
        raise DocumentError(doc_id, "no text found (empty file)")
    title = title or _first_line_title(text, path.stem)
    return Document(id=doc_id, title=title, text=text, kind=kind, hash=digest,
                    mtime=stat.st_mtime)


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def iter_documents(root: Path) -> Iterator[Document | DocumentError]:
    """Yield a ``Document`` or a ``DocumentError`` for every supported file."""
    root = Path(root)
    for path in scan(root):
        try:
            yield load_document(path, root)
        except DocumentError as err:
            yield err
