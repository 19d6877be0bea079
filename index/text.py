"""Tokenisation shared by BM25 indexing, retrieval and answer verification."""

from __future__ import annotations

import logging
import re
from functools import lru_cache

from index.errors import DependencyError
from index.normalize import normalize_text

# Function words carry no evidence. Negations are kept on purpose: "no plans" matters.
STOPWORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself of off on once only or other our ours ourselves out over own same
she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why
will with would you your yours yourself yourselves also said says say told according
""".split())

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?")


STEMMER_MISSING = ("stemming needs PyStemmer (the Python module 'Stemmer', a dependency of "
                   "cited-rag), which is not installed; install it with: pip install "
                   "PyStemmer")


@lru_cache(maxsize=1)
def _stemmer():
    """English Snowball stemming. Without it, every index, BM25 ranking and verification
    would quietly change, so a missing PyStemmer is an error, never a fallback."""
    try:
        import Stemmer
    except ImportError as exc:
        raise DependencyError(STEMMER_MISSING) from exc
    return Stemmer.Stemmer("english")


def stem(words: list[str]) -> list[str]:
    return _stemmer().stemWords(words)


def words(text: str) -> list[str]:
    """Lower-cased word tokens of the normalised text."""
    return [w.split("'")[0] for w in _TOKEN.findall(normalize_text(text).lower())]


def content_tokens(text: str) -> list[str]:
    """Stemmed tokens without stopwords: what a claim says."""
    return stem([w for w in words(text) if w not in STOPWORDS])


def bm25s_module():
    """bm25s, its logger handed back to the application's logging configuration: bm25s sets
    its logger to DEBUG when imported, so its debug lines ("Building index from IDs
    objects") reached the console through the root handler on every ``rag index``."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.NOTSET)
    return bm25s


def bm25_tokenize(texts: list[str]):
    bm25s = bm25s_module()

    return bm25s.tokenize([normalize_text(t) for t in texts], stopwords="en",
                          stemmer=_stemmer(), show_progress=False)


def bm25_query_tokens(text: str) -> list[list[str]]:
    bm25s = bm25s_module()

    return bm25s.tokenize([normalize_text(text)], stopwords="en", stemmer=_stemmer(),
                          show_progress=False, return_ids=False)


def bm25_doc_tokens(texts: list[str]) -> list[list[str]]:
    """Each text's BM25 terms (repeats kept), as ``bm25_tokenize`` indexes them."""
    if not texts:
        return []
    return bm25s_module().tokenize([normalize_text(t) for t in texts], stopwords="en",
                                   stemmer=_stemmer(), show_progress=False, return_ids=False)
