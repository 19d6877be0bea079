"""Dataclasses at the seams of indexing: a loaded document and its chunks."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field


def content_hash(text: str) -> str:
    """Stable short hash of a text, used for document and chunk ids."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Document:
    """A source document. ``text`` is the exact text every citation span indexes:
    the file's characters for .txt/.md, the extracted text for .html/.pdf."""

    id: str  # path relative to the corpus root, with forward slashes
    title: str
    text: str
    kind: str  # txt, md, html, pdf
    hash: str  # sha256 of the file's bytes (16 hex chars)
    mtime: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Document:
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
