"""One evaluation run, as ``rag eval`` starts it: the gold set (single questions, a
SQuAD file or conversations) read and sampled, the corpus indexed, every question
answered and scored into an output folder (``evaluate``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eval.gold import GOLD_DEFAULT

# what answers the questions: a ``rag.pipeline.Pipeline``, or anything with its
# ``settings``, ``index``, ``ask`` and ``document_texts`` (the background worker's)
PipelineFactory = Callable[[Any], Any]


def evaluate(out: Path, gold: Path | None = None, corpus: Path | None = None,
             squad: Path | None = None, k: int | None = None, model: str | None = None,
             backend: str | None = None, answer_mode: str = "both", limit: int | None = None,
             seed: int | None = None, retrieval: str | None = None, index: Path | None = None,
             pipeline=None, progress: bool = True, per_article: int | None = None,
             out_of_fold: bool = False, paragraphs: bool = False,
             make_pipeline: PipelineFactory | None = None) -> dict:
    """Load the gold set, index the corpus, answer and score; returns the summary.
    ``pipeline`` answers; without one, ``make_pipeline(settings)`` makes it [default: a
    ``Pipeline`` in this process, which out-of-fold scoring needs: it swaps the decision
    per article]. Raises ``GoldError`` / ``RagError`` / ``ValueError`` for user
    errors."""
    from eval.decision.signals import per_group_sample
    from eval.gold import GoldError, is_chat_gold, load_chat_gold, load_gold
    from eval.runner import MODES, PLAIN, run_eval
    from eval.squad import build_corpus, item_articles, read_squad, sample, squad_items
    from rag.config import BUNDLED_CORPUS, Settings, data_home

    if answer_mode not in ("verified", "naive", "both", "compare"):
        raise GoldError(f"--answer-mode must be verified, naive, both or compare; got "
                        f"{answer_mode!r}")
    modes = {"both": MODES, "compare": ("verified", PLAIN)}.get(answer_mode, (answer_mode,))
    group_of = None
    chat_turns = None
    if gold is not None and is_chat_gold(gold):  # conversations (eval.chat)
        if answer_mode not in ("verified", "naive"):
            raise GoldError("a conversation gold set is scored in one answer mode: "
                            "--answer-mode verified or naive")
        if squad is not None and corpus is not None:
            raise GoldError("give the conversations' corpus as --corpus or --squad, not both")
        if per_article or out_of_fold:
            raise GoldError("--per-article and --out-of-fold are for single questions, not "
                            "a conversation gold set")
        chat_turns = load_chat_gold(gold)
        if squad is not None:  # conversations over the articles of a SQuAD file
            corpus = build_corpus(squad, data_home() / "eval-corpora")
        corpus = corpus or BUNDLED_CORPUS
        items = [t.item for t in chat_turns]
        source = str(gold)
    elif squad is not None:
        if gold is not None or corpus is not None:
            raise GoldError("give either --squad or --gold/--corpus, not both")
        data = read_squad(squad)
        items = squad_items(data, paragraphs)
        articles = item_articles(data)
        group_of = lambda it: articles.get(it.id, "")  # noqa: E731
        if per_article:
            items = per_group_sample(items, group_of, per_article, seed or 0)
        corpus = build_corpus(squad, data_home() / "eval-corpora", paragraphs)
        source = str(squad)
    else:
        if per_article or paragraphs:
            raise GoldError("--per-article and --paragraphs need --squad (a gold set with "
                            "articles)")
        gold = gold or GOLD_DEFAULT
        corpus = corpus or BUNDLED_CORPUS
        items = load_gold(gold)
        source = str(gold)
    if not Path(corpus).is_dir():
        raise GoldError(f"corpus folder not found: {corpus}")
    if chat_turns is not None:
        chat_turns = sample_conversations(chat_turns, limit, seed)
    else:
        items = sample(items, limit, seed)
    if pipeline is None:
        settings = Settings().with_overrides(corpus=corpus, index=index, k=k, model=model,
                                             backend=backend, retrieval=retrieval)
        if make_pipeline is None:
            from rag.pipeline import Pipeline

            make_pipeline = Pipeline
        pipeline = make_pipeline(settings)
    pipeline.index(Path(corpus))
    if chat_turns is not None:
        from eval.chat import run_chat_eval

        meta = {"gold": source, "corpus": str(corpus), "model": pipeline.settings.model,
                "retrieval": pipeline.settings.retrieval, "limit": limit, "seed": seed}
        return run_chat_eval(pipeline, chat_turns, out, k=k, mode=answer_mode, meta=meta,
                             progress=progress)
    decisions = fold_decisions(pipeline.decision) if out_of_fold else None
    meta = {"gold": source, "corpus": str(corpus), "model": pipeline.settings.model,
            "retrieval": pipeline.settings.retrieval, "limit": limit, "seed": seed,
            "per_article": per_article, "out_of_fold": out_of_fold}
    return run_eval(pipeline, items, out, modes=modes, k=k, meta=meta, progress=progress,
                    group_of=group_of, decisions=decisions)


def sample_conversations(turns: list, limit: int | None, seed: int | None) -> list:
    """With ``limit``: the first N conversations, or N drawn at random with ``seed``;
    every turn of each (a conversation is asked whole)."""
    if limit is None:
        return turns
    order = list(dict.fromkeys(t.conversation for t in turns))
    if seed is not None:
        import random

        order = random.Random(seed).sample(order, min(limit, len(order)))
    keep = set(order[:limit])
    return [t for t in turns if t.conversation in keep]


def fold_decisions(decision) -> dict:
    """Article -> the decision fitted without it (the decision file's folds); articles
    it was never fitted on use the shipped decision itself."""
    from dataclasses import replace

    from eval.gold import GoldError
    from rag.grounding.decision import DecisionModel

    folds = decision.meta.get("folds") if decision.fitted else None
    if not folds:
        raise GoldError("--out-of-fold needs a fitted decision with its folds for this model "
                        "(rag fit-decision writes them)")
    return {g: replace(DecisionModel.from_dict(d), generator=decision.generator,
                       backend=decision.backend)
            for g, d in folds.items()}
