"""Dataclasses at the seams of indexing: a loaded document and its chunks."""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from dataclasses import asdict, dataclass, field


def content_hash(text: str) -> str:
    """Stable short hash of a text, used for document and chunk ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    """A source document. ``text`` is the exact text every citation span indexes:
    the file's characters for .txt/.md, the extracted text for every other format.

    ``pages`` holds, for documents with pages (PDF pages, slides, the frames of a TIFF),
    the offset in ``text`` where each page starts: page ``i`` (1-based) is
    ``text[pages[i-1]:pages[i]]``, and a page with no text starts where the next one does.
    It is recorded when the text is extracted; ``page_at`` reads it."""

    id: str  # path relative to the corpus root, with forward slashes
    title: str
    text: str
    kind: str  # txt, md, html, pdf, docx, pptx, xlsx, epub, eml, odt, ods, odp, rtf, ...
    hash: str  # sha256 of the file's bytes (16 hex chars)
    mtime: float = 0.0
    pages: tuple[int, ...] = ()
    ocr_pages: int = 0  # pages (or images) whose text was read by OCR

    def page_at(self, offset: int) -> int | None:
        """The 1-based page that holds ``text[offset]``; None for a document without
        pages."""
        if not self.pages:
            return None
        return max(1, bisect_right(self.pages, offset))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["pages"] = list(self.pages)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Document:
        d = dict(d)
        d["pages"] = tuple(d.get("pages") or ())
        return cls(**d)


@dataclass(frozen=True)
class Chunk:
    """A span of one document. ``start``/``end`` index ``Document.text``;
    ``sentences`` holds the absolute (start, end) span of every sentence in it."""

    doc_id: str
    start: int
    end: int
    text: str
    sentences: tuple[tuple[int, int], ...] = field(default_factory=tuple)
    id: str = ""

    def __post_init__(self) -> None:
        if not self.id:
            object.__setattr__(
                self, "id", content_hash(f"{self.doc_id}\x00{self.start}\x00{self.text}")
            )

    def to_dict(self) -> dict:
        # not asdict(): its recursive copy dominates writing a 100k-chunk index
        return {"doc_id": self.doc_id, "start": self.start, "end": self.end,
                "text": self.text, "sentences": [list(s) for s in self.sentences],
                "id": self.id}

    @classmethod
    def from_dict(cls, d: dict) -> Chunk:
        d = dict(d)
        d["sentences"] = tuple(tuple(s) for s in d.get("sentences", ()))
        return cls(**d)
