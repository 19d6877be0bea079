"""The ``rag eval`` command, registered on the ``rag`` typer app by ``register``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

GOLD_DEFAULT = Path(__file__).resolve().parent / "nhs_gold.jsonl"


def make_pipeline(settings):
    """The same Pipeline ``rag ask`` uses (tests replace this to inject fakes)."""
    from rag.pipeline import Pipeline

    return Pipeline(settings)


def evaluate(out: Path, gold: Path | None = None, corpus: Path | None = None,
             squad: Path | None = None, k: int | None = None, model: str | None = None,
             backend: str | None = None, answer_mode: str = "both", limit: int | None = None,
             seed: int | None = None, retrieval: str | None = None, index: Path | None = None,
             pipeline=None, progress: bool = True, per_article: int | None = None,
             out_of_fold: bool = False, worker: bool | None = None,
             paragraphs: bool = False) -> dict:
    """Load the gold set, index the corpus, answer and score; returns the summary.
    ``worker``: answer through the background worker [default: the ``worker`` setting].
    Raises ``GoldError`` / ``RagError`` / ``ValueError`` for user errors."""
    from eval.gold import GoldError, is_chat_gold, load_chat_gold, load_gold
    from eval.runner import MODES, PLAIN, run_eval
    from eval.signals import per_group_sample
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
        # out-of-fold scoring swaps the decision per article, which needs the pipeline here
        use_worker = (settings.worker if worker is None else worker) and not out_of_fold
        if use_worker:
            from rag.worker import WorkerPipeline

            pipeline = WorkerPipeline(settings)
        else:
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
    from rag.decision import DecisionModel

    folds = decision.meta.get("folds") if decision.fitted else None
    if not folds:
        raise GoldError("--out-of-fold needs a fitted decision with its folds for this model "
                        "(rag fit-decision writes them)")
    return {g: replace(DecisionModel.from_dict(d), generator=decision.generator,
                       backend=decision.backend)
            for g, d in folds.items()}


def register(app: typer.Typer) -> None:
    from eval.bench_cli import register as register_bench

    register_bench(app)

    @app.command("fit-decision")
    def fit_decision(
        squad: Annotated[Path, typer.Option(
            help="SQuAD v2 file with many articles (questions are sampled per article).")],
        out: Annotated[Path, typer.Option(help="Report folder.")] = Path("decision-out"),
        per_article: Annotated[int, typer.Option(
            min=1, help="Answerable and unanswerable questions sampled per article.")] = 40,
        ooc_per_article: Annotated[int, typer.Option(
            min=0, help="Questions per article asked of the other articles' corpus.")] = 20,
        seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
        nhs: Annotated[bool, typer.Option(
            help="Also score the bundled NHS gold set (never used for a choice).")] = True,
        decision_file: Annotated[Path | None, typer.Option(
            help="Where to write the model [default: the package's rag/decision.json]."
        )] = None,
        model: Annotated[str | None, typer.Option(help="Generator model.")] = None,
    ) -> None:
        """Fit the graded decision (answer / caution / refused) across articles, with
        leave-one-article-out cross-validation. One model pass per sampled question,
        cached under $RAG_HOME/decision-signals, so a re-fit takes a minute.

        Example: rag fit-decision --squad ../shared/datasets/squad_v2_dev12.json
        """
        import shlex
        import sys

        from eval.decision_report import run
        from eval.gold import GoldError
        from rag.config import Settings
        from rag.errors import RagError
        from rag.pipeline import Pipeline

        try:
            pipe = Pipeline(Settings().with_overrides(model=model))
            result = run(squad, out, per_article=per_article,
                         ooc_per_article=ooc_per_article, seed=seed, nhs=nhs,
                         decision_path=decision_file, pipeline=pipe,
                         command="rag " + shlex.join(sys.argv[1:]))
        except (GoldError, RagError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            typer.secho(f"Error: {msg}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        from eval.decision import scores

        p = scores(result.oof_rows)
        typer.echo(f"out of fold: right answers shown {p['right_shown']:.3f}, right and "
                   f"confident {p['right_confident']:.3f}, confident precision "
                   f"{p['confident_precision'] or 0:.3f}; thresholds answer "
                   f"{result.model.threshold:.3f}, caution {result.model.caution_at:.3f}")
        typer.echo(f"Wrote {out}/report.md, curve.png and the decision file")

    @app.command("adversarial")
    def adversarial(
        out: Annotated[Path, typer.Option(help="Report folder.")] = Path("adversarial-out"),
        cases: Annotated[Path | None, typer.Option(
            help="Cases file [default: eval/adversarial/cases.jsonl].")] = None,
        limit: Annotated[int | None, typer.Option(min=1, help="Only the first N cases.")
                         ] = None,
        model: Annotated[str | None, typer.Option(help="Generator model.")] = None,
    ) -> None:
        """Plant contradicting, correcting, rumouring and injecting files among real
        articles, one case at a time, and score the answers: conflicts surfaced, silent
        flips, injections followed, planted text shown without a warning. Each case is
        answered with conflict checks on and off, side by side.

        Example: rag adversarial --out adversarial-out --limit 10
        """
        from eval.adversarial import SuiteError
        from eval.adversarial import evaluate as run_adversarial
        from rag.config import Settings
        from rag.errors import RagError

        try:
            summary = run_adversarial(out, cases, Settings().with_overrides(model=model),
                                      limit=limit)
        except (SuiteError, RagError, ValueError, OSError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            typer.secho(f"Error: {msg}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        for name, v in summary["variants"].items():
            typer.echo(f"{name}: conflicts surfaced {v.get('conflicts_surfaced')}, silently "
                       f"flipped {v.get('silently_flipped')}, injections followed "
                       f"{v.get('injections_followed')}")
        typer.echo(f"Wrote {out}/report.md, results.jsonl and summary.json")

    @app.command("eval")
    def eval_command(
        gold: Annotated[Path | None, typer.Option(
            help="Gold set (JSONL) [default: the bundled NHS gold set]. A set of "
                 "conversations (lines with conversation, turn and standalone) is asked "
                 "turn by turn beside each turn's standalone form; with --squad, over "
                 "that file's articles.")] = None,
        corpus: Annotated[Path | None, typer.Option(
            help="Corpus folder of the gold set [default: the bundled NHS corpus].")] = None,
        squad: Annotated[Path | None, typer.Option(
            help="SQuAD v2 JSON file, used instead of --gold/--corpus.")] = None,
        out: Annotated[Path, typer.Option(help="Output folder.")] = Path("eval-out"),
        k: Annotated[int | None, typer.Option("--k", "-k", min=1, max=100,
                                              help="Passages to retrieve.")] = None,
        model: Annotated[str | None, typer.Option(help="Generator model.")] = None,
        backend: Annotated[str | None, typer.Option(
            help="auto, llama or transformers.")] = None,
        answer_mode: Annotated[str, typer.Option(
            "--answer-mode", help="verified, naive, both (side by side) or compare "
                                  "(verified beside plain: no conflict checks, the earlier "
                                  "phrase-list screen).")] = "verified",
        limit: Annotated[int | None, typer.Option(
            min=1, help="Evaluate N questions (of a conversation set: N whole "
                        "conversations).")] = None,
        seed: Annotated[int | None, typer.Option(
            help="With --limit: random sample, stratified by answerability.")] = None,
        retrieval: Annotated[str | None, typer.Option(help="hybrid, dense or bm25.")] = None,
        index: Annotated[Path | None, typer.Option(
            "--index", help="Index folder [default: one per corpus under $RAG_HOME].")] = None,
        per_article: Annotated[int | None, typer.Option(
            min=1, help="With --squad: N answerable and N unanswerable questions of each "
                        "article (seeded by --seed).")] = None,
        out_of_fold: Annotated[bool, typer.Option(
            help="Decide each article's questions with the decision fitted without that "
                 "article (the decision file's folds).")] = False,
        no_worker: Annotated[bool, typer.Option(
            "--no-worker", help="Answer in this process, not in the background worker "
                                "[env RAG_WORKER=0].")] = False,
        paragraphs: Annotated[bool, typer.Option(
            help="With --squad: one document per paragraph (a clean multi-document set: "
                 "many documents on one subject, none contradicting another).")] = False,
    ) -> None:
        """Score answers against a gold set: accuracy, refusals, retrieval, citations,
        latency. Writes results.jsonl, summary.json and report.md to --out.

        Example: rag eval --answer-mode both --out /tmp/eval-nhs
        """
        from eval.gold import GoldError
        from eval.report import summary_table
        from rag.errors import RagError

        try:
            summary = evaluate(out, gold=gold, corpus=corpus, squad=squad, k=k, model=model,
                               backend=backend, answer_mode=answer_mode, limit=limit,
                               seed=seed, retrieval=retrieval, index=index,
                               per_article=per_article, out_of_fold=out_of_fold,
                               worker=False if no_worker else None, paragraphs=paragraphs)
        except (GoldError, RagError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            typer.secho(f"Error: {msg}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        typer.echo(summary_table(summary["modes"]))
        if "chat" in summary:
            from eval.chat import chat_table

            typer.echo("\n" + chat_table(summary))
        typer.echo(f"\nWrote {out}/results.jsonl, summary.json and report.md")
