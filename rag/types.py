"""Dataclasses at the seams of answering: passages, evidence, citations, the answer, and
the events of an answer as it streams."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

GRADES = ("answer", "caution", "refused")


@dataclass(frozen=True)
class Passage:
    """A retrieved chunk with its scores. ``start``/``end`` index the document text."""

    chunk_id: str
    doc: str
    title: str
    start: int
    end: int
    text: str
    score: float  # fused (reciprocal-rank) score
    dense_score: float | None = None  # cosine similarity, if dense retrieval found it
    bm25_score: float | None = None
    rank: int = 0
    sentences: tuple[tuple[int, int], ...] = ()
    page: int | None = None  # the page (PDF) or slide where the passage starts

    def brief(self) -> dict:
        return {"doc": self.doc, "page": self.page, "start": self.start, "end": self.end,
                "score": round(self.score, 6),
                "dense_score": None if self.dense_score is None else round(self.dense_score, 4),
                "bm25_score": None if self.bm25_score is None else round(self.bm25_score, 4),
                "title": self.title, "text": self.text}


@dataclass(frozen=True)
class Evidence:
    """A numbered unit shown to the model and citable as [n]: a passage or a sentence."""

    n: int
    doc: str
    title: str
    start: int
    end: int
    text: str
    score: float
    lexical: float = 0.0  # idf-weighted share of the question's content words in ``text``


# documents whose pages are slides: their citations say "slide 3", the others "page 3"
SLIDE_SUFFIXES = (".pptx", ".pptm", ".odp")


def page_label(doc: str, page: int | None) -> str:
    """How a passage's page is shown beside its file: "page 3", "slide 3", or ""."""
    if page is None:
        return ""
    return f"{'slide' if doc.lower().endswith(SLIDE_SUFFIXES) else 'page'} {page}"


@dataclass(frozen=True)
class Citation:
    """A cited span, with its document's provenance (title, file, modification date), the
    page it is on (1-based, for PDF pages and slides; None for documents without pages)
    and, for a document set aside because it addresses the assistant, a ``warning``."""

    n: int
    doc: str
    start: int
    end: int
    text: str
    title: str = ""
    modified: str = ""  # the document's modification date, YYYY-MM-DD
    warning: str = ""  # why this passage must not be taken as fact (rag.grounding.screen)
    page: int | None = None  # computed from the page starts recorded at extraction

    @property
    def provenance(self) -> str:
        """One line: title, file, page and modification date."""
        parts = [self.title or self.doc, self.doc]
        if self.page is not None:
            parts.append(page_label(self.doc, self.page))
        if self.modified:
            parts.append(f"modified {self.modified}")
        return " · ".join(dict.fromkeys(parts))

    def to_dict(self) -> dict:
        return {**asdict(self), "provenance": self.provenance}


@dataclass(frozen=True)
class SetAside:
    """A document kept out of the evidence the model answers from, shown to the user with
    the reason: ``text`` is its passage that reads as addressed to the assistant."""

    doc: str
    title: str
    modified: str
    reason: str
    start: int
    end: int
    text: str
    score: float  # the screen's probability that the passage addresses the assistant

    def to_dict(self) -> dict:
        return {**asdict(self), "score": round(self.score, 4)}


@dataclass
class SentenceSupport:
    """One answer sentence, the evidence it cites after verification, and how well it is
    supported (0..1). ``supported`` is False for sentences that were flagged."""

    text: str
    citations: list[int]
    supported: bool
    score: float
    quote: bool = False
    conflict: bool = False  # a yes/no answer whose evidence says the opposite
    prefix: str = ""  # shown before a quote, e.g. "No:"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Draft:
    """The answer the pipeline would give: its sentences (the supported ones are shown)
    and where it came from: "model" (the model's own supported words), "pointer" (the
    model replied with a bare [n]: that sentence is quoted), "quote" (its words failed
    verification: the sentence it cites is quoted) or "declined" (it declined anyway: the
    best evidence sentence is quoted)."""

    sentences: list[SentenceSupport]
    source: str

    @property
    def shown(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if s.supported]

    @property
    def text(self) -> str:
        return " ".join(s.text for s in self.shown)


