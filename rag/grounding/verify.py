"""Check every answer sentence against the evidence it cites; drop what it does not support.

The support judge is lexical: a sentence is supported by a set of evidence sentences when
the share of its content words (stemmed, stopwords removed, idf not used) found in them
reaches ``support_threshold`` and every number it states appears in them. A yes/no answer
is also checked for polarity against negation cues in its evidence.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.chunking import split_sentences
from index.normalize import normalize_text
from index.text import STOPWORDS, content_tokens, words
from rag.types import Citation, Evidence, SentenceSupport

# the one citation marker: "[1]", "[1, 2]", "[1;3]"; its group holds the numbers
CITE = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# a sentence's closing punctuation followed by its markers: "unit. [1] [2]"
_MARKERS_AFTER_PUNCT = re.compile(r"([.!?])\s*((?:" + CITE.pattern + r"\s*)+)")
_NUM = re.compile(r"\d+(?:[.,]\d+)*")
NEGATION_CUES = frozenset(
    "no not never none neither nor denied denies deny denying rejected rejects reject "
    "refused refuses dismissed false untrue without cannot can't won't didn't doesn't isn't "
    "wasn't aren't weren't hasn't haven't unable unsuccessful failure".split())
POLARITY_WORDS = {"yes", "no"}


@dataclass(frozen=True)
class VerifyConfig:
    support_threshold: float = 0.6
    # a "Yes" may lean on the ``context_top`` best-scored evidence sentences besides the
    # ones it cites
    context_top: int = 3


def move_markers_before_punct(text: str) -> str:
    """'... unit. [1] Next' -> '... unit [1]. Next' so sentences keep their markers."""
    return _MARKERS_AFTER_PUNCT.sub(lambda m: " " + m.group(2).strip() + m.group(1) + " ",
                                   text).strip()


def split_answer(text: str) -> list[tuple[str, list[int]]]:
    """Answer sentences (the project's one segmenter, index.chunking.split_sentences) with
    their cited numbers; markers removed from the text."""
    text = move_markers_before_punct(normalize_text(text).replace("\n", " "))
    out = []
    for a, b in split_sentences(text, max_words=10_000):
        raw = text[a:b]
        nums = [int(n) for m in CITE.finditer(raw) for n in re.split(r"\s*[,;]\s*", m.group(1))]
        clean = re.sub(r"\s+([.!?,;:])", r"\1", CITE.sub("", raw)).strip()
        clean = re.sub(r"\s{2,}", " ", clean)
        if clean and re.search(r"[A-Za-z0-9]", clean):
            out.append((clean, list(dict.fromkeys(nums))))
    return out


def polarity(sentence: str) -> str | None:
    w = words(sentence)
    return w[0] if w and w[0] in POLARITY_WORDS else None


_ASIDE = re.compile(r"\([^()]*\)")  # a parenthesis: its "not" negates only itself
_FAIL_TO = re.compile(r"\bfail(?:s|ed|ing)? to\b", re.I)


def has_negation(text: str) -> bool:
    """Whether the text's main clauses hold a negation cue or "fail to"; a cue inside
    parentheses ("... exempt from harbour fees (but not ferry fees)") negates only
    the aside."""
    text = _ASIDE.sub(" ", normalize_text(text))
    return any(w in NEGATION_CUES for w in words(text)) or "n't" in text \
        or bool(_FAIL_TO.search(text))


def support(sentence: str, evidence_texts: list[str]) -> float:
    """Share of the sentence's content words found in the evidence (0..1); 0 if it states
    a number the evidence does not contain, or if it is a short claim (three content words
    or fewer) with any word missing: there one missing word is usually the whole claim."""
    claim = [t for t in content_tokens(sentence) if t not in POLARITY_WORDS]
    ev_text = " ".join(evidence_texts)
    ev_numbers = set(_NUM.findall(normalize_text(ev_text)))
    for num in _NUM.findall(normalize_text(sentence)):
        if num not in ev_numbers:
            return 0.0
    if not claim:
        return 0.0
    have = set(content_tokens(ev_text))
    share = sum(t in have for t in claim) / len(claim)
    return 0.0 if len(claim) <= 3 and share < 1 else share


def affirms(question: str, evidence_texts: list[str], threshold: float = 0.75) -> bool:
    """Whether the evidence states the question's own claim (for a "Yes")."""
    return support(question, evidence_texts) >= threshold


def stance(evidence_texts: list[str], question: str) -> str:
    """What the evidence answers a yes/no question, read from negation alone: "yes" when
    it is negated as the question is ("Did the mill fail to open?" and "the mill never
    opened"), else "no"."""
    negated = any(has_negation(t) for t in evidence_texts)
    return "yes" if negated == has_negation(question) else "no"


def polarity_conflict(sentence: str, question: str, evidence_texts: list[str]) -> bool:
    """A "Yes" whose evidence is negated otherwise than the question. A "No" is never
    turned around: it usually rests on a fact the question gets wrong (another name,
    place or number in the same words), which negation cannot show."""
    if polarity(sentence) != "yes":
        return False
    return stance(evidence_texts, question) != "yes"


def verify_answer(text: str, question: str, evidence: list[Evidence],
                  cfg: VerifyConfig | None = None, yes_no: bool = False
                  ) -> list[SentenceSupport]:
    """Verify or flag each sentence against the evidence it cites.

    A bare "Yes"/"No" is joined to the supported sentence after it ("No, the DHSC told
    ... [1]"), or else supported by quoting its evidence, and either way checked for a
    polarity conflict with that evidence."""
    cfg = cfg or VerifyConfig()
    by_n = {e.n: e for e in evidence}
    top = sorted(evidence, key=lambda e: -e.score)[:cfg.context_top]
    context = [e.text for e in top]  # what a "Yes" may lean on besides its citations
    out: list[SentenceSupport] = []
    pending: tuple[str, str, list[int]] | None = None  # a bare yes/no waiting for a reason
    for sent, nums in split_answer(text):
        cited = [n for n in nums if n in by_n]
        pol = polarity(sent)
        if yes_no and pol and not [t for t in content_tokens(sent) if t not in POLARITY_WORDS]:
            if pending is None and evidence:
                pending = (sent, pol, cited or [evidence[0].n])
            continue
        checked = _check_sentence(sent, cited, question, evidence, cfg, yes_no, context)
        if pending is not None and checked.supported and not checked.conflict:
            bare, pol0, _ = pending
            joined = f"{pol0.capitalize()}, {_lower_first(checked.text)}"
            texts = [by_n[n].text for n in checked.citations]
            if polarity_conflict(joined, question, texts):
                checked = SentenceSupport(joined, checked.citations, False, 0.0, conflict=True)
            elif pol0 == "yes" and not affirms(question, texts + context):
                checked = SentenceSupport(joined, [], False, 0.0)
            else:
                checked = SentenceSupport(joined, checked.citations, True, checked.score)
            pending = None
        out.append(checked)
    if pending is not None:
        out.insert(0, _bare_polarity(pending[0], pending[1], question, pending[2], by_n,
                                     context))
    return out


def _lower_first(text: str) -> str:
    first, _, rest = text.partition(" ")
    return f"{first.lower()} {rest}" if first.lower() in STOPWORDS else text


def _check_sentence(sent: str, cited: list[int], question: str, evidence: list[Evidence],
                    cfg: VerifyConfig, yes_no: bool, context: list[str]) -> SentenceSupport:
    by_n = {e.n: e for e in evidence}
    best = _best_citations(sent, cited, evidence, cfg) if cited else None
    if best is None:
        score = support(sent, [by_n[n].text for n in cited]) if cited else 0.0
        if yes_no and polarity(sent) == "yes":  # an unsupported "Yes" against a denial
            negating = [n for n in sorted(by_n) if stance([by_n[n].text], question) == "no"
                        and has_negation(by_n[n].text)]
            if negating:
                return SentenceSupport(sent, negating[:1], False, 0.0, conflict=True)
        return SentenceSupport(sent, [], False, round(score, 3))
    ns, score = best
    texts = [by_n[n].text for n in ns]
    if yes_no and polarity_conflict(sent, question, texts):
        return SentenceSupport(sent, ns, False, 0.0, conflict=True)
    if yes_no and polarity(sent) == "yes" and not affirms(question, texts + context):
        return SentenceSupport(sent, [], False, round(score, 3))
    return SentenceSupport(sent, ns, True, round(score, 3))


def _bare_polarity(sent: str, pol: str, question: str, cited: list[int],
                   by_n: dict[int, Evidence], context: list[str]) -> SentenceSupport:
    """A bare "Yes [n]" / "No [n]": supported by quoting its evidence, unless the evidence
    says the opposite."""
    texts = [by_n[n].text for n in cited]
    if polarity_conflict(sent, question, texts):
        return SentenceSupport(sent, cited, False, 0.0, conflict=True)
    if pol == "yes" and not affirms(question, texts + context):
        return SentenceSupport(sent, [], False, 0.0)
    ev = by_n[cited[0]]
    return SentenceSupport(" ".join(ev.text.split()), [ev.n], True, 1.0, quote=True,
                           prefix=f"{pol.capitalize()}:")


def _best_citations(sent: str, pool: list[int], evidence: list[Evidence],
                    cfg: VerifyConfig) -> tuple[list[int], float] | None:
    """Smallest set (one or two items) of evidence from ``pool`` that supports ``sent``:
    every citation kept is needed (ALCE precision)."""
    by_n = {e.n: e for e in evidence}
    singles = sorted(((support(sent, [by_n[n].text]), n) for n in pool), reverse=True)
    if singles and singles[0][0] >= cfg.support_threshold:
        return [singles[0][1]], singles[0][0]
    best = None
    top = [n for _, n in singles[:4]]
    for i, a in enumerate(top):
        for b in top[i + 1:]:
            s = support(sent, [by_n[a].text, by_n[b].text])
            if s >= cfg.support_threshold and (best is None or s > best[1]):
                best = (sorted([a, b]), s)
    if best and all(support(sent, [by_n[n].text]) < best[1] for n in best[0]):
        return best
    return None


def quote(ev: Evidence, prefix: str = "") -> SentenceSupport:
    return SentenceSupport(" ".join(ev.text.split()), [ev.n], True, 1.0, quote=True,
                           prefix=prefix)


def flip_conflict(evidence: list[Evidence], checked: list[SentenceSupport]
                  ) -> SentenceSupport | None:
    """A yes/no answer rejected for contradicting its evidence, turned around: the
    evidence quoted with the opposite polarity ("No:" and the evidence that negates)."""
    by_n = {e.n: e for e in evidence}
    conflict = next((s for s in checked if s.conflict and s.citations), None)
    if conflict is None:
        return None
    pol = polarity(conflict.text)
    cited = [by_n[n] for n in conflict.citations if n in by_n]
    if not cited:
        return None
    if pol == "yes":  # quote the best evidence that negates, the cited one if none
        cited = [e for e in evidence if has_negation(e.text)] or cited
    return quote(cited[0], {"yes": "No:", "no": "Yes:"}.get(pol or "", ""))


def render(sentences: list[SentenceSupport], evidence: list[Evidence]
           ) -> tuple[str, list[Citation], list[SentenceSupport]]:
    """Answer text with citations renumbered [1]..[n] by first use, the citation list,
    and the sentences with the new numbers. Unsupported sentences are left out."""
    by_n = {e.n: e for e in evidence}
    order: dict[int, int] = {}
    kept: list[SentenceSupport] = []
    parts: list[str] = []
    for s in sentences:
        if not s.supported:
            continue
        new = [order.setdefault(n, len(order) + 1) for n in s.citations]
        body = s.text.rstrip()
        end = body[-1] if body and body[-1] in ".!?" else "."
        body = body[:-1] if body and body[-1] in ".!?" else body
        if s.quote:  # the quoted sentence's own outer quote marks would double up
            body = body.strip("\"\u201c\u201d").rstrip(".!?") or body
            body = f"{s.prefix + ' ' if s.prefix else ''}\u201c{body}{end}\u201d"
            end = ""
        parts.append(f"{body} {''.join(f'[{n}]' for n in new)}{end}")
        kept.append(SentenceSupport(s.text, new, True, s.score, quote=s.quote,
                                    prefix=s.prefix))
    citations = [Citation(n=new, doc=by_n[old].doc, start=by_n[old].start, end=by_n[old].end,
                          text=by_n[old].text, title=by_n[old].title)
                 for old, new in sorted(order.items(), key=lambda kv: kv[1])]
    return " ".join(parts), citations, kept
