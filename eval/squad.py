"""Read SQuAD v2 JSON: a corpus folder (one .txt per article) and gold items."""

from __future__ import annotations

import hashlib
import json
import random
import re
from pathlib import Path

from eval.gold import Evidence, GoldError, GoldItem


def _doc_name(i: int, title: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_")[:60] or "article"
    return f"{i:03d}_{slug}.txt"


def read_squad(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise GoldError(f"SQuAD file not found: {path}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise GoldError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise GoldError(f"{path}: not SQuAD JSON (no 'data' list)")
    return data


def squad_documents(data: dict) -> dict[str, str]:
    """Document id -> text: the article's paragraphs in order, separated by blank lines."""
    return {_doc_name(i, a.get("title", "")): "\n\n".join(p["context"] for p in a["paragraphs"])
            for i, a in enumerate(data["data"])}


def squad_items(data: dict) -> list[GoldItem]:
    items = []
    for i, article in enumerate(data["data"]):
        doc = _doc_name(i, article.get("title", ""))
        offset = 0
        for para in article["paragraphs"]:
            ctx = para["context"]
            for qa in para["qas"]:
                impossible = bool(qa.get("is_impossible", False))
                answers = [] if impossible else list(dict.fromkeys(
                    a["text"] for a in qa.get("answers", [])))
                evidence = []
                for a in qa.get("answers", []) if not impossible else []:
                    at = a.get("answer_start", -1)
                    if ctx[at:at + len(a["text"])] != a["text"]:
                        at = ctx.find(a["text"])
                    ev = Evidence(doc, a["text"], offset + at)
                    if at >= 0 and ev not in evidence:
                        evidence.append(ev)
                items.append(GoldItem(str(qa["id"]), qa["question"], answers, not impossible,
                                      evidence, "unanswerable" if impossible else "factoid"))
            offset += len(ctx) + 2  # paragraphs are joined by a blank line
    return items


def item_articles(data: dict) -> dict[str, str]:
    """Question id -> the document id of its article (answerable or not)."""
    return {str(qa["id"]): _doc_name(i, a.get("title", ""))
            for i, a in enumerate(data["data"]) for p in a["paragraphs"] for qa in p["qas"]}


def build_corpus(path: Path, cache_root: Path) -> Path:
    """Write the corpus folder under ``cache_root/<hash of the file>``, reused if present."""
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:12]
    folder = Path(cache_root) / f"squad-{digest}"
    docs = squad_documents(read_squad(path))
    if folder.is_dir() and sorted(p.name for p in folder.glob("*.txt")) == sorted(docs):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def sample(items: list[GoldItem], limit: int | None, seed: int | None) -> list[GoldItem]:
    """``limit`` items. With a seed: a random sample stratified by answerability (each
    group in proportion, at least one of each when both exist); without: the first ones."""
    if not limit or limit >= len(items):
        return items
    if seed is None:
        return items[:limit]
    rng = random.Random(seed)
    pos = [i for i, x in enumerate(items) if x.answerable]
    neg = [i for i, x in enumerate(items) if not x.answerable]
    n_pos = round(limit * len(pos) / len(items))
    if pos and neg:
        n_pos = min(max(n_pos, 1), limit - 1)
    n_pos = min(n_pos, len(pos))
    n_neg = min(limit - n_pos, len(neg))
    chosen = set(rng.sample(pos, n_pos) + rng.sample(neg, n_neg))
    return [x for i, x in enumerate(items) if i in chosen]
