"""Fit the refusal threshold on gold sets, from evidence scores alone (no generation).

For every question the pipeline's evidence selector scores the retrieved sentences; the
best score is what ``Thresholds.refuse_below`` is compared with. The fitted threshold is
the largest one that keeps false refusals on answerable questions within a budget, so
the model (and verification) still decides the rest.

    python -m eval.calibrate --budget 0.02

With several gold sets it also reports a held-out check: the threshold fitted on the
other sets, applied to each set in turn (``held_out``).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from eval.gold import GoldItem, load_gold


def best_evidence_scores(pipeline, items: Sequence[GoldItem], k: int | None = None
                         ) -> list[tuple[float, bool]]:
    out = []
    for item in items:
        passages = pipeline.retriever.retrieve(item.question, k or pipeline.settings.k)
        scored, _ = pipeline.evidence_for(item.question, passages)
        out.append((scored[0].score if scored else 0.0, item.answerable))
    return out


def fit_threshold(scores: Sequence[tuple[float, bool]], budget: float = 0.02) -> dict:
    """Largest threshold t (refuse when best < t) whose false-refusal rate on answerable
    questions is <= ``budget``; reports the refusal rate on unanswerable ones it gives."""
    pos = sorted(s for s, a in scores if a)
    neg = [s for s, a in scores if not a]
    if not pos:
        raise ValueError("calibration needs answerable questions")
    allowed = int(budget * len(pos))  # answerable questions we may refuse
    t = pos[allowed]  # refusing below the (allowed+1)-th lowest score refuses `allowed`
    return {"threshold": round(t, 4), "false_refusal": sum(s < t for s in pos) / len(pos),
            "refused_unanswerable": (sum(s < t for s in neg) / len(neg)) if neg else None,
            "answerable": len(pos), "unanswerable": len(neg)}


def rates(scores: Sequence[tuple[float, bool]], t: float) -> dict:
    """What refusing below ``t`` does to a set: false refusals, refused unanswerables."""
    pos = [s for s, a in scores if a]
    neg = [s for s, a in scores if not a]
    return {"threshold": round(t, 4),
            "false_refusal": (sum(s < t for s in pos) / len(pos)) if pos else None,
            "refused_unanswerable": (sum(s < t for s in neg) / len(neg)) if neg else None,
            "answerable": len(pos), "unanswerable": len(neg)}


def held_out(scores_by_set: dict[str, list[tuple[float, bool]]], budget: float = 0.02
             ) -> dict[str, dict]:
    """For each set: the threshold fitted on all the other sets, applied to it."""
    out = {}
    for name, scores in scores_by_set.items():
        rest = [x for other, sc in scores_by_set.items() if other != name for x in sc]
        if any(a for _, a in rest):
            out[name] = rates(scores, fit_threshold(rest, budget)["threshold"])
    return out


def main(argv: list[str] | None = None) -> None:
    from eval.cli import GOLD_DEFAULT
    from eval.squad import build_corpus, read_squad, squad_items
    from rag.config import BUNDLED_CORPUS, Settings, data_home
    from rag.pipeline import Pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=0.02)
    ap.add_argument("--squad", type=Path, default=Path("../shared/datasets/squad_v2_normans.json"))
    args = ap.parse_args(argv)
    sets = [("nhs", load_gold(GOLD_DEFAULT), BUNDLED_CORPUS)]
    if args.squad.is_file():
        sets.append(("squad", squad_items(read_squad(args.squad)),
                     build_corpus(args.squad, data_home() / "eval-corpora")))
    by_set: dict[str, list[tuple[float, bool]]] = {}
    for name, items, corpus in sets:
        pipe = Pipeline(Settings(corpus=corpus))
        pipe.index(corpus)
        by_set[name] = best_evidence_scores(pipe, items)
        print(name, json.dumps(fit_threshold(by_set[name], args.budget)))
    print("all", json.dumps(fit_threshold([x for sc in by_set.values() for x in sc],
                                          args.budget)))
    for name, r in held_out(by_set, args.budget).items():
        print(f"held-out {name} (fitted on the others)", json.dumps(r))


if __name__ == "__main__":
    main()
