"""Read a folder's documents into ``Document`` objects: text, Markdown, HTML and PDF, and
(with the ``office`` extra) Word, PowerPoint, Excel, OpenDocument, EPUB, e-mail, RTF and
CSV files; with the ``ocr`` extra, scanned PDF pages and images. Each format's reader is
in its own module; this one finds the files, checks them and picks the reader."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import re
import stat as stat_mod
from collections.abc import Callable, Iterator
from pathlib import Path

from index.errors import CorpusError, DocumentError
from index.load.extract import Extracted
from index.load.formats import SUFFIX_KINDS, detect
from index.types import Document

log = logging.getLogger(__name__)

SUPPORTED = SUFFIX_KINDS  # extension -> reader; scan() lists files with these
MAX_FILE_BYTES = 20 * 1024 * 1024  # default limit for one file; RAG_MAX_FILE_MB overrides
MAX_FILE_ENV = "RAG_MAX_FILE_MB"


def max_file_bytes() -> int:
    """The largest file indexed, in bytes: ``$RAG_MAX_FILE_MB`` megabytes if set (a
    positive number), else ``MAX_FILE_BYTES``. Bigger files are skipped with a message, so
    one huge file cannot stall indexing or exhaust memory."""
    raw = os.environ.get(MAX_FILE_ENV, "").strip()
    if raw:
        try:
            mb = float(raw)
        except ValueError:
            mb = 0
        if mb > 0:
            return int(mb * 2**20)
        log.warning("%s=%r is not a positive number of megabytes; using %d MB",
                    MAX_FILE_ENV, raw, MAX_FILE_BYTES // 2**20)
    return MAX_FILE_BYTES


def doc_id_for(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def scan(root: Path, skipped: list[DocumentError] | None = None) -> list[Path]:
    """Every supported file under ``root``, recursively, sorted; hidden entries skipped.
    Symlinked folders are not followed, so a symlink loop cannot hang the scan; each one
    is reported in ``skipped`` (if given), naming it and why."""
    root = Path(root)
    if not root.exists():
        raise CorpusError(f"corpus folder not found: {root}")
    if root.is_file():
        raise CorpusError(f"{root} is a file; pass the folder that holds your documents")
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if skipped is not None:
            for d in dirnames:
                if os.path.islink(os.path.join(dirpath, d)):
                    skipped.append(_linked_folder(Path(dirpath) / d, root))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            if p.suffix.lower() in SUPPORTED:
                found.append(p)
    return found


def _linked_folder(path: Path, root: Path) -> DocumentError:
    rel = path.relative_to(root).as_posix()
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return DocumentError(rel, "broken or looping symbolic link to a folder; not followed")
    if path.parent.resolve().is_relative_to(target):
        return DocumentError(rel, f"symbolic link loop (points back at {target}); not followed")
    return DocumentError(rel, f"symbolic link to a folder ({target}); not followed, "
                              f"link the files or copy the folder in instead")


_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")  # C0 and C1 controls
Warn = Callable[[str], None]


def _decode(data: bytes, path: str, warn: Warn | None = None) -> str:
    if b"\x00" in data[:8192]:
        raise DocumentError(path, "binary data, not text (NUL bytes found)")
    guessed = False
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        guessed = True
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError:
            text = data.decode("latin-1")
    head = text[:8192]
    if head and len(_CONTROL.findall(head)) > max(8, len(head) // 20):
        raise DocumentError(path, "binary data, not text (control characters found)")
    if guessed:
        msg = f"{path}: not valid UTF-8, read as Windows-1252/Latin-1"
        log.warning("%s", msg)
        if warn:
            warn(msg)
    return text


# Text addressed to an AI model rather than to a reader: the usual prompt-injection moves.
_INSTRUCTIONS = re.compile(
    r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
    r"(?:previous|prior|above|earlier|preceding|system)\s+(?:instructions|prompts?|rules)"
    r"|\b(?:reveal|print|repeat|show|output|leak)\s+(?:\w+\s+){0,3}(?:system\s+prompt|"
    r"instructions you (?:were|have been) given)"
    r"|\byou\s+are\s+now\s+(?:an?\s+)?(?:AI|assistant|language model|DAN)\b",
    re.IGNORECASE)


def instruction_like(text: str) -> str | None:
    """The first phrase of ``text`` that reads as an instruction to an AI model (a prompt
    injection such as "Ignore all previous instructions"), else None. Such documents are
    still indexed as data - the prompts tell the model never to follow them - but the
    index report names them so that their owner can check them."""
    m = _INSTRUCTIONS.search(text)
    return " ".join(m.group().split()) if m else None


def _first_line_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return line[:200]
    return fallback


def _html_text(data: bytes, path: str, warn: Warn | None = None) -> tuple[str, str]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data, path, warn), "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    body = soup.body or soup
    text = body.get_text("\n")
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in text.splitlines()]
    text = "\n".join(ln for ln in lines if ln)
    return text, title


def read_error(doc_id: str, path: Path, exc: OSError) -> DocumentError:
    """A ``DocumentError`` that says in words why ``path`` could not be read."""
    if isinstance(exc, PermissionError):
        return DocumentError(doc_id, "permission denied (no read permission)")
    if isinstance(exc, FileNotFoundError):
        if os.path.islink(path):
            return DocumentError(doc_id, "broken symbolic link (its target does not exist)")
        return DocumentError(doc_id, "file disappeared while indexing")
    if exc.errno == errno.ELOOP:
        return DocumentError(doc_id, "symbolic link loop")
    if isinstance(exc, IsADirectoryError):
        return DocumentError(doc_id, "is a folder, not a file")
    return DocumentError(doc_id, f"cannot read file ({exc.strerror or exc})")


def check_readable(path: Path, doc_id: str) -> os.stat_result:
    """Stat ``path`` and refuse what must not be read: not a regular file, bigger than
    the size limit, or readable by nobody (mode 000). The last one matters when indexing
    as root, which can read anything: a file its owner made unreadable stays out."""
    try:
        st = path.stat()
    except OSError as exc:
        raise read_error(doc_id, path, exc) from exc
    if not stat_mod.S_ISREG(st.st_mode):
        raise DocumentError(doc_id, "not a regular file")
    if not st.st_mode & 0o444:
        raise DocumentError(doc_id, "permission denied (the file is readable by nobody)")
    limit = max_file_bytes()
    if st.st_size > limit:
        raise DocumentError(
            doc_id, f"file is {st.st_size / 2**20:.1f} MB, over the {limit / 2**20:g} MB "
                    f"limit for one file (set {MAX_FILE_ENV} to raise it, or split the file)")
    return st


def load_document(path: Path, root: Path, warn: Warn | None = None) -> Document:
    """Load one file. Raises ``DocumentError`` naming the file and the reason; calls
    ``warn(message)`` for what was read but is worth knowing (a guessed encoding, pages
    without text that OCR could not read)."""
    doc_id = doc_id_for(path, root)
    kind = SUPPORTED.get(path.suffix.lower())
    if kind is None:
        raise DocumentError(doc_id, f"unsupported file type {path.suffix!r}; "
                            f"supported: {', '.join(sorted(SUPPORTED))}")
    stat = check_readable(path, doc_id)
    limit = max_file_bytes()
    try:
        with open(path, "rb") as f:  # never more than the limit, even if the file grew
            data = f.read(limit + 1)
    except OSError as exc:
        raise read_error(doc_id, path, exc) from exc
    if len(data) > limit:
        raise DocumentError(doc_id, "file grew past the size limit while indexing")
    digest = hashlib.sha256(data).hexdigest()[:16]
    kind = detect(data, kind, doc_id)
    got = extract(data, kind, doc_id, limit, warn)
    for note in got.notes:
        log.warning("%s", note)
        if warn:
            warn(note)
    if not got.text.strip():
        raise DocumentError(doc_id, "no text found (empty file)")
    title = got.title or _first_line_title(got.text, path.stem)
    return Document(id=doc_id, title=title, text=got.text, kind=kind, hash=digest,
                    mtime=stat.st_mtime, pages=got.pages, ocr_pages=got.ocr_pages)


# the module each reader needs, and the extra of cited-rag that installs it
_NEEDS = {"docx": ("docx", "office"), "pptx": ("pptx", "office"),
          "xlsx": ("openpyxl", "office"), "odt": ("odf", "office"),
          "ods": ("odf", "office"), "odp": ("odf", "office"), "rtf": ("striprtf", "office"),
          "epub": ("defusedxml", "office")}


def extract(data: bytes, kind: str, doc_id: str, limit: int | None = None,
            warn: Warn | None = None) -> Extracted:
    """The text (title, page starts) of a file's bytes, read as ``kind``."""
    limit = max_file_bytes() if limit is None else limit
    try:
        return _extract(data, kind, doc_id, limit, warn)
    except ModuleNotFoundError as exc:
        module, extra = _NEEDS.get(kind, (exc.name or "", ""))
        if not extra or (exc.name or "").split(".")[0] != module:
            raise
        raise DocumentError(doc_id, f"reading {_a(kind)} file needs the {extra} extra, "
                                    f"which is not installed (pip install "
                                    f"'cited-rag[{extra}]')") from exc


