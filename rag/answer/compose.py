"""Composing what the user sees from the steps' results: the verified answer (confident or
a caution) with its citations' provenance, the refusal with the closest passages and the
withheld draft, the other side of a disagreement added to an answer, and the plain answer
of the naive mode."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from index.types import Document
from rag.generate.prompts import CAUTION_MESSAGE, REFUSAL_MESSAGE
from rag.grounding.conflicts import Conflict, find_conflict
from rag.grounding.decision import DecisionModel
from rag.grounding.draft import IDK, Settled
from rag.grounding.provenance import with_provenance
from rag.grounding.screen import CAUTION, WARNING
from rag.grounding.set_aside import Screened
from rag.grounding.verify import render, split_answer
from rag.retrieve.evidence import ScoredSentence
from rag.types import Answer, Citation, Evidence, Passage, SentenceSupport


def finish(answer: Answer, timings: dict, t0: float, model: str,
           notes: Sequence[str] = ()) -> Answer:
    """``answer`` with its notes, token count, timings (``total_s`` from ``t0``) and
    model."""
    timings["total_s"] = time.perf_counter() - t0
    answer.notes = list(notes)
    answer.tokens_generated = int(timings.pop("tokens", 0))
    answer.timings = timings
    answer.model = model
    return answer


def refusal(q: str, passages: list[Passage], reason: str, raw: str = "") -> Answer:
    """The refusal: it names the closest passages' documents."""
    docs = list(dict.fromkeys((p.title, p.doc) for p in passages[:3]))  # distinct
    closest = "; ".join(f"{title} ({doc})" for title, doc in docs)
    msg = REFUSAL_MESSAGE + (f" Closest passages: {closest}." if closest else "")
    return Answer(q, msg, True, [], passages, [], mode="verified",
                  raw_answer=raw, refusal_reason=reason)


def naive_answer(q: str, text: str, passages: list[Passage], sources: list[Evidence]
                 ) -> Answer:
    """The model's reply as it is, its [n] markers read as citations of ``sources``."""
    refused = bool(IDK.search(text)) or not passages
    by_n = {e.n: e for e in sources}
    used = sorted({n for _, ns in split_answer(text) for n in ns if n in by_n})
    citations = [Citation(n, by_n[n].doc, by_n[n].start, by_n[n].end, by_n[n].text,
                          by_n[n].title) for n in used]
    sentences = [SentenceSupport(s, [n for n in ns if n in by_n], True, 1.0)
                 for s, ns in split_answer(text)]
    return Answer(q, text.strip(), refused, [] if refused else citations, passages,
                  sentences, mode="naive", raw_answer=text,
                  refusal_reason="model" if refused else "")


def verified_answer(q: str, out: Settled, evidence: list[Evidence], passages: list[Passage],
                    reply: str, decision: DecisionModel, screened: Screened,
                    documents: Mapping[str, Document]) -> Answer:
    """The settled draft as the user sees it: its verified sentences with their
    citations, or a refusal that withholds it (unsupported, not covered, or below the
    decision's caution threshold)."""
    answer_text, citations, kept = render(out.draft.sentences, evidence)
    if not out.answered or not citations:
        why = ("unsupported" if not out.draft.shown else
               f"not covered (coverage {out.coverage:.2f} < {decision.caution_at:.2f})"
               if out.coverage is not None else
               f"decision (confidence {out.confidence:.2f} < {decision.caution_at:.2f})")
        ans = refusal(q, passages, why, reply)
        ans.confidence, ans.evidence, ans.withheld = out.confidence, evidence, answer_text
        ans.coverage = out.coverage
        ans.set_aside = screened.set_aside
        return ans
    flagged = [s for s in out.draft.sentences if not s.supported]
    return Answer(q, answer_text, False, with_provenance(citations, documents), passages,
                  kept + flagged, mode="verified", raw_answer=reply,
                  set_aside=screened.set_aside)


def graded(ans: Answer, out: Settled, evidence: list[Evidence]) -> Answer:
    """An answer the decision lets through, with its confidence and grade; a caution
    says so."""
    ans.confidence, ans.evidence, ans.grade = out.confidence, evidence, out.grade
    ans.coverage = out.coverage
    if out.grade == "caution":
        ans.note = CAUTION_MESSAGE
    return ans


def rival(q: str, ans: Answer, screened: Screened,
          embed: Callable[[list[str]], np.ndarray]) -> Conflict | None:
    """Another document that answers ``q`` otherwise than ``ans``, which rests on the
    sentences it cites (rag.grounding.conflicts)."""
    scored: list[ScoredSentence] = screened.trusted
    if not scored:
        return None
    by_span = {(s.doc, s.start): s for s in screened.all}
    anchors = [by_span[(c.doc, c.start)] for c in ans.citations
               if (c.doc, c.start) in by_span]
    return find_conflict(q, ans.answer, anchors, screened.all, embed)


def add_conflict(ans: Answer, c: Conflict, screened: Screened,
                 documents: Mapping[str, Document]) -> None:
    """Add the rival side to ``ans``: "… The sources disagree: “B” [n]." with B cited.
    A side from a document set aside carries its warning; a side whose document the
    screen finds more likely than not addressed to the assistant (below the set-aside
    threshold) carries a caution."""
    aside = {d.doc for d in screened.set_aside}
    n = len(ans.citations) + 1
    body = " ".join(c.b.text.split()).strip("\"\u201c\u201d").rstrip(".!?;:,")
    warn = (WARNING if c.b.doc in aside else
            CAUTION if screened.doc_scores.get(c.b.doc, 0.0) >= 0.5 else "")
    other = Citation(n, c.b.doc, c.b.start, c.b.end, c.b.text, c.b.title, warning=warn)
    ans.answer += f" The sources disagree: \u201c{body}\u201d [{n}]."
    ans.citations = ans.citations + with_provenance([other], documents)
    ans.sentences = ans.sentences + [SentenceSupport(" ".join(c.b.text.split()), [n],
                                                     True, 1.0, quote=True)]
    a_n = next((x.n for x in ans.citations if (x.doc, x.start) == (c.a.doc, c.a.start)), 1)
    ans.conflict = True
    ans.sides = [{"n": m, "doc": s.doc, "start": s.start, "end": s.end,
                  "set_aside": s.doc in aside, "differs": c.kind, "detail": c.detail}
                 for m, s in ((a_n, c.a), (n, c.b))]
