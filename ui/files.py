"""Uploads into and removals from the corpus folder, kept strictly inside it."""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from index.load.loaders import SUPPORTED

# what the Documents tab accepts: every format `rag index` reads
ALLOWED = tuple(s for s in SUPPORTED if s not in (".doc", ".xls", ".ppt", ".msg"))
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(original: str, corpus: Path) -> Path:
    """A fresh path directly inside ``corpus`` for an uploaded file: the original stem
    reduced to ``[A-Za-z0-9_-]``, a random tag, and the (checked) suffix. Raises
    ``ValueError`` for types that are not allowed."""
    base = Path(str(original).replace("\\", "/")).name
    suffix = Path(base).suffix.lower()
    if suffix not in ALLOWED:
        raise ValueError(f"{base}: only {', '.join(ALLOWED)} files can be added")
    stem = _UNSAFE.sub("_", Path(base).stem).strip("_-")[:60] or "upload"
    root = Path(corpus).resolve()
    while True:
        target = root / f"{stem}_{secrets.token_hex(3)}{suffix}"
        if not target.exists():
            break
    if target.parent != root:  # cannot happen; checked anyway
        raise ValueError(f"{base}: refusing to write outside the corpus folder")
    return target


def save_uploads(paths: list[str], corpus: Path) -> tuple[list[Path], list[str]]:
    """Copy uploaded files into the corpus; returns the saved paths and messages."""
    saved: list[Path] = []
    msgs: list[str] = []
    Path(corpus).mkdir(parents=True, exist_ok=True)
    for p in paths:
        src = Path(p)
        try:
            size = src.stat().st_size
            if size > MAX_UPLOAD_BYTES:
                raise ValueError(f"{src.name}: {size} bytes is over the "
                                 f"{MAX_UPLOAD_BYTES // 2**20} MB limit")
            target = safe_name(src.name, corpus)
            shutil.copyfile(src, target)
        except (ValueError, OSError) as exc:
            msgs.append(f"Skipped {exc}")
            continue
        saved.append(target)
        msgs.append(f"Added {src.name} as {target.name}")
    return saved, msgs


def remove_document(corpus: Path, doc_id: str) -> str | None:
    """Delete the file of ``doc_id`` if it lies inside ``corpus``. None on success,
    otherwise the reason it was not removed."""
    root = Path(corpus).resolve()
    target = (root / doc_id).resolve()
    if not target.is_relative_to(root) or target == root:
        return f"{doc_id} is not inside the corpus folder; not removed"
    if not target.is_file():
        return f"{doc_id} is not a file in the corpus folder"
    target.unlink()
    return None


def progress_adapter(progress: Any) -> Callable[[str, int, int], None]:
    """Turn the pipeline's ``(stage, done, total)`` callback into a ``gr.Progress``."""

    def cb(stage: str, done: int, total: int) -> None:
        progress((done, max(total, 1)), desc=stage)

    return cb
