"""What the format readers share: the text they build, with page starts; tables as rows a
person can read; HTML as lines; and the limits that keep a small file from unpacking into
a huge one."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from index.errors import DocumentError

# A packed format (Office, OpenDocument, EPUB) may unpack to this many times the size
# limit for one file (RAG_MAX_FILE_MB) before it is refused as too big to read.
UNPACKED_FACTOR = 5


@dataclass
class Extracted:
    """A file's text as the index holds it, its title, where each page starts (PDF
    pages, slides, TIFF frames; empty for formats without pages), how many pages were
    read by OCR, and notes worth telling the user (pages that could not be read)."""

    text: str
    title: str = ""
    pages: tuple[int, ...] = ()
    ocr_pages: int = 0
    notes: list[str] = field(default_factory=list)


_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n{3,}")


def clean_block(text: str) -> str:
    """A block's text with runs of spaces collapsed, lines trimmed and at most one blank
    line in a row."""
    lines = [_SPACES.sub(" ", ln).strip() for ln in text.replace("\r\n", "\n")
             .replace("\r", "\n").replace("\v", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")


class TextBuilder:
    """Builds a document's text from blocks (paragraphs, headings, table rows), one
    blank line between blocks, and records the offset where each page starts."""

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._length = 0
        self._pages: list[int] = []
        self._pending = 0  # pages begun whose first block has not come yet

    def new_page(self) -> None:
        """The blocks that follow belong to the next page (or slide)."""
        self._pending += 1

    def line(self, text: str) -> None:
        """A block that stays on the line after the previous one (a table row)."""
        self.block(text, sep="\n")

    def block(self, text: str, sep: str = "\n\n", raw: bool = False) -> None:
        """Add a block; its spaces and lines are tidied unless ``raw`` (kept as given)."""
        text = text if raw else clean_block(text)
        if not text:
            return
        if self._parts:
            self._parts.append(sep)
            self._length += len(sep)
        self._pages.extend([self._length] * self._pending)
        self._pending = 0
        self._parts.append(text)
        self._length += len(text)

    @property
    def size(self) -> int:
        return self._length

    def build(self, title: str = "", paged: bool = False) -> Extracted:
        text = "".join(self._parts)
        pages = self._pages + [len(text)] * self._pending
        return Extracted(text, title.strip(), tuple(pages) if paged else ())


def cell_text(value: object) -> str:
    """A table cell as one line."""
    return " ".join(str(value).split()) if value is not None else ""


def table_rows(rows: Iterable[Sequence[str]]) -> list[str]:
    """A table as lines a person can read: the first row with any text is the header, and
    each later row reads "Header: value; Header: value" (empty cells left out; a cell
    under an empty header stands alone). A table of one row, or of one column, is its
    cells as they are."""
    out: list[str] = []
    header: list[str] | None = None
    for raw in rows:
        row = [cell_text(c) for c in raw]
        if not any(row):
            continue
        if header is None:
            header = row
            out.append(" | ".join(c for c in row if c))
            continue
        if len([h for h in header if h]) < 2:
            out.append(" | ".join(c for c in row if c))
            continue
        parts = []
        for i, value in enumerate(row):
            if not value:
                continue
            name = header[i] if i < len(header) else ""
            parts.append(f"{name}: {value}" if name and name != value else value)
        out.append("; ".join(parts))
    return out


def check_unpacked_size(zf: zipfile.ZipFile, path: str, limit: int,
                        parts: Sequence[str] = (".xml", ".rels", ".html", ".xhtml", ".htm",
                                                ".opf", ".ncx")) -> None:
    """Refuse a packed file whose markup would unpack to more than ``limit`` bytes (a
    huge document, or a "zip bomb" made to exhaust memory)."""
    total = sum(info.file_size for info in zf.infolist()
                if info.filename.lower().endswith(tuple(parts)))
    if total > limit:
        raise DocumentError(
            path, f"its text and markup unpack to {total / 2**20:.0f} MB, over the "
                  f"{limit / 2**20:g} MB this tool reads from one file (set RAG_MAX_FILE_MB "
                  f"to raise the limit, or split the file)")


def check_text_size(text_size: int, path: str, limit: int) -> None:
    """Refuse a file whose extracted text is bigger than the limit for one file."""
    if text_size > limit:
        raise DocumentError(
            path, f"its text is over {limit / 2**20:g} MB, the limit for one file (set "
                  f"RAG_MAX_FILE_MB to raise it, or split the file)")


_BLOCK_TAGS = {"address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
               "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6",
               "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table",
               "tr", "ul", "title"}


def html_lines(markup: str | bytes) -> list[str]:
    """The visible text of an HTML or XHTML page as lines: one per paragraph, heading,
    list item or table row; inline tags (emphasis, links) stay inside their line, table
    cells are joined with " | ". Scripts, styles and the head are left out."""
    from bs4 import BeautifulSoup, NavigableString, Tag
    from bs4.element import Comment, Doctype, ProcessingInstruction

    soup = BeautifulSoup(markup, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head"]):
        tag.decompose()
    lines: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = " ".join("".join(current).split())
        if text:
            lines.append(text)
        current.clear()

    def walk(node: Tag) -> None:
        for child in node.children:
            if isinstance(child, Comment | Doctype | ProcessingInstruction):
                continue
            if isinstance(child, NavigableString):
                current.append(str(child))
            elif isinstance(child, Tag):
                name = child.name.lower()
                if name in ("td", "th"):
                    if current and "".join(current).strip():
                        current.append(" | ")
                    walk(child)
                elif name in _BLOCK_TAGS:
                    flush()
                    walk(child)
                    flush()
                else:
                    walk(child)

    walk(soup.body or soup)
    flush()
    return lines
