"""Select the sentences that answer a question from the retrieved passages."""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass

import numpy as np
from cachetools import LRUCache

from index.embed.base import Embedder
from index.normalize import normalize_text
from index.text import content_tokens, words
from rag.types import Evidence, Passage

MIN_SENTENCE_WORDS = 4
_YESNO = re.compile(r"^(is|are|was|were|do|does|did|has|have|had|can|could|will|would|"
                    r"should|shall|may|might|must)\b", re.I)


def is_yes_no(question: str) -> bool:
    return bool(_YESNO.match(normalize_text(question).strip()))


@dataclass(frozen=True)
class ScoredSentence:
    doc: str
    title: str
    start: int
    end: int
    text: str
    dense: float  # cosine(question, sentence)
    lexical: float  # share of the question's content words (idf-weighted) found in it
    score: float
    passage_rank: int


def lexical_overlap(question_tokens: list[str], text: str, idf: dict[str, float]) -> float:
    if not question_tokens:
        return 0.0
    have = set(content_tokens(text))
    total = sum(idf.get(t, 1.0) for t in set(question_tokens))
    hit = sum(idf.get(t, 1.0) for t in set(question_tokens) if t in have)
    return hit / total if total else 0.0


def candidate_sentences(passages: list[Passage]) -> list[tuple[Passage, int, int]]:
    """Unique sentence spans of the passages, in retrieval order."""
    seen: set[tuple[str, int, int]] = set()
    out = []
    for p in passages:
        spans = p.sentences or ((p.start, p.end),)
        for s, e in spans:
            key = (p.doc, s, e)
            if key in seen:
                continue
            seen.add(key)
            out.append((p, s, e))
    return out


class SentenceVectors:
    """Sentence vectors of one embedder, kept in a least-recently-used cache (cachetools)
    so that sentences seen by earlier questions are not embedded again."""

    def __init__(self, embedder: Embedder, size: int = 20_000) -> None:
        if size < 1:
            raise ValueError(f"size must be >= 1, got {size}")
        self.embedder = embedder
        self.size = size
        self._vectors: LRUCache = LRUCache(size)
        self._lock = threading.Lock()  # cachetools' caches are not thread-safe

    def __len__(self) -> int:
        return len(self._vectors)

    def embed(self, texts: list[str]) -> np.ndarray:
        with self._lock:  # a hit also marks the vector as recently used
            found = {t: self._vectors[t] for t in texts if t in self._vectors}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            fresh = self.embedder.embed_documents(missing)
            with self._lock:
                for t, v in zip(missing, fresh, strict=True):
                    found[t] = self._vectors[t] = np.asarray(v, np.float32)
        return np.asarray([found[t] for t in texts], np.float32).reshape(len(texts), -1)


def score_sentences(question: str, passages: list[Passage], embedder: Embedder,
                    dense_weight: float = 0.6, cache: SentenceVectors | None = None
                    ) -> list[ScoredSentence]:
    """Score every sentence of the passages against the question: cosine similarity of
    embeddings, idf-weighted lexical overlap, and a small prior for the passage's rank.
    A sentence whose words repeat an earlier one's is scored once. ``cache`` keeps the
    sentence vectors across questions."""
    cands = []
    seen: set[str] = set()
    for p, s, e in candidate_sentences(passages):
        text = p.text[s - p.start:e - p.start]
        key = " ".join(words(text))  # the same sentence repeated (a pull quote) counts once
        if len(text.split()) < MIN_SENTENCE_WORDS or key in seen:
            continue
        seen.add(key)
        cands.append((p, s, e, text))
    if not cands:
        return []
    qtok = content_tokens(question)
    docs_tokens = [set(content_tokens(c[3])) for c in cands]
    n = len(cands)
    idf = {t: math.log(1 + n / (1 + sum(t in d for d in docs_tokens))) for t in set(qtok)}
    qv = np.asarray(embedder.embed_query(normalize_text(question)), np.float32)
    texts = [normalize_text(c[3]) for c in cands]
    sv = cache.embed(texts) if cache is not None else embedder.embed_documents(texts)
    dense = sv @ qv if len(sv) else np.zeros(0)
    out = []
    for (p, s, e, text), d in zip(cands, dense, strict=True):
        lex = lexical_overlap(qtok, text, idf)
        prior = 0.05 / p.rank if p.rank else 0.0
        score = dense_weight * float(d) + (1 - dense_weight) * lex + prior
        out.append(ScoredSentence(p.doc, p.title, s, e, text, float(d), lex, score, p.rank))
    out.sort(key=lambda x: -x.score)
    return out


def select_evidence(scored: list[ScoredSentence], m: int) -> list[Evidence]:
    """The top ``m`` sentences as numbered evidence [1]..[m], best first."""
    return [Evidence(n=i, doc=s.doc, title=s.title, start=s.start, end=s.end, text=s.text,
                     score=s.score, lexical=s.lexical) for i, s in enumerate(scored[:m], start=1)]


def passages_as_evidence(passages: list[Passage]) -> list[Evidence]:
    """Whole passages as numbered sources (the naive pipeline)."""
    return [Evidence(n=i, doc=p.doc, title=p.title, start=p.start, end=p.end, text=p.text,
                     score=p.score) for i, p in enumerate(passages, start=1)]
