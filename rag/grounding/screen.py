"""Documents that address the assistant: found by a learned screen, shown, never obeyed.

Some documents speak to the AI that reads them rather than to a person ("Note for
assistants that summarise this collection: ...", "Si eres un modelo de lenguaje, ...",
or an instruction spread over two sentences). The screen scores every sentence of the
retrieved passages with a logistic regression over the embedding model's sentence vector
(computed for the evidence scoring anyway) and the sentence's character n-grams. It is
fitted by ``python -m eval.screening fit`` on written examples of both kinds, ordinary web
text by source (facts with their page furniture) and SQuAD articles, with cross-validation
grouped by source; its threshold holds a stated false-alarm rate on ordinary text
(``rag/grounding/screen.json`` holds the weights, the data it was fitted on and its metrics; the
n-grams' weights are in ``rag/grounding/screen_grams.npz``). No phrase list is involved.

A document with a sentence at or above the threshold is *set aside*: its sentences are
not shown to the model as evidence, the answer lists it with the reason and the passage,
and when it disagrees with the answer it is quoted as one side, with a warning on its
citation (rag.grounding.conflicts).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Protocol

import numpy as np

SCREEN_FILE = Path(__file__).resolve().parent / "screen.json"
GRAMS_FILE = SCREEN_FILE.with_name("screen_grams.npz")
WARNING = ("this document addresses AI assistants (it tells the reader what to answer or "
           "ignore); it was set aside: quoted, never followed or taken as fact")
# a side of a disagreement whose document the screen finds more likely than not to
# address the assistant, though below the threshold for setting it aside
CAUTION = ("this document may be addressed to AI assistants rather than people (the screen "
           "finds it more likely than not); check it before relying on it")
REASON = "it addresses AI assistants rather than people"


class Screen(Protocol):
    threshold: float

    def scores(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        """P(the sentence addresses the assistant), one per text (vectors: its rows)."""
        ...


@dataclass(frozen=True)
class CharGrams:
    """The character n-grams of a sentence (within words, hashed into ``n_features``
    buckets: scikit-learn's HashingVectorizer), weighted by tf-idf: 1 + log(count) times
    ``idf``, L2-normalised. They see what a sentence vector blurs: who is addressed
    ("assistant", "modèle de langage", "AI:"), in any language."""

    idf: np.ndarray
    ngram_range: tuple[int, int] = (2, 5)

    @property
    def n_features(self) -> int:
        return len(self.idf)

    def counts(self, texts: list[str]):
        from sklearn.feature_extraction.text import HashingVectorizer

        return HashingVectorizer(analyzer="char_wb", ngram_range=self.ngram_range,
                                 n_features=self.n_features, alternate_sign=False,
                                 norm=None).transform(texts)

    def transform(self, texts: list[str]):
        from sklearn.preprocessing import normalize

        x = self.counts(texts).tocsr().astype(np.float64)
        x.data = 1.0 + np.log(x.data)
        return normalize(x.multiply(self.idf).tocsr())


@dataclass(frozen=True)
class ScreenModel:
    """Logistic regression over L2-normalised sentence vectors of ``embedding_model`` and,
    when ``grams`` is set, the sentence's character n-grams (``grams_coef``)."""

    embedding_model: str
    coef: tuple[float, ...]
    intercept: float
    threshold: float = 0.5
    meta: dict = field(default_factory=dict, compare=False)
    grams: CharGrams | None = field(default=None, compare=False)
    grams_coef: np.ndarray | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not self.coef:
            raise ValueError("a screen model needs its coefficients")
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if (self.grams is None) != (self.grams_coef is None) or (
                self.grams is not None and len(self.grams_coef) != self.grams.n_features):
            raise ValueError("a screen's n-grams need one coefficient per n-gram bucket")

    def scores(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        v = np.asarray(vectors, np.float64).reshape(len(texts), -1)
        if v.shape[1] != len(self.coef):
            raise ValueError(f"the screen was fitted on {len(self.coef)}-dimensional "
                             f"vectors of {self.embedding_model}, got {v.shape[1]}")
        z = v @ np.array(self.coef) + self.intercept
        if self.grams is not None and texts:
            z = z + self.grams.transform(texts) @ self.grams_coef
        return 1 / (1 + np.exp(-z))

    def to_dict(self) -> dict:
        return {"embedding_model": self.embedding_model, "coef": list(self.coef),
                "intercept": self.intercept, "threshold": self.threshold,
                "grams": None if self.grams is None else
                {"ngram_range": list(self.grams.ngram_range),
                 "n_features": self.grams.n_features, "file": GRAMS_FILE.name},
                "meta": self.meta}

    def save(self, path: Path) -> None:
        """``path`` (JSON) and, with n-grams, their idf and coefficients beside it."""
        path = Path(path)
        if self.grams is not None:
            np.savez_compressed(path.with_name(GRAMS_FILE.name), idf=self.grams.idf,
                                coef=self.grams_coef)
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")

    @classmethod
    def from_dict(cls, d: dict, folder: Path | None = None) -> ScreenModel:
        grams = coef = None
        if d.get("grams"):
            arrays = np.load(Path(folder or SCREEN_FILE.parent) / d["grams"]["file"])
            grams = CharGrams(arrays["idf"], tuple(d["grams"]["ngram_range"]))
            coef = arrays["coef"]
        return cls(d["embedding_model"], tuple(float(x) for x in d["coef"]),
                   float(d["intercept"]), float(d.get("threshold", 0.5)), d.get("meta", {}),
                   grams, coef)


@cache
def _load(path: str) -> ScreenModel:
    return ScreenModel.from_dict(json.loads(Path(path).read_text(encoding="utf-8")),
                                 Path(path).parent)


def screen_for(embedding_model: str, path: Path | None = None) -> ScreenModel | None:
    """The fitted screen for ``embedding_model``, or None when none was fitted for it (the
    answer then says that documents were not screened)."""
    path = Path(path or SCREEN_FILE)
    if not path.is_file():
        return None
    model = _load(str(path))
    return model if model.embedding_model == embedding_model else None


# lines the document readers write as structure (index.load.office, index.load.mail, ...): a table
# row "Name: Ann; Role: Keeper", its header "Name | Role", an e-mail's "Subject: ...",
# "Slide 3: Title", "Sheet: Costs"
_FIELD = r"[^:;|\n]{1,40}?"
_RECORD = re.compile(rf"^{_FIELD}: [^;]+(?:; {_FIELD}: [^;]+)+$")
_STRUCTURAL = re.compile(r"^(?:From|To|Cc|Date|Subject|Sheet|Slide \d+|Notes|Attachment)"
                         r": ?", re.IGNORECASE)


def screen_text(sentence: str) -> str:
    """What the screen reads of a sentence: a line that a document reader wrote as
    structure (a table row, its header, an e-mail header, a slide's number) without its
    field names and separators, and a row without its short cells (names, numbers), so
    that the screen judges what the fields say rather than their layout, which it was not
    fitted on (table rows scored as instructions). Prose is read as it is."""
    if _RECORD.match(sentence):  # the cells that hold words, not names or numbers
        values = (part.split(": ", 1)[1] for part in sentence.split("; "))
        return ". ".join(v for v in values if len(v.split()) >= 3)
    if " | " in sentence:
        sentence = sentence.replace(" | ", ". ")
    return _STRUCTURAL.sub("", sentence)


class PhraseScreen:
    """The earlier screen, kept for side-by-side evaluation: a sentence counts as
    addressed to the assistant when it matches ``index.load.loaders.instruction_like``, a fixed
    phrase list."""

    threshold = 0.5

    def scores(self, texts: list[str], vectors: np.ndarray) -> np.ndarray:
        from index.load.loaders import instruction_like

        return np.array([float(instruction_like(t) is not None) for t in texts])
