"""The questions the graded decision is fitted and checked on, with one model pass each.

Every question is tagged with its article, the group for cross-validation, and its set:

- ``squad``: SQuAD 2.0 answerable and adversarial unanswerable questions (written by crowd
  workers to look answerable from the very paragraph), asked of all the articles;
- ``out_of_corpus``: questions of one article (SQuAD's and, a third as many, yes/no
  ones) asked of a corpus of the other articles, where nothing answers them: what a user
  asks about something the documents never mention;
- ``yesno``: yes/no questions and their negations over the same articles
  (``eval/yesno_gold_squad.jsonl``), answered by one sentence;
- ``nhs``: the bundled NHS gold set, a check set: scored, never used for a choice.

The signals of each question (eval.decision.signals) are cached, so a re-fit replays them in
seconds; a cached reply whose evidence has changed since is answered again.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from eval.decision.signals import cache_key, collect, per_group_sample
from eval.gold import GoldItem, load_gold

HERE = Path(__file__).resolve().parents[1]
YESNO_GOLD = HERE / "yesno_gold_squad.jsonl"
SETS = ("squad", "out_of_corpus", "yesno")  # the fitting sets
CHECK_SET = "nhs"


def gold_spans_for(documents: dict[str, str]) -> Callable[[GoldItem], list]:
    """(doc, start, end) of each gold evidence as whole sentences (``M.gold_sentences``)."""
    from eval import metrics as M

    def spans(item: GoldItem) -> list[tuple[str, int, int]]:
        out = []
        for ev in item.evidence:
            text = documents.get(ev.doc, "")
            out += [(ev.doc, s, e) for s, e in M.gold_sentences(text, ev.spans(text))]
        return out
    return spans


def collect_set(pipeline, corpus: Path, items: list[GoldItem], cache_dir: Path, name: str,
                group_of: Callable[[GoldItem], str], revalidate: bool = True) -> list[dict]:
    """Index ``corpus`` and collect (or read back) the signals of ``items``, with a
    pipeline for that corpus sharing ``pipeline``'s models; rows tagged ``name``."""
    from rag.pipeline import Pipeline

    if not items:
        return []
    pipeline = Pipeline(pipeline.settings.with_overrides(corpus=corpus),
                        embedder=pipeline.embedder, generator=pipeline.generator)
    pipeline.index(Path(corpus))
    docs = {d: doc.text for d, doc in pipeline.retriever.data.documents.items()}
    cache = Path(cache_dir) / f"{name}-{cache_key(pipeline)}.jsonl"
    return collect(pipeline, items, cache, group_of, gold_spans_for(docs),
                   revalidate=revalidate, set_name=name.split("-")[0])


def corpus_without(corpus: Path, doc: str) -> Path:
    """A corpus folder beside ``corpus`` holding every document but ``doc`` (made once)."""
    folder = corpus.parent / f"{corpus.name}-without-{Path(doc).stem}"
    names = sorted(p.name for p in corpus.glob("*.txt") if p.name != doc)
    if not folder.is_dir() or sorted(p.name for p in folder.glob("*.txt")) != names:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for name in names:
            shutil.copyfile(corpus / name, folder / name)
    return folder


def out_of_corpus(items: list[GoldItem], group: dict[str, str], per_article: int,
                  seed: int) -> dict[str, list[GoldItem]]:
    """Per article, ``per_article`` of its questions (half answerable, half not, drawn with
    ``seed``) as unanswerable questions, to be asked of the other articles."""
    half = max(1, per_article // 2)
    picked = per_group_sample(items, lambda it: group[it.id], half, seed=seed + 1)
    out: dict[str, list[GoldItem]] = {}
    for it in picked:
        out.setdefault(group[it.id], []).append(
            GoldItem(f"ooc-{it.id}", it.question, [], False, [], "out_of_corpus",
                     group[it.id]))
    return out


def collect_all(pipeline, squad: Path, per_article: int, ooc_per_article: int,
                yesno: Path | None, nhs: Path | None, cache_dir: Path, seed: int = 0,
                revalidate: bool = True) -> list[dict]:
    """The signals of every set (see the module's text), fitting sets first."""
    from eval.squad import build_corpus, item_articles, read_squad, squad_items
    from rag.config import BUNDLED_CORPUS, data_home

    data = read_squad(squad)
    items = squad_items(data)
    group = item_articles(data)
    corpus = build_corpus(squad, data_home() / "eval-corpora")
    sample = per_group_sample(items, lambda it: it.group, per_article, seed)
    rows = collect_set(pipeline, corpus, sample, cache_dir, "squad", lambda it: it.group,
                       revalidate)
    outside = out_of_corpus(items, group, ooc_per_article, seed)
    if yesno is not None:
        yn = load_gold(yesno)
        rows += collect_set(pipeline, corpus, yn, cache_dir, "yesno", lambda it: it.group,
                            revalidate)
        # yes/no questions asked of the other articles too, a third as many as the others
        yn_outside = out_of_corpus(yn, {it.id: it.group for it in yn},
                                   max(2, ooc_per_article // 3), seed)
        for doc, qs in yn_outside.items():
            outside.setdefault(doc, []).extend(qs)
    for doc, qs in sorted(outside.items()):
        rows += collect_set(pipeline, corpus_without(corpus, doc), qs, cache_dir,
                            f"out_of_corpus-{Path(doc).stem}", lambda it: it.group,
                            revalidate)
    if nhs is not None:
        rows += collect_set(pipeline, BUNDLED_CORPUS, load_gold(nhs), cache_dir, CHECK_SET,
                            lambda it: "nhs", revalidate)
    return rows
