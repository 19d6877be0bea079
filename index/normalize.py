"""Text normalisation that remembers where every character came from.

Search (embedding, BM25, matching) works on normalised text; citations must index
the original. ``normalize`` returns the normalised string plus, for each of its
characters, the offset of the original character it came from.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

# Characters folded to ASCII before NFKC: quotes, dashes and odd spaces.
_FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2007": " ", "\u202f": " ", "\u2009": " ", "\u200a": " ",
    "\u00ad": "", "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": "",
}


@dataclass(frozen=True)
class Normalized:
    text: str
    offsets: Sequence[int]  # offsets[i] = index in the original of normalised char i
    original_length: int

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a normalised [start, end) span to the original text's [start, end)."""
        if start >= end:
            pos = self.offsets[start] if start < len(self.offsets) else self.original_length
            return pos, pos
        return self.offsets[start], self.offsets[end - 1] + 1


def fold_char(ch: str) -> str:
    folded = _FOLD.get(ch)
    if folded is not None:
        return folded
    if ch.isascii():
        return ch
    out = unicodedata.normalize("NFKC", ch)
    return " " if out.isspace() and out not in "\n" else out


def normalize(text: str, collapse_spaces: bool = True) -> Normalized:
    """Fold quotes, dashes and odd spaces, apply NFKC, collapse runs of spaces/tabs.

    Newlines are kept (they separate paragraphs). Every output character maps to the
    original character that produced it, so spans survive the round trip.
    """
    if text.isascii() and not _needs_work(text, collapse_spaces):
        return Normalized(text, range(len(text)), len(text))  # nothing to fold: identity
    out: list[str] = []
    offsets: list[int] = []
    last = ""  # the last character written
    pos = 0
    # Runs of plain ASCII between the characters that need work are copied whole. A run
    # holds no tab, carriage return or second space in a row, so only its first character
    # can be a space to collapse into the one before it.
    specials = (m.start() for m in
                (_SPECIAL_COLLAPSE if collapse_spaces else _SPECIAL).finditer(text))
    for i in itertools.chain(specials, [len(text)]):  # the end closes the last run
        if i > pos:
            run_start = pos + (collapse_spaces and text[pos] == " " and last in (" ", "\t"))
            if run_start < i:
                out.append(text[run_start:i])
                offsets.extend(range(run_start, i))
                last = text[i - 1]
        if i == len(text):
            break
        ch = text[i]
        pos = i + 1
        if ch == "\r":
            continue
        for c in fold_char(ch):
            if collapse_spaces and c in " \t" and last in (" ", "\t"):
                continue
            c = " " if c == "\t" else c
            out.append(c)
            offsets.append(i)
            last = c
    return Normalized("".join(out), tuple(offsets), len(text))


# characters that ``normalize`` may change: not ASCII, \r, \t, and (when collapsing) a
# space before another space
_SPECIAL = re.compile(r"[^\x00-\x7f]|[\r\t]")
_SPECIAL_COLLAPSE = re.compile(r"[^\x00-\x7f]|[\r\t]| (?= )")


def _needs_work(text: str, collapse_spaces: bool) -> bool:
    """Whether ASCII ``text`` changes under ``normalize``: carriage returns, tabs or (when
    collapsing) runs of spaces."""
    return "\r" in text or "\t" in text or (collapse_spaces and "  " in text)


def normalize_text(text: str) -> str:
    """Normalised text only, for queries and comparisons."""
    return normalize(text).text
