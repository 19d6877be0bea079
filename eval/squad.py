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


def squad_documents(data: dict, paragraphs: bool = False) -> dict[str, str]:
    """Document id -> text: the article's paragraphs in order, separated by blank lines;
    with ``paragraphs``, one document per paragraph (``<article>/<nnn>.txt``): a clean
    multi-document set whose documents share subjects, numbers and names without
    contradicting each other."""
    docs = {}
    for i, a in enumerate(data["data"]):
        name = _doc_name(i, a.get("title", ""))
        if paragraphs:
            stem = name.removesuffix(".txt")
            docs.update({f"{stem}/{j:03d}.txt": p["context"]
                         for j, p in enumerate(a["paragraphs"])})
        else:
            docs[name] = "\n\n".join(p["context"] for p in a["paragraphs"])
    return docs


def squad_items(data: dict, paragraphs: bool = False) -> list[GoldItem]:
    """Every question as a gold item; evidence in the documents of ``squad_documents``
    with the same ``paragraphs``."""
    items = []
    for i, article in enumerate(data["data"]):
        doc = _doc_name(i, article.get("title", ""))
        offset = 0
        for j, para in enumerate(article["paragraphs"]):
            ctx = para["context"]
            where = f"{doc.removesuffix('.txt')}/{j:03d}.txt" if paragraphs else doc
            base = 0 if paragraphs else offset
            for qa in para["qas"]:
                impossible = bool(qa.get("is_impossible", False))
                answers = [] if impossible else list(dict.fromkeys(
                    a["text"] for a in qa.get("answers", [])))
                evidence = []
                for a in qa.get("answers", []) if not impossible else []:
                    at = a.get("answer_start", -1)
                    if ctx[at:at + len(a["text"])] != a["text"]:
                        at = ctx.find(a["text"])
                    ev = Evidence(where, a["text"], base + at)
                    if at >= 0 and ev not in evidence:
                        evidence.append(ev)
                items.append(GoldItem(str(qa["id"]), qa["question"], answers, not impossible,
                                      evidence, "unanswerable" if impossible else "factoid",
                                      doc))
            offset += len(ctx) + 2  # paragraphs are joined by a blank line
    return items


def item_articles(data: dict) -> dict[str, str]:
    """Question id -> the document id of its article (answerable or not)."""
    return {str(qa["id"]): _doc_name(i, a.get("title", ""))
            for i, a in enumerate(data["data"]) for p in a["paragraphs"] for qa in p["qas"]}


def build_corpus(path: Path, cache_root: Path, paragraphs: bool = False) -> Path:
    """Write the corpus folder under ``cache_root/<hash of the file>`` (``-paragraphs``:
    one document per paragraph), reused if present."""
    raw = Path(path).read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:12]
    folder = Path(cache_root) / (f"squad-{digest}" + ("-paragraphs" if paragraphs else ""))
    docs = squad_documents(read_squad(path), paragraphs)
    have = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.txt")) \
        if folder.is_dir() else []
    if have == sorted(docs):
        return folder
    for name, text in docs.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
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
