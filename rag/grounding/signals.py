"""The signals the graded decision (rag.grounding.decision) reads, one question at a
time: ``features`` from the first generation step (the refusal's probability), the
reply's token log-probabilities, the draft (rag.grounding.draft), the evidence scores,
the retrieved passages and, for a yes/no draft, the model's reading of the sentences it
cites (rag.grounding.reading). ``FEATURES`` names every one; a fitted model keeps some.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from index.normalize import normalize_text
from index.text import content_tokens, words
from rag.generate.base import Probe
from rag.grounding.relevance import answer_kind, has_kind, names
from rag.grounding.verify import polarity, stance
from rag.retrieve.evidence import ScoredSentence, is_yes_no
from rag.types import Draft, Evidence

# every signal the decision may use; a fitted model names the ones it kept
FEATURES = (
    "refusal_logit",  # log-odds of the refusal at the first step
    "mean_logprob",  # mean log-probability of the reply's tokens
    "min_logprob",  # the least likely token of the reply
    "declined",  # the reply still declines in words (after the refusal's start was removed)
    "pointer",  # the reply is only a citation: "[2]"
    "quoted",  # the draft quotes evidence instead of the model's own words
    "support",  # share of the answer's content words found in what it cites
    "cited_first",  # the answer cites the best-scored evidence sentence
    "best_score",  # best evidence sentence score (dense + lexical)
    "best_dense",  # best cosine between the question and an evidence sentence
    "best_lexical",  # best idf-weighted share of the question's words in a sentence
    "cited_dense",  # cosine of the cited sentence
    "cited_lexical",  # question-word share of the cited sentence
    "kind_missing",  # the question asks for a name/number/date the answer does not hold
    "numbers_missing",  # a number the question states is not in what the answer cites
    "names_missing",  # share of the question's names that what the answer cites lacks
    "echo",  # share of the answer's content words that the question already has
    "answer_words",  # log of the answer's length in words
    "yes_no",  # the question asks yes or no
    "pool_names_missing",  # share of the question's names in none of the best sentences
    "pool_words_missing",  # share of the question's content words in none of them
    "best_gap",  # how far the best sentence's score leads the second's
    "stance_agreement",  # yes/no: share of the evidence whose negation agrees with the answer
    "stance_mismatch",  # yes/no: the answer's yes or no disagrees with its own sentence
    "premise_missing",  # a "Yes": share of the question's words and numbers its evidence lacks
    "passage_dense",  # best cosine between the question and a retrieved passage
    "flipped",  # a yes/no reply against its evidence, turned around (verify.flip_conflict)
    "reading",  # yes/no: log-odds that the model reads the cited sentences as the draft says
)
# the best-scored sentences whose words the pool signals read (a replay keeps as many)
POOL = 12


_NUM = re.compile(r"\d+(?:[.,]\d+)*")


def _named(name: str, have: set[str]) -> bool:
    """A name is in a text when a word of it begins the name or the name begins it
    ("Normandy", "Norman"); a possessive ("Robert's") counts as its owner."""
    name = re.sub(r"['’]s$", "", name)
    return name in have or any(w.startswith(name) or (len(w) >= 4 and name.startswith(w))
                               for w in have)


# the signals a generator's probabilities give; NaN when it gave none
PROBABILITY_FEATURES = ("refusal_logit", "mean_logprob", "min_logprob", "reading")


def _logit(p: float | None) -> float:
    """Log-odds of ``p``; NaN when there is no probability (never a made-up 0.5)."""
    if p is None:
        return math.nan
    p = min(max(p, 1e-4), 1 - 1e-4)
    return math.log(p / (1 - p))


def missing_signals(feats: dict[str, float]) -> list[str]:
    """The signals ``features`` could not compute (the generator gave no probabilities)."""
    return [f for f in PROBABILITY_FEATURES if math.isnan(feats.get(f, math.nan))]


def features(question: str, scored: list[ScoredSentence], evidence: list[Evidence],
             reply_kind: str, probe: Probe | None, draft: Draft,
             passage_dense: Sequence[float | None] = (), reading: float | None = None
             ) -> dict[str, float]:
    """Every signal of ``FEATURES`` for one question. ``reply_kind``: "declined",
    "pointer" or "answer"; ``passage_dense``: the retrieved passages' cosines with the
    question (None for a passage only the lexical search found); ``reading``: P(Yes) of
    the model's reading of the cited sentences (rag.grounding.reading), NaN when the generator gave
    no probabilities, None when the draft was not read."""
    by_n = {e.n: e for e in evidence}
    shown = draft.shown
    cited = [by_n[n] for s in shown for n in s.citations if n in by_n]
    dense = {(s.doc, s.start): s.dense for s in scored}
    if probe is None or probe.p_refusal is None:  # no probabilities from the generator
        lps = probe.logprobs if probe and probe.logprobs else [math.nan]
    else:
        lps = probe.logprobs or [0.0]  # an empty reply
    text = draft.text
    a_tok = content_tokens(text)
    q_tok = set(content_tokens(question))
    kind = answer_kind(question)
    cited_text = " ".join(e.text for e in cited)
    cited_words = set(words(cited_text))
    q_numbers = set(_NUM.findall(normalize_text(question)))
    q_names = set(names(question))
    pool_text = " ".join(s.text for s in scored[:POOL])
    pool_words, pool_tokens = set(words(pool_text)), set(content_tokens(pool_text))
    return {
        "refusal_logit": _logit(probe.p_refusal if probe else None),
        "mean_logprob": float(np.mean(lps)),
        "min_logprob": float(np.min(lps)),
        "declined": float(reply_kind == "declined"),
        "pointer": float(reply_kind == "pointer"),
        "quoted": float(any(s.quote for s in shown)),
        "support": max((s.score for s in shown), default=0.0),
        "cited_first": float(bool(cited) and cited[0].n == 1),
        "best_score": scored[0].score if scored else 0.0,
        "best_dense": max((s.dense for s in scored), default=0.0),
        "best_lexical": max((s.lexical for s in scored), default=0.0),
        "cited_dense": max((dense.get((e.doc, e.start), 0.0) for e in cited), default=0.0),
        "cited_lexical": max((e.lexical for e in cited), default=0.0),
        "kind_missing": float(kind is not None and not has_kind(
            text, kind, question, " ".join(e.text for e in cited))),
        "numbers_missing": float(bool(q_numbers - set(_NUM.findall(normalize_text(cited_text))))),
        "names_missing": (sum(not _named(n, cited_words) for n in q_names) / len(q_names)
                          if q_names else 0.0),
        "echo": (sum(t in q_tok for t in a_tok) / len(a_tok)) if a_tok else 1.0,
        "answer_words": math.log1p(len(text.split())),
        "yes_no": float(is_yes_no(question)),
        "pool_names_missing": (sum(not _named(n, pool_words) for n in q_names) / len(q_names)
                               if q_names else 0.0),
        "pool_words_missing": (sum(t not in pool_tokens for t in q_tok) / len(q_tok)
                               if q_tok else 0.0),
        "best_gap": scored[0].score - scored[1].score if len(scored) > 1 else 0.0,
        "stance_agreement": stance_agreement(question, shown, evidence),
        "stance_mismatch": stance_mismatch(question, shown),
        "premise_missing": premise_missing(question, shown, cited_text),
        "passage_dense": max((d for d in passage_dense if d is not None), default=0.0),
        "flipped": float(draft.source == "quote" and bool(shown) and bool(shown[0].prefix)),
        "reading": reading_signal(question, shown, reading),
    }


def _said(question: str, shown: list) -> str | None:
    """The draft's yes or no: its prefix ("No:") or its first word, for a yes/no
    question."""
    if not shown or not is_yes_no(question):
        return None
    first = shown[0]
    return (first.prefix.rstrip(":,").lower() if first.prefix else polarity(first.text))


def draft_says(question: str, shown: list) -> str | None:
    """A yes/no draft's answer: its "Yes" or "No", else the negation of its first
    sentence; None for other questions and empty drafts."""
    said = _said(question, shown)
    if said is None and shown and is_yes_no(question):
        said = stance([shown[0].text], question)
    return said if said in ("yes", "no") else None


def reading_signal(question: str, shown: list, p_yes: float | None) -> float:
    """The log-odds that the model's reading agrees with the draft's yes or no (clipped
    to +-9.2); 0 when the draft was not read, NaN when the reading gave no
    probability."""
    if p_yes is None:
        return 0.0
    if isinstance(p_yes, float) and math.isnan(p_yes):
        return math.nan
    said = draft_says(question, shown)
    if said is None:
        return 0.0
    lo = _logit(p_yes)
    return lo if said == "yes" else -lo


def stance_mismatch(question: str, shown: list) -> float:
    """1 when a yes/no draft's "Yes" or "No" disagrees with the negation of its own words
    ("Yes, the mayor refused ..."), else 0."""
    said = _said(question, shown)
    if said not in ("yes", "no") or shown[0].quote:
        return 0.0
    return float(stance([shown[0].text], question) != said)


def premise_missing(question: str, shown: list, cited_text: str) -> float:
    """For a "Yes": the share of the question's content words and numbers that the
    evidence it cites lacks (a "Yes" to "... in 1973?" resting on "... in 1971"); else
    0."""
    if _said(question, shown) != "yes":
        return 0.0
    asked = set(content_tokens(question)) | set(_NUM.findall(normalize_text(question)))
    have = set(content_tokens(cited_text)) | set(_NUM.findall(normalize_text(cited_text)))
    return sum(t not in have for t in asked) / len(asked) if asked else 0.0


def stance_agreement(question: str, shown: list, evidence: list[Evidence]) -> float:
    """For a yes/no question: the share of the evidence sentences that answer as the draft
    does, by negation (rag.grounding.verify.stance): "No" with three sentences that deny and one
    that does not is 0.75. 0 for other questions and empty drafts."""
    if not evidence:
        return 0.0
    said = draft_says(question, shown)
    if said is None:
        return 0.0
    return sum(stance([e.text], question) == said for e in evidence) / len(evidence)
