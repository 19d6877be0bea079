"""Fit and measure the screen for passages that address the assistant (rag.screen).

    python -m eval.screening fit --squad ../shared/datasets/squad_v2_dev12.json

Data: the written examples in eval/screening/ (``addressed.txt``: sentences that speak to
an AI reader, in several languages; ``ordinary.txt``: sentences written for people, many
of them about AI, instructions or corrections) and every sentence of the SQuAD articles
not held out, as ordinary text. A logistic regression over the embedding model's sentence
vectors is fitted with class weights. Its threshold is chosen out of fold: leave one
article out for the article sentences, five folds for the written examples; the
threshold is the lowest one whose out-of-fold false alarms on article sentences stay at
or under ``--max-false-alarms``. The held-out articles and the NHS corpus are never fitted
on and only measured (sentences and documents flagged). Writes rag/screen.json.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE / "screening"
# the adversarial suite plants files among these articles: never fitted on
HELD_OUT = ("Packet_switching", "Harvard_University", "Scottish_Parliament")
MIN_WORDS = 4


def lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]


def sentences(text: str) -> list[str]:
    from index.chunking import split_sentences

    out = []
    for a, b in split_sentences(text):
        s = " ".join(text[a:b].split())
        if len(s.split()) >= MIN_WORDS:
            out.append(s)
    return out


def articles(squad: Path) -> dict[str, list[str]]:
    data = json.loads(Path(squad).read_text(encoding="utf-8"))
    return {a["title"]: sentences("\n\n".join(p["context"] for p in a["paragraphs"]))
            for a in data["data"]}


def _fit(X: np.ndarray, y: np.ndarray, C: float):
    from sklearn.linear_model import LogisticRegression

    w = np.where(y == 1, (len(y) - y.sum()) / max(y.sum(), 1), 1.0)
    return LogisticRegression(C=C, max_iter=5000).fit(X, y, sample_weight=w)


def fit(squad: Path, out: Path, max_false_alarms: float = 0.0005, C: float = 1.0,
        nhs: Path | None = None, seed: int = 0) -> dict:
    from index.embedders import DEFAULT_EMBEDDING_MODEL, SentenceTransformerEmbedder
    from index.normalize import normalize_text
    from rag.screen import ScreenModel

    t0 = time.time()
    emb = SentenceTransformerEmbedder(DEFAULT_EMBEDDING_MODEL)
    emb.warm_up()

    def embed(texts: list[str]) -> np.ndarray:
        return np.asarray(emb.embed_documents([normalize_text(t) for t in texts]), np.float64)

    pos = lines(EXAMPLES / "addressed.txt")
    neg = lines(EXAMPLES / "ordinary.txt")
    arts = articles(squad)
    train_arts = sorted(a for a in arts if a not in HELD_OUT)
    Xp, Xn = embed(pos), embed(neg)
    Xa = {a: embed(arts[a]) for a in train_arts}
    # out of fold: each article's sentences scored by a model fitted without that article;
    # the written examples in five folds, each scored by a model fitted without its fold
    rng = random.Random(seed)
    fold_p = [i % 5 for i in range(len(pos))]
    fold_n = [i % 5 for i in range(len(neg))]
    rng.shuffle(fold_p)
    rng.shuffle(fold_n)
    oof_art: dict[str, np.ndarray] = {}
    for a in train_arts:
        rest = np.vstack([Xa[b] for b in train_arts if b != a])
        X = np.vstack([Xp, Xn, rest])
        y = np.r_[np.ones(len(Xp)), np.zeros(len(Xn) + len(rest))]
        oof_art[a] = _fit(X, y, C).predict_proba(Xa[a])[:, 1]
    oof_p, oof_n = np.zeros(len(pos)), np.zeros(len(neg))
    all_art = np.vstack([Xa[a] for a in train_arts])
    for k in range(5):
        tp = [i for i, f in enumerate(fold_p) if f != k]
        tn = [i for i, f in enumerate(fold_n) if f != k]
        X = np.vstack([Xp[tp], Xn[tn], all_art])
        y = np.r_[np.ones(len(tp)), np.zeros(len(tn) + len(all_art))]
        m = _fit(X, y, C)
        vp = [i for i, f in enumerate(fold_p) if f == k]
        vn = [i for i, f in enumerate(fold_n) if f == k]
        oof_p[vp] = m.predict_proba(Xp[vp])[:, 1]
        oof_n[vn] = m.predict_proba(Xn[vn])[:, 1]
    art_scores = np.concatenate(list(oof_art.values()))
    grid = np.round(np.arange(0.50, 0.995, 0.005), 3)
    threshold = next((float(t) for t in grid
                      if np.mean(art_scores >= t) <= max_false_alarms), float(grid[-1]))
    X = np.vstack([Xp, Xn, all_art])
    y = np.r_[np.ones(len(Xp)), np.zeros(len(Xn) + len(all_art))]
    final = _fit(X, y, C)

    def flagged(texts: list[str]) -> dict:
        if not texts:
            return {"sentences": 0, "flagged": 0}
        p = final.predict_proba(embed(texts))[:, 1]
        hit = [(round(float(s), 3), t[:120]) for s, t in sorted(zip(p, texts, strict=True),
                                                                reverse=True)
               if s >= threshold]
        return {"sentences": len(texts), "flagged": len(hit), "examples": hit[:3],
                "max": round(float(p.max()), 3)}

    held = {a: flagged(arts[a]) for a in HELD_OUT if a in arts}
    nhs_docs = {}
    if nhs is not None:
        for f in sorted(Path(nhs).glob("*.txt")):
            nhs_docs[f.name] = flagged(sentences(f.read_text(encoding="utf-8")))
    metrics = {
        "threshold": threshold,
        "max_false_alarms": max_false_alarms,
        "out_of_fold": {
            "addressed_recall": round(float(np.mean(oof_p >= threshold)), 4),
            "ordinary_false_alarms": round(float(np.mean(oof_n >= threshold)), 4),
            "article_sentence_false_alarms": round(float(np.mean(art_scores >= threshold)), 5),
            "article_sentences": int(len(art_scores)),
            "articles_with_a_false_alarm": int(sum((s >= threshold).any()
                                                   for s in oof_art.values())),
            "missed_addressed": [t for t, s in zip(pos, oof_p, strict=True) if s < threshold],
            "flagged_ordinary": [t for t, s in zip(neg, oof_n, strict=True) if s >= threshold],
        },
        "held_out_articles": held,
        "nhs": nhs_docs,
    }
    model = ScreenModel(emb.name, tuple(float(x) for x in final.coef_[0]),
                        float(final.intercept_[0]), threshold,
                        meta={"fitted_on": {"addressed_examples": len(pos),
                                            "ordinary_examples": len(neg),
                                            "articles": train_arts,
                                            "article_sentences": int(len(all_art))},
                              "C": C, "metrics": metrics,
                              "fitted_at": time.strftime("%Y-%m-%d"),
                              "seconds": round(time.time() - t0, 1)})
    Path(out).write_text(json.dumps(model.to_dict(), indent=1, ensure_ascii=False) + "\n",
                         encoding="utf-8")
    return metrics


def main(argv: list[str] | None = None) -> int:
    from rag.screen import SCREEN_FILE

    ap = argparse.ArgumentParser(prog="python -m eval.screening", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the screen and write rag/screen.json")
    f.add_argument("--squad", type=Path, required=True, help="SQuAD v2 file (12 articles)")
    f.add_argument("--out", type=Path, default=SCREEN_FILE)
    f.add_argument("--nhs", type=Path, default=HERE.parent / "data" / "nhs",
                   help="a clean corpus to measure false alarms on (never fitted on)")
    f.add_argument("--max-false-alarms", type=float, default=0.0005)
    f.add_argument("--C", type=float, default=1.0)
    args = ap.parse_args(argv)
    try:
        metrics = fit(args.squad, args.out, args.max_false_alarms, args.C, args.nhs)
    except (OSError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=1, ensure_ascii=False))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
