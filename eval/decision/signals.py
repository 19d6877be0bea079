"""One model pass per question, kept: what the answer-or-refuse decision is fitted on.

For each gold question the pipeline retrieves, selects evidence and generates once with
the refusal's first token suppressed (rag.generate.base.Probe). The row keeps everything the
steps after generation need (rag.grounding.draft.settle), so drafts, rules and decisions are
replayed on the cache in seconds, without the model:

    question, gold answers and evidence spans, the article (the group for
    cross-validation), the scored evidence sentences, the numbered evidence, the reply,
    P(refusal) at the first step and the reply's token log-probabilities; for a yes/no
    question, the model's reading (P(Yes)) of the sentences each draft of it cites
    (rag.grounding.reading), added to rows cached before it was read.

The cache is one JSONL file per set, named by a hash of everything that changes a reply
(model, prompt, evidence settings); an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, fields, replace
from pathlib import Path

from eval.gold import GoldItem
from rag.generate.base import Probe
from rag.generate.prompts import REFUSAL_TOKEN, VERIFIED_SYSTEM, verified_request
from rag.grounding.draft import DraftRules, make_draft
from rag.grounding.reading import cited_texts, needs_reading, read_yes_no, reading_version
from rag.grounding.signals import POOL
from rag.retrieve.evidence import ScoredSentence
from rag.types import Evidence


def cache_key(pipeline) -> str:
    """A hash of what changes the model's reply or the evidence it sees."""
    s = pipeline.settings
    parts = [s.model, VERIFIED_SYSTEM, s.embedding_model, s.retrieval, str(s.k),
             str(s.evidence_sentences), str(s.evidence_pool), str(s.chunk_words),
             str(s.overlap_words), str(s.context_tokens), str(s.seed)]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:12]


def per_group_sample(items: list[GoldItem], group_of: Callable[[GoldItem], str],
                     per_group: int | None, seed: int = 0) -> list[GoldItem]:
    """Up to ``per_group`` answerable and ``per_group`` unanswerable questions of each
    group (article), drawn with ``seed``; all of them, in that order, when ``per_group``
    is None. Each
    group is shuffled on its own, so a larger sample holds a smaller one, and the result
    takes the groups in turn (one question of each, then the next), so any prefix of it
    is a balanced sample too."""
    by: dict[tuple[str, bool], list[GoldItem]] = defaultdict(list)
    for it in items:
        by[(group_of(it), it.answerable)].append(it)
    queues = []
    for key in sorted(by):
        pool = list(by[key])
        random.Random(f"{seed}:{key[0]}:{key[1]}").shuffle(pool)
        queues.append(pool if per_group is None else pool[:per_group])
    return [q[i] for i in range(max(map(len, queues), default=0)) for q in queues
            if i < len(q)]


def scored_to_dict(s: ScoredSentence) -> dict:
    return asdict(s)


def row_scored(row: dict) -> list[ScoredSentence]:
    return [ScoredSentence(**d) for d in row["scored"]]


def row_evidence(row: dict) -> list[Evidence]:
    return [Evidence(**d) for d in row["evidence"]]


def row_probe(row: dict) -> Probe:
    return Probe("", p_refusal=row["p_refusal"], suppressed=row["suppressed"],
                 logprobs=list(row["logprobs"]))


