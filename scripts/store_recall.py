"""Retrieval recall@k on a gold set with the vectors in FAISS and in Qdrant (local mode).

    RAG_HOME=/tmp/rag-recall python scripts/store_recall.py [--k 5] [--gold eval/nhs_gold.jsonl]

Builds the bundled corpus's index twice (same embedder, same chunks), retrieves every
answerable gold question in each retrieval mode and prints recall_all / recall_any / MRR
(the definitions of eval.metrics.retrieval_scores) per store.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from eval.gold import load_gold
from eval.metrics import locate, retrieval_scores
from index.builder import build_index
from index.embed.embedders import SentenceTransformerEmbedder
from index.stores import disk
from index.stores.vectors import StoreSpec, close_clients, qdrant_spec
from rag.config import BUNDLED_CORPUS
from rag.retrieve.retrievers import HybridRetriever

GOLD = Path(__file__).resolve().parent.parent / "eval" / "nhs_gold.jsonl"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--gold", type=Path, default=GOLD)
    ap.add_argument("--corpus", type=Path, default=BUNDLED_CORPUS)
    args = ap.parse_args()
    items = [it for it in load_gold(args.gold) if it.answerable and it.evidence]
    emb = SentenceTransformerEmbedder()
    work = Path(tempfile.mkdtemp(prefix="store-recall-"))
    specs = {"faiss": StoreSpec(),
             "qdrant": qdrant_spec(work / "qdrant")}
    results: dict[str, dict] = {}
    for name, spec in specs.items():
        build_index(args.corpus, work / name, emb, store_spec=spec)
        data = disk.load(work / name)
        docs = {d: doc.text for d, doc in data.documents.items()}
        for mode in ("hybrid", "dense"):
            retriever = HybridRetriever(data, emb, mode=mode)
            rows = []
            for it in items:
                got = [p.brief() for p in retriever.retrieve(it.question, args.k)]
                evidence = [(e.doc, locate(docs[e.doc], e.text))
                            for e in it.evidence]
                rows.append(retrieval_scores(got, evidence, args.k))
            results[f"{name}/{mode}"] = {
                m: round(100 * sum(r[m] for r in rows) / len(rows), 1)
                for m in ("recall_all", "recall_any", "rr")}
    close_clients()
    print(f"{len(items)} answerable questions, k={args.k}")
    for key, r in results.items():
        print(f"{key:14s} recall_all@{args.k} {r['recall_all']:5.1f}  "
              f"recall_any@{args.k} {r['recall_any']:5.1f}  MRR {r['rr']:5.1f}")


if __name__ == "__main__":
    main()
