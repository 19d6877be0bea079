"""Fit and measure the screen for passages that address the assistant (rag.grounding.screen).

    python -m eval.screening fit --squad ../shared/datasets/squad_v2_dev12.json

Data: the written examples in eval/screening/ (``addressed.txt``, ``addressed_more.txt``:
sentences that speak to an AI reader, in many wordings and languages; ``ordinary.txt``,
``ordinary_more.txt``: sentences written for people, many of them about AI, instructions
to the reader, reported injections or corrections), ordinary web text by source
(``web/<source>.txt``: a news site, a forum, a shop, documentation ...: facts with their
page furniture: dates, bylines, "Retrieved ...", navigation, instructions to the human
reader) and every sentence of the SQuAD articles not held out, as ordinary text. A
logistic regression over the embedding model's sentence vectors and the sentences'
character n-grams (rag.grounding.screen.CharGrams) is fitted with class weights. Its threshold is
chosen out of fold, leaving one group out (an article, a web source, a fifth of the
written examples): the lowest one whose out-of-fold false alarms on the ordinary
sentences of articles and web sources stay at or under ``--max-false-alarms``; the
written ordinary examples (hard cases: text about AI, reported injections) are reported
beside it. The held-out articles and the clean corpora (``--clean``: the NHS articles and
the written news corpus) are never fitted on and only measured (sentences and documents
flagged). Writes rag/grounding/screen.json and rag/grounding/screen_grams.npz.
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


NGRAM_BITS = 16  # 65,536 buckets of character n-grams


def _design(E: np.ndarray, grams, texts: list[str]):
    from scipy import sparse

    return sparse.hstack([sparse.csr_matrix(E), grams.transform(texts)]).tocsr()


def _fit(E: np.ndarray, texts: list[str], y: np.ndarray, C: float):
    """The n-grams' idf on these texts, and the regression on vectors and n-grams."""
    from sklearn.feature_extraction.text import TfidfTransformer
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    from rag.grounding.screen import CharGrams

    grams = CharGrams(np.ones(2 ** NGRAM_BITS))
    idf = TfidfTransformer(sublinear_tf=True).fit(grams.counts(texts)).idf_
    grams = CharGrams(idf)
    w = np.where(y == 1, (len(y) - y.sum()) / max(y.sum(), 1), 1.0)
    with threadpool_limits(1):
        clf = LogisticRegression(C=C, max_iter=5000).fit(_design(E, grams, texts), y,
                                                         sample_weight=w)
    return clf, grams


def _proba(model, E: np.ndarray, texts: list[str]) -> np.ndarray:
    clf, grams = model
    if not texts:
        return np.zeros(0)
    return clf.predict_proba(_design(E, grams, texts))[:, 1]


def training_groups(squad: Path, seed: int = 0) -> dict[str, tuple[list[str], int]]:
    """Every fitting group: name -> (sentences, label 1 = addresses the assistant). The
    written examples fall in five folds each; each SQuAD article not held out and each
    web source (``screening/web/<source>.txt``: a site's facts and page furniture) is one
    group of ordinary text."""
    rng = random.Random(seed)
    groups: dict[str, tuple[list[str], int]] = {}
    for name, label in (("addressed", 1), ("ordinary", 0)):
        texts = lines(EXAMPLES / f"{name}.txt") + lines(EXAMPLES / f"{name}_more.txt")
        folds = [i % 5 for i in range(len(texts))]
        rng.shuffle(folds)
        for k in range(5):
            groups[f"{name}-{k}"] = ([t for t, f in zip(texts, folds, strict=True) if f == k],
                                     label)
    arts = articles(squad)
    for a in sorted(arts):
        if a not in HELD_OUT:
            groups[f"article:{a}"] = (arts[a], 0)
    for f in sorted((EXAMPLES / "web").glob("*.txt")):
        groups[f"web:{f.stem}"] = ([t for t in lines(f) if len(t.split()) >= MIN_WORDS], 0)
    return groups


def clean_sentences(folder: Path) -> dict[str, list[str]]:
    """The sentences of each document of a clean corpus, as the index reads it."""
    from index.load.loaders import iter_documents

    return {d.id: sentences(d.text) for d in iter_documents(Path(folder))
            if hasattr(d, "text")}


def natural(group: str) -> bool:
    """Ordinary text as people's documents hold it (an article, a web source), not the
    written examples."""
    return group.startswith(("article:", "web:"))


