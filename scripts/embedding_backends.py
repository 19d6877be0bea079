"""Embedding backends side by side: encoding speed and retrieval quality.

    RAG_HOME=/tmp/rag-bench python scripts/embedding_backends.py [--chunks 300] [--words 120]
        [--squad tests/data/squad_v2_1973_oil_crisis.json]

For each backend (torch, onnx, onnx-int8, openvino, openvino-int8) in one run: the time to
load it (the first onnx load exports the model into $RAG_HOME/models/onnx, the int8 ones
quantize it), encoding throughput on ``--chunks`` chunks of ``--words`` words cut from the
paragraphs of a SQuAD file (``--squad``; default: the article in tests/data) and the
bundled corpus (best of ``--rounds``, interleaved),
single-query latency (median over the gold questions, one text per call, no query cache),
the lowest cosine of its vectors to the first backend's, and retrieval recall_all@k / MRR on
the NHS gold set (definitions of eval.metrics.retrieval_scores), dense and hybrid, with the
bundled corpus indexed by that backend.

``st-openvino`` (not a setting, only here) is sentence-transformers' own OpenVINO backend
(``SentenceTransformer(..., backend="openvino")``, exported once into
$RAG_HOME/models/st-openvino), to compare with the hand-written export. It needs
optimum-intel, which requires transformers < 5.6 (this project pins 5.23): run it in a
separate environment (docs/benchmarks.md says how).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from eval.gold import GoldItem, load_gold
from eval.metrics import locate, retrieval_scores
from index.builder import build_index
from index.embed.base import (
    DEFAULT_EMBEDDING_MODEL,
    CachedQueryEmbedder,
    Embedder,
    resolve_embedding_model,
)
from index.embed.embedders import EMBEDDING_BACKENDS, encode_throughput, make_embedder
from index.home import data_home
from index.stores import disk
from rag.config import BUNDLED_CORPUS
from rag.retrieve.retrievers import HybridRetriever

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "nhs_gold.jsonl"
SQUAD = ROOT / "tests" / "data" / "squad_v2_1973_oil_crisis.json"


def bench_chunks(n: int, words: int, squad: Path = SQUAD,
                 corpus: Path = BUNDLED_CORPUS) -> list[str]:
    """``n`` chunks of ``words`` words, windows over the SQuAD paragraphs (``squad``: a
    SQuAD JSON file, or None) and the corpus's .txt files, overlapping as much as needed to
    make ``n``."""
    texts = []
    if squad is not None:
        data = json.loads(Path(squad).read_text(encoding="utf-8"))
        texts += [p["context"] for art in data["data"] for p in art["paragraphs"]]
    texts += [f.read_text(encoding="utf-8") for f in sorted(corpus.glob("*.txt"))]
    toks = " ".join(texts).split()
    if len(toks) < words:
        raise SystemExit(f"only {len(toks)} words to cut chunks from")
    stride = max(1, (len(toks) - words) // max(1, n - 1))
    return [" ".join(toks[(i * stride) % (len(toks) - words + 1):][:words]) for i in range(n)]


class SentenceTransformersBackend(CachedQueryEmbedder):
    """sentence-transformers' own ONNX/OpenVINO backend for the default model, exported
    once into $RAG_HOME/models/st-<backend>."""

    def __init__(self, backend: str = "openvino", batch_size: int = 32) -> None:
        super().__init__(DEFAULT_EMBEDDING_MODEL)
        self.backend, self.batch_size, self._model = backend, batch_size, None

    def warm_up(self) -> None:
        if self._model is not None:
            return
        from sentence_transformers import SentenceTransformer

        saved = data_home() / "models" / f"st-{self.backend}"
        if (saved / self.backend).is_dir():
            self._model = SentenceTransformer(str(saved), backend=self.backend, device="cpu")
        else:
            self._model = SentenceTransformer(resolve_embedding_model(self.name),
                                              backend=self.backend, device="cpu")
            self._model.save(str(saved))

    @property
    def dim(self) -> int:
        self.warm_up()
        return int(self._model.get_embedding_dimension())

    def embed_documents(self, texts: list[str]) -> np.ndarray:
        self.warm_up()
        return np.ascontiguousarray(self._model.encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False), dtype=np.float32)


def retrieval_quality(emb: Embedder, corpus: Path, work: Path, items: list[GoldItem],
                      k: int) -> dict[str, float]:
    """recall_all@k and MRR (in %) per retrieval mode, the corpus indexed with ``emb``."""
    build_index(corpus, work, emb)
    data = disk.load(work, embedding_model=emb.name)
    docs = {d: doc.text for d, doc in data.documents.items()}
    out = {}
    for mode in ("dense", "hybrid"):
        retriever = HybridRetriever(data, emb, mode=mode)
        rows = []
        for it in items:
            got = [p.brief() for p in retriever.retrieve(it.question, k)]
            evidence = [(e.doc, locate(docs[e.doc], e.text)) for e in it.evidence]
            rows.append(retrieval_scores(got, evidence, k))
        out[f"{mode} recall"] = 100 * sum(r["recall_all"] for r in rows) / len(rows)
        out[f"{mode} MRR"] = 100 * sum(r["rr"] for r in rows) / len(rows)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backends", default=",".join(EMBEDDING_BACKENDS))
    ap.add_argument("--chunks", type=int, default=300)
    ap.add_argument("--words", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=3,
                    help="timed encodings per backend, interleaved; the best counts")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--gold", type=Path, default=GOLD)
    ap.add_argument("--corpus", type=Path, default=BUNDLED_CORPUS)
    ap.add_argument("--squad", type=Path, default=SQUAD,
                    help="SQuAD JSON whose paragraphs the timed chunks are cut from")
    args = ap.parse_args()
    if not args.squad.is_file():
        ap.error(f"--squad {args.squad}: no such file")
    items = [it for it in load_gold(args.gold) if it.answerable and it.evidence]
    chunks = bench_chunks(args.chunks, args.words, squad=args.squad, corpus=args.corpus)
    work = Path(tempfile.mkdtemp(prefix="embedding-backends-"))
    rows: dict[str, dict] = {}
    embedders: dict[str, Embedder] = {}
    for backend in args.backends.split(","):
        embedders[backend] = emb = (SentenceTransformersBackend(backend[3:])
                                    if backend.startswith("st-")
                                    else make_embedder(backend=backend))
        t0 = time.perf_counter()
        emb.warm_up()
        rows[backend] = {"load s": time.perf_counter() - t0, "chunks/s": 0.0}
    # Rounds interleave the backends, so a busy spell on the machine hits them all alike.
    for _ in range(args.rounds):
        for backend, emb in embedders.items():
            rate = encode_throughput(emb, chunks)
            rows[backend]["chunks/s"] = max(rows[backend]["chunks/s"], rate)
    # Single queries, as a search sends them: one text per call, the query cache bypassed.
    # All questions per backend in turn (a backend's idle threads still spin for a while
    # after its last call, which would slow the next one), the rounds interleaved.
    lat: dict[str, list[float]] = {b: [] for b in embedders}
    for _ in range(args.rounds):
        for backend, emb in embedders.items():
            for it in items:
                t0 = time.perf_counter()
                emb.embed_documents([it.question])
                lat[backend].append(1e3 * (time.perf_counter() - t0))
    for backend in embedders:
        rows[backend]["query ms"] = float(np.median(lat[backend]))
    ref: np.ndarray | None = None
    for backend, emb in embedders.items():
        vecs = emb.embed_documents(chunks)
        ref = vecs if ref is None else ref
        rows[backend]["min cos"] = float((vecs * ref).sum(axis=1).min())
        rows[backend].update(retrieval_quality(emb, args.corpus, work / backend, items, args.k))
    base = next(iter(rows.values()))["chunks/s"]
    print(f"{len(chunks)} chunks of {args.words} words, best of {args.rounds}; "
          f"{len(items)} answerable gold questions, k={args.k}; "
          f"speed-up and min cos against {next(iter(rows))}")
    cols = ["load s", "chunks/s", "speed-up", "query ms", "min cos", f"dense recall@{args.k}",
            "dense MRR", f"hybrid recall@{args.k}", "hybrid MRR"]
    print("| backend | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for backend, r in rows.items():
        cells = [f"{r['load s']:.1f}", f"{r['chunks/s']:.1f}", f"{r['chunks/s'] / base:.2f}x",
                 f"{r['query ms']:.1f}", f"{r['min cos']:.4f}", f"{r['dense recall']:.1f}",
                 f"{r['dense MRR']:.1f}",
                 f"{r['hybrid recall']:.1f}", f"{r['hybrid MRR']:.1f}"]
        print(f"| {backend} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
