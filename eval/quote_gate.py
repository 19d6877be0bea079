"""Fit the quoting gate for questions the model declines (``Thresholds.quote_refused``).

When the model replies "not in the documents" to a question that asks for a name, number,
date or duration, the pipeline quotes the best evidence sentence that holds such an answer
and enough of the question's words. This measures that gate on real model replies:

    RAG_HOME=/tmp/rag-eval-home python -m eval.quote_gate

It asks the model every NHS gold question and a SQuAD sample held out from the reported
one (``--seed 1``; questions of the reported seed-0 sample are left out), with the
verified prompt, and keeps the non-yes/no questions it declines. For each gate it counts
the unanswerable questions that would be quoted, and the answerable ones whose quote holds
a gold answer. The fitted gate is the lowest that quotes no unanswerable question that the
0.5 gate did not.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from eval.gold import GoldItem, load_gold
from rag.types import Evidence


@dataclass(frozen=True)
class Declined:
    """A question the model declined, with the evidence it was shown."""

    item: GoldItem
    evidence: list[Evidence]


def declined_questions(pipeline, items: Sequence[GoldItem]) -> list[Declined]:
    from rag.evidence import is_yes_no
    from rag.pipeline import VERIFIED_MAX_TOKENS, declined
    from rag.prompts import verified_messages

    out = []
    for item in items:
        if is_yes_no(item.question):
            continue
        passages = pipeline.retriever.retrieve(item.question, pipeline.settings.k)
        scored, evidence = pipeline.evidence_for(item.question, passages)
        if not scored or scored[0].score < pipeline.thresholds.refuse_below:
            continue  # refused before the model is asked
        reply = "".join(pipeline.generator.stream(verified_messages(item.question, evidence),
                                                  max_tokens=VERIFIED_MAX_TOKENS))
        if declined(reply):
            out.append(Declined(item, evidence))
    return out


def sweep(cases: Sequence[Declined], gates: Sequence[float]) -> list[dict]:
    """Per gate: unanswerable questions quoted, answerable ones quoted with a gold answer."""
    from rag.verify import VerifyConfig, best_quote

    rows = []
    for gate in gates:
        cfg = VerifyConfig(quote_refused=gate)
        wrong = right = 0
        for c in cases:
            ev = best_quote(c.item.question, c.evidence, cfg, refused=True)
            if ev is None:
                continue
            if not c.item.answerable:
                wrong += 1
            elif any(a.lower() in ev.text.lower() for a in c.item.answers):
                right += 1
        rows.append({"gate": gate, "unanswerable_quoted": wrong, "answerable_right": right})
    return rows


def fitted_gate(rows_by_set: dict[str, list[dict]], reference: float = 0.5) -> float:
    """The lowest gate quoting, in every set, no more unanswerable questions than
    ``reference`` does (the gates of each set's rows, swept from high to low)."""
    quoted = [{r["gate"]: r["unanswerable_quoted"] for r in rows}
              for rows in rows_by_set.values()]
    best = reference
    for gate in sorted({g for q in quoted for g in q if g <= reference}, reverse=True):
        if any(q[gate] > q[reference] for q in quoted):
            break
        best = gate
    return best


def main(argv: list[str] | None = None) -> None:
    from eval.cli import GOLD_DEFAULT
    from eval.squad import build_corpus, read_squad, sample, squad_items
    from rag.config import BUNDLED_CORPUS, Settings, data_home
    from rag.pipeline import Pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=Path("../shared/datasets/squad_v2_normans.json"))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit", type=int, default=40)
    ap.add_argument("--gates", default="0.5,0.45,0.4,0.35,0.3")
    args = ap.parse_args(argv)
    gates = [float(g) for g in args.gates.split(",")]
    if 0.5 not in gates:
        ap.error("--gates must include 0.5, the gate the fit is compared with")
    sets = [("nhs", load_gold(GOLD_DEFAULT), BUNDLED_CORPUS)]
    if args.squad.is_file():
        items = squad_items(read_squad(args.squad))
        reported = {it.id for it in sample(items, 30, 0)}
        held = [it for it in sample(items, 60, args.seed) if it.id not in reported]
        sets.append(("squad-held-out", held[:args.limit],
                     build_corpus(args.squad, data_home() / "eval-corpora")))
    rows_by_set = {}
    for name, items, corpus in sets:
        pipe = Pipeline(Settings(corpus=corpus))
        pipe.index(corpus)
        cases = declined_questions(pipe, items)
        rows_by_set[name] = sweep(cases, gates)
        print(f"{name}: {len(items)} questions, {len(cases)} declined")
        for r in rows_by_set[name]:
            print(f"  gate {r['gate']:.2f}: unanswerable quoted {r['unanswerable_quoted']}, "
                  f"answerable quoted with a gold answer {r['answerable_right']}")
    print(f"fitted gate: {fitted_gate(rows_by_set):.2f}")


if __name__ == "__main__":
    main()
