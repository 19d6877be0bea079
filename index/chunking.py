"""Sentence-aware chunking with spans into the original document text."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from index.normalize import normalize
from index.types import Chunk, Document

_WORD = re.compile(r"\S+")


@lru_cache(maxsize=1)
def _segmenter():
    """pysbd's English segmenter, with an abbreviation pass that skips the abbreviations
    the text never writes with a full stop (same sentences, about 3x faster)."""
    import pysbd
    from pysbd.lang.english import English

    base = English.AbbreviationReplacer

    class _Abbreviations:  # pysbd's lists, with only the abbreviations present
        def __init__(self, full, present: list[str]) -> None:
            self.ABBREVIATIONS = present
            self.PREPOSITIVE_ABBREVIATIONS = full.PREPOSITIVE_ABBREVIATIONS
            self.NUMBER_ABBREVIATIONS = full.NUMBER_ABBREVIATIONS

    class _Lang:
        def __init__(self, lang, abbreviation) -> None:
            self._lang, self.Abbreviation = lang, abbreviation

        def __getattr__(self, name):
            return getattr(self._lang, name)

    class AbbreviationReplacer(base):
        # Each of pysbd's rewrites for an abbreviation matches "<abbreviation>." only, so
        # one the text never writes with a full stop cannot change it; the scan of such an
        # abbreviation still cost a regular-expression pass over the text per occurrence.
        def search_for_abbreviations_in_string(self, text):
            lowered = text.lower()
            full = self.lang.Abbreviation
            present = [a for a in full.ABBREVIATIONS if a.strip() + "." in lowered]
            lang = self.lang
            self.lang = _Lang(lang, _Abbreviations(full, present))
            try:
                return super().search_for_abbreviations_in_string(text)
            finally:
                self.lang = lang

    class FastEnglish(English):
        pass

    FastEnglish.AbbreviationReplacer = AbbreviationReplacer
    seg = pysbd.Segmenter(language="en", clean=False, char_span=False)
    seg.language_module = FastEnglish
    return seg


# Above this many characters a document is split by ``_FAST_SENTENCE`` instead of pysbd,
# which runs at about 50 KB/s: a 20 MB file would take minutes. Spans stay exact either way.
PYSBD_MAX_CHARS = 1_000_000
_FAST_SENTENCE = re.compile(r"""[^.!?]*(?:[.!?]+["')\]\u2019\u201d]*(?=\s|$)|[^.!?]+$|[.!?]+)""")


def _pysbd_sentences(text: str) -> list[str]:
    """pysbd's sentences, without its own search for their spans: that search compiles
    one regex per sentence and rescans the paragraph from its start (quadratic)."""
    seg = _segmenter()
    if not text:
        return []
    return seg.processor(text).process()


def _fast_sentences(text: str) -> list[str]:
    """Sentences ending at ., ! or ? followed by space or the end; for huge documents."""
    return [m.group() for m in _FAST_SENTENCE.finditer(text) if m.group().strip()]


def _split_paragraph(text: str, fast: bool = False) -> list[tuple[int, int]]:
    """Sentence spans inside one paragraph (no newlines), trimmed of whitespace. Text the
    segmenter leaves out (pysbd drops " !!") becomes a span of its own, so none is lost."""
    spans: list[tuple[int, int]] = []
    pos = 0
    for sent in (_fast_sentences if fast else _pysbd_sentences)(text):
        s = sent.strip()
        if not s:
            continue
        start = text.find(s, pos)
        if start < 0:  # segmenter changed the text; fall back to the rest of the paragraph
            break
        _add_trimmed(spans, text, pos, start)
        spans.append((start, start + len(s)))
        pos = start + len(s)
    _add_trimmed(spans, text, pos, len(text))
    return spans


def _add_trimmed(spans: list[tuple[int, int]], text: str, start: int, end: int) -> None:
    """Append the span of ``text[start:end]`` without its outer whitespace, if any is left."""
    piece = text[start:end]
    kept = piece.strip()
    if kept:
        a = start + piece.index(kept)
        spans.append((a, a + len(kept)))


# pysbd is quadratic in the length of what it is given (80 KB in one line: seconds, 1 MB:
# minutes), so long lines go to it in blocks of about this many characters, cut where the
# fast splitter ends a sentence.
PYSBD_BLOCK_CHARS = 4000


def _line_spans(line: str, fast: bool) -> list[tuple[int, int]]:
    """Sentence spans of one normalised line, in blocks if the line is long."""
    if fast or len(line) <= PYSBD_BLOCK_CHARS:
        return _split_paragraph(line, fast)
    spans: list[tuple[int, int]] = []
    block_start = block_end = 0
    for m in _FAST_SENTENCE.finditer(line):  # contiguous matches covering the line
        if m.end() - block_start > PYSBD_BLOCK_CHARS and block_end > block_start:
            spans.extend((block_start + a, block_start + b)
                         for a, b in _split_paragraph(line[block_start:block_end]))
            block_start = block_end
        block_end = m.end()
    if block_end > block_start:
        spans.extend((block_start + a, block_start + b)
                     for a, b in _split_paragraph(line[block_start:block_end]))
    return spans


def split_sentences(text: str, max_words: int = 200) -> list[tuple[int, int]]:
    """(start, end) spans of the sentences of ``text``, indexing ``text`` itself.

    Lines are split first (headlines and captions have no full stop), then each line
    by pysbd on its normalised form; spans are mapped back to the original characters.
    Sentences longer than ``max_words`` are cut at word boundaries. Lines are normalised
    one at a time (normalisation never crosses a newline), so memory stays proportional
    to the longest line, not the document; documents over ``PYSBD_MAX_CHARS`` characters
    use a fast regular-expression splitter instead of pysbd.
    """
    fast = len(text) > PYSBD_MAX_CHARS
    out: list[tuple[int, int]] = []
    line_start = 0
    for line in text.split("\n"):
        if line.strip():
            norm = normalize(line)
            for s, e in _line_spans(norm.text, fast):
                for a, b in _cut_long(norm.text, s, e, max_words):
                    a, b = norm.to_original(a, b)
                    out.append((line_start + a, line_start + b))
        line_start += len(line) + 1
    return out


def _cut_long(text: str, start: int, end: int, max_words: int) -> list[tuple[int, int]]:
    words = list(_WORD.finditer(text, start, end))
    if len(words) <= max_words:
        return [(start, end)]
    return [(words[i].start(), words[min(i + max_words, len(words)) - 1].end())
            for i in range(0, len(words), max_words)]


@dataclass(frozen=True)
class ChunkerConfig:
    chunk_words: int = 120
    overlap_words: int = 30

    def __post_init__(self) -> None:
        if self.chunk_words < 8:
            raise ValueError(f"chunk_words must be at least 8, got {self.chunk_words}")
        if not 0 <= self.overlap_words < self.chunk_words:
            raise ValueError(
                f"overlap_words must be between 0 and chunk_words-1 ({self.chunk_words - 1}), "
                f"got {self.overlap_words}")


def chunk_document(doc: Document, config: ChunkerConfig | None = None) -> list[Chunk]:
    """Pack whole sentences into chunks of about ``chunk_words`` words; consecutive chunks
    share trailing sentences of up to ``overlap_words`` words."""
    cfg = config or ChunkerConfig()
    sents = split_sentences(doc.text, max_words=cfg.chunk_words)
    counts = [len(_WORD.findall(doc.text, s, e)) for s, e in sents]
    chunks: list[Chunk] = []
    i = 0
    while i < len(sents):
        j, words = i, 0
        while j < len(sents) and (j == i or words + counts[j] <= cfg.chunk_words):
            words += counts[j]
            j += 1
        group = tuple(sents[i:j])
        start, end = group[0][0], group[-1][1]
        chunks.append(Chunk(doc_id=doc.id, start=start, end=end,
                            text=doc.text[start:end], sentences=group))
        if j >= len(sents):
            break
        # step back over trailing sentences that fit in the overlap budget
        k, back = j, 0
        while k - 1 > i and back + counts[k - 1] <= cfg.overlap_words:
            back += counts[k - 1]
            k -= 1
        i = k
    return chunks
