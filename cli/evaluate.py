"""``rag eval``, ``rag fit-decision`` and ``rag adversarial``: the measurements of
``eval/`` (``eval.run``, ``eval.decision.report``, ``eval.adversarial``) as commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli import common
from cli.common import fail, one_line


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
        help="Where to write the model [default: the package's rag/grounding/decision.json]."
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

    from eval.decision.report import run
    from eval.gold import GoldError
    from rag.config import Settings
    from rag.errors import RagError

    try:
        pipe = common.make_pipeline(Settings().with_overrides(model=model))
        result = run(squad, out, per_article=per_article,
                     ooc_per_article=ooc_per_article, seed=seed, nhs=nhs,
                     decision_path=decision_file, pipeline=pipe,
                     command="rag " + shlex.join(sys.argv[1:]))
    except (GoldError, RagError, ValueError) as exc:
        fail(one_line(exc))
    from eval.decision.fit import scores

    p = scores(result.oof_rows)
    typer.echo(f"out of fold: right answers shown {p['right_shown']:.3f}, right and "
               f"confident {p['right_confident']:.3f}, confident precision "
               f"{p['confident_precision'] or 0:.3f}; thresholds answer "
               f"at P(right) {result.model.threshold:.3f} (yes/no "
               f"{result.model.answer_at(True):.3f}), refuse under P(covered) "
               f"{result.model.caution_at:.3f}")
    typer.echo(f"Wrote {out}/report.md, curve.png and the decision file")


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
        fail(one_line(exc))
    for name, v in summary["variants"].items():
        typer.echo(f"{name}: conflicts surfaced {v.get('conflicts_surfaced')}, silently "
                   f"flipped {v.get('silently_flipped')}, injections followed "
                   f"{v.get('injections_followed')}")
    typer.echo(f"Wrote {out}/report.md, results.jsonl and summary.json")

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
                              "(verified beside plain: the same without the conflict "
                              "check and the screen).")] = "verified",
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
    from eval.run import evaluate
    from rag.errors import RagError

    try:
        summary = evaluate(out, gold=gold, corpus=corpus, squad=squad, k=k, model=model,
                           backend=backend, answer_mode=answer_mode, limit=limit,
                           seed=seed, retrieval=retrieval, index=index,
                           per_article=per_article, out_of_fold=out_of_fold,
                           paragraphs=paragraphs,
                           make_pipeline=_answerer(not no_worker and not out_of_fold))
    except (GoldError, RagError, ValueError) as exc:
        fail(one_line(exc))
    typer.echo(summary_table(summary["modes"]))
    if "chat" in summary:
        from eval.chat import chat_table

        typer.echo("\n" + chat_table(summary))
    typer.echo(f"\nWrote {out}/results.jsonl, summary.json and report.md")


def _answerer(use_worker: bool):
    """What answers the eval's questions: the background worker, or a pipeline in this
    process (``common.make_pipeline``)."""
    def make(settings):
        if use_worker and settings.worker:
            from serve.worker import WorkerPipeline

            return WorkerPipeline(settings)
        return common.make_pipeline(settings)

    return make


def register(app: typer.Typer) -> None:
    app.command("fit-decision")(fit_decision)
    app.command("adversarial")(adversarial)
    app.command("eval")(eval_command)
