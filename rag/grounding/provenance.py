"""Where a cited passage comes from: its document's title, file and modification date."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from rag.types import Citation


def modified_date(mtime: float) -> str:
    """A file's modification time as a date (YYYY-MM-DD, UTC); "" when unknown."""
    if not mtime or mtime <= 0:
        return ""
    return dt.datetime.fromtimestamp(mtime, dt.UTC).date().isoformat()


def with_provenance(citations: list[Citation], documents: dict) -> list[Citation]:
    """The citations with the title, modification date and page of their documents
    (``documents``: id -> ``index.types.Document``); the page is the one holding the
    citation's first character, from the page starts the document recorded."""
    out = []
    for c in citations:
        doc = documents.get(c.doc)
        if doc is None:
            out.append(c)
            continue
        page_at = getattr(doc, "page_at", None)
        out.append(replace(c, title=c.title or doc.title,
                           modified=modified_date(getattr(doc, "mtime", 0.0)),
                           page=page_at(c.start) if page_at else None))
    return out