@dataclass
class Answer:
    question: str
    answer: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    retrieved: list[Passage] = field(default_factory=list)
    sentences: list[SentenceSupport] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mode: str = ""
    model: str = ""
    raw_answer: str = ""
    refusal_reason: str = ""
    tokens_generated: int = 0
    confidence: float | None = None  # the decision's P(the answer is right), rag.grounding.decision
    coverage: float | None = None  # the decision's P(the documents cover the question)
    evidence: list[Evidence] = field(default_factory=list)  # numbered sentences shown
    withheld: str = ""  # the draft answer a decision refused, for inspection
    # the evidence disagrees (rag.grounding.conflicts): the answer cites each side, ``sides`` holds
    # their citation numbers and what differs ("polarity", "number", "date", "name")
    conflict: bool = False
    sides: list[dict] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)
    # the question as retrieved and answered: a follow-up in a conversation rewritten to
    # stand alone (rag.answer.conversation), else the question itself
    standalone_question: str = ""
    # "answer" (confident), "caution" (shown, but the documents may not answer exactly
    # this: ``note`` says so) or "refused" (the documents do not answer; the closest
    # passages are shown). Derived from ``refused`` when not given.
    grade: str = ""
    note: str = ""

    def __post_init__(self) -> None:
        if self.grade not in ("", *GRADES):
            raise ValueError(f"grade must be one of {', '.join(GRADES)}; got {self.grade!r}")
        if self.grade == "refused":
            self.refused = True
        self.grade = "refused" if self.refused else (self.grade or "answer")

    def plain_text(self) -> str:
        """The answer as plain text for a shell that shows only text (a chat completion):
        a caution begins with its note and its confidence and ends with the passages it
        rests on, quoted exactly."""
        if self.grade != "caution":
            return self.answer
        conf = "" if self.confidence is None else f" (confidence {self.confidence:.2f})"
        quotes = [f"[{c.n}] \u201c{' '.join(c.text.split())}\u201d" for c in self.citations]
        return "\n".join([self.note + conf, self.answer, *quotes])
    # what the reader should know about how the answer was decided, e.g. "decision: not
    # calibrated for this backend (...)" (rag.grounding.decision.decision_note)
    notes: list[str] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict) -> Answer:
        """The inverse of ``to_dict`` (retrieved passages come back as their brief form,
        without chunk ids and sentence spans)."""
        retrieved = [Passage(chunk_id="", doc=p["doc"], title=p.get("title", ""),
                             start=p["start"], end=p["end"], text=p["text"],
                             score=p["score"], dense_score=p.get("dense_score"),
                             bm25_score=p.get("bm25_score"), rank=i, page=p.get("page"))
                     for i, p in enumerate(d.get("retrieved", []), start=1)]
        return cls(question=d["question"], answer=d["answer"], refused=d["refused"],
                   citations=[Citation(**{k: v for k, v in c.items() if k != "provenance"})
                              for c in d.get("citations", [])],
                   retrieved=retrieved,
                   sentences=[SentenceSupport(**s) for s in d.get("sentences", [])],
                   timings=dict(d.get("timings", {})), mode=d.get("mode", ""),
                   model=d.get("model", ""), raw_answer=d.get("raw_answer", ""),
                   refusal_reason=d.get("refusal_reason", ""),
                   tokens_generated=d.get("tokens_generated", 0),
                   confidence=d.get("confidence"), coverage=d.get("coverage"),
                   evidence=[Evidence(e["n"], e["doc"], "", e["start"], e["end"], e["text"], 0.0)
                             for e in d.get("evidence", [])],
                   withheld=d.get("withheld", ""), conflict=d.get("conflict", False),
                   sides=list(d.get("sides", [])),
                   set_aside=[SetAside(**s) for s in d.get("set_aside", [])],
                   standalone_question=d.get("standalone_question", ""),
                   grade=d.get("grade", ""), note=d.get("note", ""),
                   notes=list(d.get("notes", [])))

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question or self.question,
            "answer": self.answer,
            "grade": self.grade,
            "note": self.note,
            "refused": self.refused,
            "refusal_reason": self.refusal_reason,
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": [p.brief() for p in self.retrieved],
            "sentences": [s.to_dict() for s in self.sentences],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "tokens_generated": self.tokens_generated,
            "confidence": None if self.confidence is None else round(self.confidence, 4),
            "coverage": None if self.coverage is None else round(self.coverage, 4),
            "evidence": [{"n": e.n, "doc": e.doc, "start": e.start, "end": e.end,
                          "text": e.text} for e in self.evidence],
            "withheld": self.withheld,
            "conflict": self.conflict,
            "sides": self.sides,
            "set_aside": [d.to_dict() for d in self.set_aside],
            "mode": self.mode,
            "model": self.model,
            "raw_answer": self.raw_answer,
            "notes": list(self.notes),
        }


@dataclass
class StreamEvent:
    """One step of an answer as it happens, in this order: ``status`` (text), ``sources``
    (the retrieved passages, as soon as retrieval ends), ``queued`` (``position`` in the
    line for the model: 1 = next; repeated while it waits), ``token`` (raw model text),
    and last ``answer`` (the verified ``Answer``)."""

    kind: str
    text: str = ""
    answer: Answer | None = None
    passages: list[Passage] | None = None
    position: int = 0

    def to_dict(self) -> dict:
        """A JSON-ready form (the worker's and the API's wire format)."""
        out: dict = {"kind": self.kind}
        if self.text:
            out["text"] = self.text
        if self.kind == "queued":
            out["position"] = self.position
        if self.passages is not None:
            out["sources"] = [p.brief() for p in self.passages]
        if self.answer is not None:
            out["answer"] = self.answer.to_dict()
        return out
