"""Calibration texts for static int8 quantization: deterministic, offline, made here.

A third are windows of the bundled corpus (``data/nhs`` beside the package, when the source
tree is there), a third generated sentences and questions, a third runs of whole words from
the model's own vocabulary (rare tokens). Without the corpus the other two share its part.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from index.home import BUNDLED_CORPUS

CALIBRATION_TEXTS = 300
SEED = 20261126

_SUBJECTS = (
    "The hospital trust", "A local council", "The research team", "The company", "Ministers",
    "The committee", "A patient", "The school", "Engineers", "The central bank", "Scientists",
    "The museum", "Farmers", "The court", "GPs", "The city council", "Volunteers", "The charity",
    "The regulator", "Nurses", "The university", "A spokesperson", "The inquiry", "Residents")
_VERBS = (
    "announced", "reviewed", "reported", "delayed", "approved", "rejected", "published",
    "funded", "investigated", "described", "measured", "reduced", "expanded", "cancelled",
    "confirmed", "questioned", "welcomed", "criticised", "extended", "replaced")
_OBJECTS = (
    "a new policy on waiting times", "the annual budget", "plans for a railway line",
    "the results of a clinical trial", "changes to the tax system", "a report on air quality",
    "the treatment of chronic pain", "a software update for patient records",
    "the history of the castle", "a shortage of nurses", "the price of electricity",
    "new rules for data protection", "the migration of birds", "a vaccination programme",
    "the quarterly earnings", "guidance on antibiotics", "the taskforce on cancer care",
    "a pilot scheme for mental health services", "the rise in sea levels",
    "funding for medical training", "the contract for the new bridge")
_TAILS = (
    "after a long consultation", "in March 2021", "despite strong opposition",
    "for the third year running", "according to official figures", "by 12 per cent",
    "at a cost of £4.5 million", "across England and Wales", "before the election",
    "following complaints from residents", "with support from the NHS",
    "on 14 October", "in a statement on Tuesday", "until further notice", "(see section 3.2)",
    "for patients over 65", "as part of a five-year plan", "within 18 weeks")
_QUESTIONS = (
    "What did {s} {v}?", "When was {o} {v}?", "Who {v} {o}?", "Why did {s} delay {o}?",
    "How much did {o} cost?", "Is {o} still planned?", "Where can I find {o}?",
    "{o}", "Has {s} {v} {o} yet?")


def _generated(n: int, rng: random.Random) -> list[str]:
    def sentence() -> str:
        return (f"{rng.choice(_SUBJECTS)} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
                f"{rng.choice(_TAILS)}.")

    out = []
    for i in range(n):
        if i % 3 == 0:
            q = rng.choice(_QUESTIONS).format(s=rng.choice(_SUBJECTS).lower(),
                                              v=rng.choice(_VERBS), o=rng.choice(_OBJECTS))
            out.append(q[0].upper() + q[1:])
        else:
            out.append(" ".join(sentence() for _ in range(rng.randint(1, 12))))
    return out


def _vocabulary_runs(n: int, vocab: list[str], rng: random.Random) -> list[str]:
    words = sorted(w for w in vocab if w.isalpha() and len(w) > 2)
    if not words:
        return []
    return [" ".join(rng.choice(words) + ("." if rng.random() < 0.08 else "")
                     for _ in range(rng.randint(3, 150))) for _ in range(n)]


def _corpus_windows(n: int, corpus: Path, rng: random.Random) -> list[str]:
    files = sorted(corpus.glob("*.txt")) if corpus.is_dir() else []
    words = " ".join(f.read_text(encoding="utf-8") for f in files).split()
    if len(words) < 50:
        return []
    out = []
    for _ in range(n):  # lengths log-uniform from 4 to 200 words: queries to full chunks
        length = min(len(words), int(math.exp(rng.uniform(math.log(4), math.log(200)))))
        start = rng.randrange(len(words) - length + 1)
        out.append(" ".join(words[start:start + length]))
    return out


def calibration_texts(vocab: list[str], n: int = CALIBRATION_TEXTS,
                      corpus: Path = BUNDLED_CORPUS, seed: int = SEED) -> list[str]:
    """``n`` texts (fewer only if ``vocab`` has no whole words), the same on every call."""
    rng = random.Random(seed)
    windows = _corpus_windows(n // 3, corpus, rng)
    rest = n - len(windows)
    generated = _generated(rest - rest // 2, rng)
    return windows + generated + _vocabulary_runs(rest // 2, vocab, rng)
