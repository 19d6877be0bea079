"""Documents set aside: the passages' sentences scored against the question, and every
document one of whose sentences reads as addressed to the assistant (the screen,
``rag.grounding.screen``) kept out of the evidence: shown to the user, never given to the
model."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from index.embed.base import Embedder
from index.normalize import normalize_text
from index.types import Document
from rag.grounding.provenance import modified_date
from rag.grounding.screen import REASON, Screen, screen_text
from rag.retrieve.evidence import ScoredSentence, SentenceVectors, score_sentences
from rag.types import Passage, SetAside

# sentences shorter than this are not screened (headings, captions)
SCREEN_MIN_WORDS = 4


@dataclass
class Screened:
    """The scored sentences of the documents kept as evidence (``trusted``), of all the
    passages (``all``), the documents set aside, and each document's highest screen
    score among its sentences in the passages."""

    trusted: list[ScoredSentence]
    all: list[ScoredSentence]
    set_aside: list[SetAside]
    doc_scores: dict[str, float]


def screen_passages(q: str, passages: list[Passage], embedder: Embedder,
                    vectors: SentenceVectors, screen: Screen | None,
                    documents: Mapping[str, Document]) -> Screened:
    """Score the passages' sentences for ``q`` and screen their documents (``documents``:
    the index's, by id, for their dates). A document is set aside when one of its
    sentences in the passages reads as addressed to the assistant."""
    scored = score_sentences(q, passages, embedder, cache=vectors)
    if screen is None or not scored:
        return Screened(scored, scored, [], {})
    # every sentence of the passages, also those too short to be evidence
    spans = [(p, a, b) for p in passages for a, b in (p.sentences or ((p.start, p.end),))]
    texts = [screen_text(normalize_text(p.text[a - p.start:b - p.start]))
             for p, a, b in spans]
    keep = [i for i, t in enumerate(texts) if len(t.split()) >= SCREEN_MIN_WORDS]
    if not keep:
        return Screened(scored, scored, [], {})
    probs = screen.scores([texts[i] for i in keep],
                          vectors.embed([texts[i] for i in keep]))
    flagged: dict[str, SetAside] = {}
    doc_scores: dict[str, float] = {}
    for i, prob in zip(keep, probs, strict=True):
        p, a, b = spans[i]
        doc_scores[p.doc] = max(doc_scores.get(p.doc, 0.0), float(prob))
        if prob < screen.threshold or (p.doc in flagged and flagged[p.doc].score >= prob):
            continue
        doc = documents.get(p.doc)
        flagged[p.doc] = SetAside(p.doc, p.title, modified_date(getattr(doc, "mtime", 0)),
                                  REASON, a, b, p.text[a - p.start:b - p.start], float(prob))
    trusted = [s for s in scored if s.doc not in flagged]
    return Screened(trusted, scored, list(flagged.values()), doc_scores)