def _a(kind: str) -> str:
    return f"an .{kind}" if kind[0] in "aeiou" else f"a .{kind}"


def _extract(data: bytes, kind: str, doc_id: str, limit: int,
             warn: Warn | None) -> Extracted:
    if kind in ("txt", "md"):
        return Extracted(_decode(data, doc_id, warn))
    if kind == "html":
        text, title = _html_text(data, doc_id, warn)
        return Extracted(text, title)
    if kind == "pdf":
        from index.load.pdf import read_pdf

        return read_pdf(data, doc_id)
    if kind == "image":
        from index.load.pdf import read_image_file

        return read_image_file(data, doc_id)
    if kind in ("docx", "pptx", "xlsx", "rtf"):
        from index.load import office

        return getattr(office, f"read_{kind}")(data, doc_id, limit)
    if kind == "csv":
        from index.load.office import read_csv

        return read_csv(_decode(data, doc_id, warn), doc_id, limit)
    if kind in ("odt", "ods", "odp"):
        from index.load.opendocument import read_odf

        return read_odf(data, doc_id, limit, kind)
    if kind == "epub":
        from index.load.epub import read_epub

        return read_epub(data, doc_id, limit)
    if kind == "eml":
        from index.load.mail import read_eml

        got = read_eml(data, doc_id, limit, _attachment_reader(doc_id, limit), notes := [])
        got.notes.extend(f"{doc_id}: {n}" for n in notes)
        return got
    raise DocumentError(doc_id, f"unsupported file type {kind!r}")


def _attachment_reader(doc_id: str, limit: int):
    """Reads an e-mail's attached documents (not images: OCR of every logo would cost
    seconds each and find little)."""

    def read(name: str, data: bytes) -> Extracted | None:
        kind = SUPPORTED.get(Path(name).suffix.lower())
        if kind is None or kind in ("image", "eml"):
            return None
        where = f"{doc_id} attachment {name}"
        return extract(data, detect(data, kind, where), where, limit)

    return read


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