def read_cache(path: Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by an interrupted run
                continue
    return rows


def collect(pipeline, items: Iterable[GoldItem], cache: Path, group_of: Callable[[GoldItem], str],
            gold_spans: Callable[[GoldItem], list[tuple[str, int, int]]],
            keep_scored: int = POOL, progress: bool = True, revalidate: bool = False,
            set_name: str = "") -> list[dict]:
    """Answer each item once (verified prompt, probe on) unless ``cache`` has it; returns
    the cached rows of ``items``, in order. ``revalidate``: first recompute each cached
    row's evidence (no model involved) and answer again where it changed (another
    screen, index or evidence setting). ``set_name`` tags the rows (e.g. "squad",
    "out_of_corpus")."""
    from tqdm import tqdm

    items = list(items)
    cache = Path(cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    have = {r["id"]: r for r in read_cache(cache)}
    k = pipeline.settings.k

    def evidence_of(question: str):
        pool = pipeline.retriever.retrieve(question, pipeline.pool_size(k))
        return (pool, *pipeline.evidence_for(question, pool))

    if revalidate:  # a cached reply is stale when the evidence it saw has changed since
        for it in tqdm([it for it in items if it.id in have], desc="checking cache",
                       unit="q", disable=not progress):
            _, _, evidence = evidence_of(it.question)
            spans = [[e.doc, e.start, e.end] for e in evidence]
            if spans != [[e["doc"], e["start"], e["end"]] for e in have[it.id]["evidence"]]:
                del have[it.id]
    todo = [it for it in items if it.id not in have]
    with open(cache, "a", encoding="utf-8") as f:
        for it in tqdm(todo, desc="signals", unit="q", disable=not progress or not todo):
            t0 = time.perf_counter()
            pool, scored, evidence = evidence_of(it.question)
            passages = pool[:k]
            probe = Probe(REFUSAL_TOKEN)
            reply, first = "", None
            if evidence:
                request = verified_request(it.question, evidence, pipeline.settings)
                for piece in pipeline.generator.stream(**request, probe=probe):
                    first = first or time.perf_counter() - t0
                    reply += piece
            row = {
                "id": it.id, "group": group_of(it), "set": set_name, "question": it.question,
                "answerable": it.answerable, "answers": it.answers, "type": it.kind,
                "gold_spans": [list(s) for s in gold_spans(it)],
                "passages": [{"doc": p.doc, "start": p.start, "end": p.end,
                              "score": p.score, "dense_score": p.dense_score,
                              "bm25_score": p.bm25_score} for p in passages],
                "scored": [scored_to_dict(s) for s in scored[:keep_scored]],
                "evidence": [asdict(e) for e in evidence],
                "reply": reply, "p_refusal": probe.p_refusal, "suppressed": probe.suppressed,
                "logprobs": [round(x, 5) for x in probe.logprobs],
                "first_token_s": first, "total_s": time.perf_counter() - t0,
            }
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            have[it.id] = row
    rows = [have[it.id] for it in items]
    if add_readings(pipeline.generator, rows, progress):
        tmp = cache.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                               for r in have.values()), encoding="utf-8")
        tmp.replace(cache)  # the whole file or the old one, never half
    return rows


def draft_variants() -> list[DraftRules]:
    """The draft rules a fit replays: all on, and each one off (eval.decision)."""
    on = DraftRules()
    return [on, *(replace(on, **{f.name: False}) for f in fields(DraftRules))]


def reading_key(texts: list[str]) -> str:
    return "\x1f".join(texts)


def row_reading(row: dict, draft, evidence: list[Evidence]) -> float | None:
    """The stored reading (P(Yes)) of ``draft``'s cited sentences; None when it needs
    none, NaN when the row has none stored (the decision then treats it as missing)."""
    if not needs_reading(row["question"], draft, evidence):
        return None
    if row.get("reading_version") != reading_version():  # read with another prompt
        return math.nan
    p = row.get("readings", {}).get(reading_key(cited_texts(draft, evidence)), math.nan)
    return math.nan if p is None else p


def add_readings(generator, rows: list[dict], progress: bool = True) -> int:
    """Read each yes/no draft any ``draft_variants`` rule set makes of a row (rag.grounding.reading)
    that the row has not stored yet, into ``row["readings"]``; how many were read."""
    from tqdm import tqdm

    todo = []
    for r in rows:
        if r.get("reading_version") != reading_version():  # read with another prompt
            r["readings"], r["reading_version"] = {}, reading_version()
        evidence = row_evidence(r)
        for rules in draft_variants():
            draft = make_draft(r["question"], evidence, r["reply"], rules=rules)
            if needs_reading(r["question"], draft, evidence):
                key = reading_key(cited_texts(draft, evidence))
                if key not in r.get("readings", {}) and (r, key) not in todo:
                    todo.append((r, key))
    for r, key in tqdm(todo, desc="readings", unit="q", disable=not progress or not todo):
        r.setdefault("readings", {})[key] = read_yes_no(generator, r["question"],
                                                        key.split("\x1f"))
    return len(todo)