def fit(squad: Path, out: Path, max_false_alarms: float = 0.001, C: float = 1.0,
        clean: dict[str, Path] | None = None, seed: int = 0) -> dict:
    """Fit on ``training_groups``, choose the threshold out of fold (each group scored by
    a model fitted without it): the lowest at which the share of ordinary sentences of
    articles and web sources flagged stays at or under ``max_false_alarms``. The held-out
    articles and the ``clean`` corpora are never fitted on: their sentences and
    documents flagged are measured."""
    from index.embed.base import DEFAULT_EMBEDDING_MODEL
    from index.embed.embedders import SentenceTransformerEmbedder
    from index.normalize import normalize_text
    from rag.grounding.screen import ScreenModel

    t0 = time.time()
    emb = SentenceTransformerEmbedder(DEFAULT_EMBEDDING_MODEL)
    emb.warm_up()

    def embed(texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, emb.dim))
        return np.asarray(emb.embed_documents([normalize_text(t) for t in texts]), np.float64)

    groups = training_groups(squad, seed)
    X = {g: embed(texts) for g, (texts, _) in groups.items()}
    label = {g: lab for g, (_, lab) in groups.items()}

    def fit_on(names: list[str]):
        return _fit(np.vstack([X[h] for h in names]),
                    [t for h in names for t in groups[h][0]],
                    np.concatenate([np.full(len(X[h]), label[h]) for h in names]), C)

    oof = {g: _proba(fit_on([h for h in groups if h != g]), X[g], groups[g][0])
           for g in groups}  # leave one group out
    ordinary = np.concatenate([oof[g] for g in groups if natural(g)])
    written = np.concatenate([oof[g] for g in groups if label[g] == 0 and not natural(g)])
    addressed = np.concatenate([oof[g] for g in groups if label[g] == 1])
    grid = np.round(np.arange(0.50, 0.9995, 0.0025), 4)
    threshold = next((float(t) for t in grid if np.mean(ordinary >= t) <= max_false_alarms),
                     float(grid[-1]))
    final = fit_on(list(groups))

    def flagged(texts: list[str]) -> dict:
        if not texts:
            return {"sentences": 0, "flagged": 0}
        p = _proba(final, embed(texts), texts)
        hit = [(round(float(s), 3), t[:120]) for s, t in sorted(zip(p, texts, strict=True),
                                                                reverse=True)
               if s >= threshold]
        return {"sentences": len(texts), "flagged": len(hit), "examples": hit[:3],
                "max": round(float(p.max()), 3)}

    arts = articles(squad)
    measured = {f"article:{a}": flagged(arts[a]) for a in HELD_OUT if a in arts}
    for name, folder in (clean or {}).items():
        docs = {d: flagged(s) for d, s in clean_sentences(folder).items()}
        measured[name] = {"documents": len(docs),
                          "documents_flagged": sum(bool(v["flagged"]) for v in docs.values()),
                          "sentences": sum(v["sentences"] for v in docs.values()),
                          "sentences_flagged": sum(v["flagged"] for v in docs.values()),
                          "examples": [e for v in docs.values()
                                       for e in v.get("examples", [])][:5]}
    metrics = {
        "threshold": threshold,
        "max_false_alarms": max_false_alarms,
        "out_of_fold": {
            "addressed_recall": round(float(np.mean(addressed >= threshold)), 4),
            "ordinary_false_alarms": round(float(np.mean(ordinary >= threshold)), 5),
            "ordinary_sentences": int(len(ordinary)),
            "written_ordinary_flagged": round(float(np.mean(written >= threshold)), 4),
            "written_ordinary": int(len(written)),
            "groups_with_a_false_alarm": sorted(g for g in groups if natural(g)
                                                and (oof[g] >= threshold).any()),
            "missed_addressed": [t for g in groups if label[g] == 1
                                 for t, p in zip(groups[g][0], oof[g], strict=True)
                                 if p < threshold],
            "flagged_ordinary": [t for g in groups if label[g] == 0
                                 for t, p in zip(groups[g][0], oof[g], strict=True)
                                 if p >= threshold],
        },
        "never_fitted": measured,
    }
    clf, grams = final
    model = ScreenModel(emb.name, tuple(float(x) for x in clf.coef_[0][:emb.dim]),
                        float(clf.intercept_[0]), threshold,
                        meta={"fitted_on": {g: len(t) for g, (t, _) in groups.items()},
                              "C": C, "metrics": metrics,
                              "fitted_at": time.strftime("%Y-%m-%d"),
                              "seconds": round(time.time() - t0, 1)},
                        grams=grams, grams_coef=np.asarray(clf.coef_[0][emb.dim:]))
    model.save(Path(out))
    return metrics


def main(argv: list[str] | None = None) -> int:
    from rag.grounding.screen import SCREEN_FILE

    ap = argparse.ArgumentParser(prog="python -m eval.screening", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fit", help="fit the screen and write rag/grounding/screen.json")
    f.add_argument("--squad", type=Path, required=True, help="SQuAD v2 file (12 articles)")
    f.add_argument("--out", type=Path, default=SCREEN_FILE)
    f.add_argument("--clean", type=Path, action="append",
                   default=[HERE.parent / "data" / "nhs", HERE / "clean" / "news"],
                   help="a clean corpus to measure false alarms on (never fitted on)")
    f.add_argument("--max-false-alarms", type=float, default=0.001,
                   help="share of ordinary sentences (articles, web sources) flagged out "
                        "of fold that the threshold may allow")
    f.add_argument("--C", type=float, default=1.0)
    args = ap.parse_args(argv)
    try:
        metrics = fit(args.squad, args.out, args.max_false_alarms, args.C,
                      {p.name: p for p in args.clean})
    except (OSError, ValueError) as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=1, ensure_ascii=False))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
