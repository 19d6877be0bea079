"""The pgvector store against a real PostgreSQL 18 + pgvector server (``pg_server`` in
conftest: the pip package's binaries, a free loopback port, a new database per test).
Plumbing uses the hashing embedder; tests/index/stores/test_pgvector_recall.py and the CLI test
below use the real models."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from index.builder import build_index
from index.errors import IndexMismatchError, IndexNotFoundError
from index.stores import disk
from index.stores.pg_builder import build_pg_index
from index.stores.pg_writer import open_writer
from index.stores.pgvector import PgError, PgIndex, redact
from rag.retrieve.retrievers import HybridRetriever, PgRetriever
from tests.conftest import REPO
from tests.fakes import HashEmbedder
from tests.index.stores.pg_workers import GENERATIONS, write_generation

QUERIES = ["lamp oil crates in the harbour", "ledger 3 entry 7", "shipment crate 15",
           "a meadow by the harbour road", "extra note"]


class Jittered(HashEmbedder):
    """The hashing embedder plus a small fixed vector per text: word counts alone make
    exact ties in cosine, which FAISS returns in no defined order."""

    def _vec(self, text: str) -> np.ndarray:
        seed = int(hashlib.md5(text.encode()).hexdigest()[:8], 16)
        v = super()._vec(text) + 0.01 * np.random.default_rng(seed).standard_normal(
            self.dim).astype(np.float32)
        return v / np.linalg.norm(v)


def _brief(passages):
    """What a retrieval returned; scores to float32 precision (FAISS, bm25s) as ``approx``."""
    return [(p.doc, p.start, p.end, p.text, p.sentences, pytest.approx(p.score, rel=1e-5),
             None if p.dense_score is None else pytest.approx(p.dense_score, abs=1e-6),
             None if p.bm25_score is None else pytest.approx(p.bm25_score, rel=1e-5))
            for p in passages]


def _same_as_folder_index(corpus: Path, folder: Path, pg: PgIndex, emb) -> None:
    build_index(corpus, folder, emb)
    data = disk.load(folder)
    for mode in ("hybrid", "dense", "bm25"):
        faiss_r, pg_r = HybridRetriever(data, emb, mode=mode), PgRetriever(pg, emb, mode=mode)
        for q in QUERIES:
            assert _brief(faiss_r.retrieve(q, 6)) == _brief(pg_r.retrieve(q, 6)), (mode, q)


def test_index_update_delete_rank_as_the_folder_index(tmp_path, pg_url):
    emb, corpus = Jittered(), tmp_path / "corpus"
    write_generation(corpus, 0)
    (corpus / "meadow.md").write_text("# Meadow\n\nA quiet meadow by the harbour road.\n")
    pg = PgIndex(pg_url)
    assert not pg.exists()
    report = build_pg_index(corpus, pg, emb)
    assert (len(report.added), report.written) == (7, True)
    assert report.total_chunks == pg.meta()["n_chunks"] > 7
    _same_as_folder_index(corpus, tmp_path / "folder", pg, emb)

    again = build_pg_index(corpus, pg, emb)  # nothing changed: nothing embedded or written
    assert (len(again.unchanged), again.embedded_chunks, again.written) == (7, 0, False)

    # change one file, add one, delete one; a file that cannot be read keeps its version
    (corpus / "d1.txt").write_text("Ledger 1\n\nA shorter ledger: lamp oil only.\n")
    (corpus / "new.txt").write_text("New\n\nA new page about harbour crates and a meadow.\n")
    (corpus / "meadow.md").unlink()
    (corpus / "d2.txt").write_bytes(b"\x00\x01binary")
    before = emb.embedded
    report = build_pg_index(corpus, pg, emb)
    assert (report.updated, report.added, report.removed) == (["d1.txt"], ["new.txt"],
                                                              ["meadow.md"])
    assert [e.path for e in report.errors] == ["d2.txt"]
    assert emb.embedded - before == report.embedded_chunks == 2
    ids = {d["id"] for d in pg.documents()}
    assert ids == {"d0.txt", "d1.txt", "d2.txt", "d3.txt", "d4.txt", "extra_zorblat.txt",
                   "new.txt"}
    assert "Ledger 2 entry" in pg.document("d2.txt").text  # the previous version stays
    with pg.connect() as conn:  # statistics follow the rows
        n, tokens = conn.execute('SELECT count(*), sum(n_tokens) FROM "cited_rag".chunks'
                                 ).fetchone()
        bad_df = conn.execute(
            'SELECT count(*) FROM "cited_rag".terms t WHERE t.df <> (SELECT count(*) FROM '
            '"cited_rag".postings p WHERE p.term = t.term)').fetchone()[0]
    assert (pg.meta()["n_chunks"], pg.meta()["total_tokens"], bad_df) == (n, tokens, 0)
    (corpus / "d2.txt").write_text("Ledger 2\n\nRepaired ledger, lamp oil and crates.\n")
    build_pg_index(corpus, pg, emb)
    _same_as_folder_index(corpus, tmp_path / "folder2", pg, emb)
    for p in PgRetriever(pg, emb).retrieve("lamp oil", 10):  # spans index their documents
        assert pg.document(p.doc).text[p.start:p.end] == p.text
        assert all(p.start <= a < b <= p.end for a, b in p.sentences)
    pg.close()


def test_an_error_inside_the_transaction_leaves_the_previous_version(tmp_path, pg_url):
    emb, corpus = HashEmbedder(), tmp_path / "corpus"
    write_generation(corpus, 0)
    pg = PgIndex(pg_url)
    build_pg_index(corpus, pg, emb)
    before = _brief(PgRetriever(pg, emb).retrieve("lamp oil harbour", 5))
    meta = pg.meta()
    write_generation(corpus, 1)

    def crash(stage: str) -> None:
        if stage == "added":
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated"):
        build_pg_index(corpus, pg, emb, crash_hook=crash)
    assert _brief(PgRetriever(pg, emb).retrieve("lamp oil harbour", 5)) == before
    assert pg.meta() == meta
    assert build_pg_index(corpus, pg, emb).written  # the lock was released
    assert GENERATIONS[1] in PgRetriever(pg, emb).retrieve("lamp oil", 1)[0].text
    pg.close()


def _worker(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "tests.index.stores.pg_workers", *args],
                            env=env, cwd=REPO, **kw)


def test_sigkill_during_indexing_leaves_the_previous_index_answering(tmp_path, pg_url):
    emb, corpus = HashEmbedder(), tmp_path / "corpus"
    write_generation(corpus, 0)
    pg = PgIndex(pg_url)
    build_pg_index(corpus, pg, emb)
    before = _brief(PgRetriever(pg, emb).retrieve("lamp oil harbour", 5))
    meta = pg.meta()
    write_generation(corpus, 1)
    marker = tmp_path / "in-transaction"
    proc = _worker("index-and-hang", pg_url, str(corpus), str(marker))
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, "the indexer exited before its transaction"
            assert time.monotonic() < deadline, "the indexer never reached its transaction"
            time.sleep(0.1)
        with pg.connect() as conn:  # the new rows are written, not committed
            assert conn.execute("SELECT count(*) FROM pg_stat_activity WHERE state = "
                                "'idle in transaction'").fetchone()[0] == 1
        assert _brief(PgRetriever(pg, emb).retrieve("lamp oil harbour", 5)) == before
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    assert _brief(PgRetriever(pg, emb).retrieve("lamp oil harbour", 5)) == before
    assert pg.meta() == meta
    with pg.connect() as conn:
        assert conn.execute('SELECT count(*) FROM "cited_rag".chunks').fetchone()[0] == \
            meta["n_chunks"]
    deadline = time.monotonic() + 20
    while True:  # the server ends the dead session (and its lock) as soon as it notices
        try:
            report = build_pg_index(corpus, pg, emb)
            break
        except PgError as exc:
            assert "another `rag index`" in str(exc) and time.monotonic() < deadline
            time.sleep(0.2)
    assert report.written and len(report.updated) == 5
    assert GENERATIONS[1] in PgRetriever(pg, emb).retrieve("lamp oil", 1)[0].text
    pg.close()


def test_two_processes_read_while_one_indexes(tmp_path, pg_url):
    emb, corpus = HashEmbedder(), tmp_path / "corpus"
    write_generation(corpus, 0)
    pg = PgIndex(pg_url)
    build_pg_index(corpus, pg, emb)
    stop = tmp_path / "stop"
    outs = [tmp_path / f"reader{i}.json" for i in range(2)]
    readers = [_worker("read", pg_url, "120", str(stop), str(out)) for out in outs]
    try:
        time.sleep(3)  # the readers are searching
        for g in range(1, 4):
            write_generation(corpus, g)
            # the transaction stays open a moment, so readers meet it half-written
            report = build_pg_index(corpus, pg, emb,
                                    crash_hook=lambda s: time.sleep(0.5 if s == "added" else 0))
            assert report.written
            time.sleep(1)
    finally:
        stop.write_text("stop")
        for r in readers:
            r.wait(60)
    for out in outs:
        result = json.loads(out.read_text())
        assert result["errors"] == []
        assert result["queries"] > 20
        assert len(result["seen"]) >= 3  # the readers saw the index change under them
    pg.close()


def test_writers_take_turns(tmp_path, pg_url):
    corpus = tmp_path / "corpus"
    write_generation(corpus, 0)
    pg = PgIndex(pg_url)
    with open_writer(pg):
        with pytest.raises(PgError, match="another `rag index` is updating"):
            build_pg_index(corpus, pg, HashEmbedder())
    assert build_pg_index(corpus, pg, HashEmbedder()).written


def test_model_and_chunker_mismatch_say_how_to_rebuild(tmp_path, pg_url):
    from index.chunking import ChunkerConfig

    corpus = tmp_path / "corpus"
    write_generation(corpus, 0)
    pg = PgIndex(pg_url)
    build_pg_index(corpus, pg, HashEmbedder())
    other = HashEmbedder(dim=32, name="test/other")
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        build_pg_index(corpus, pg, other)
    with pytest.raises(IndexMismatchError, match="embedding model"):
        PgRetriever(pg, other)
    with pytest.raises(IndexMismatchError, match="chunker"):
        build_pg_index(corpus, pg, HashEmbedder(), chunker=ChunkerConfig(40, 10))
    report = build_pg_index(corpus, pg, other, rebuild=True)  # a new dimension: new tables
    assert report.written and pg.meta()["dim"] == 32
    assert PgRetriever(pg, other).retrieve("lamp oil", 3)


def test_clear_one_line_errors_without_the_password(pg_server, pg_url):
    import psycopg

    password = pg_server.password
    # nothing listening
    from index.stores.pg_server import free_port

    closed = f"postgresql://postgres:{password}@127.0.0.1:{free_port()}/x"
    with pytest.raises(PgError) as err:
        PgIndex(closed).exists()
    msg = str(err.value)
    assert msg.startswith("cannot reach PostgreSQL at postgresql://postgres@127.0.0.1:")
    assert "refused" in msg and "\n" not in msg and password not in msg
    # wrong password
    wrong = pg_url.replace(password, "not-the-password")
    with pytest.raises(PgError, match="refused the login") as err:
        PgIndex(wrong).exists()
    assert "not-the-password" not in str(err.value)
    # a database without pgvector, for a user that may not create the extension
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE ROLE reader LOGIN PASSWORD 'r3ader-pw'")
        conn.execute("CREATE DATABASE noext OWNER reader")
    url = pg_server.url_for("noext", "reader", "r3ader-pw")
    with pytest.raises(PgError, match="CREATE EXTENSION vector") as err:
        build_pg_index(REPO / "data" / "nhs", PgIndex(url), HashEmbedder())
    assert "r3ader-pw" not in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(IndexNotFoundError, match="rag index CORPUS --store pgvector"):
        PgRetriever(PgIndex(url, schema="elsewhere"), HashEmbedder())
    with pytest.raises(ValueError, match="schema"):
        PgIndex(pg_url, schema="Robert'); DROP TABLE x;--")
    assert redact("postgresql://u:secret@db.example:6543/rag?sslmode=require") == \
        "postgresql://u@db.example:6543/rag"
    assert "secret" not in repr(PgIndex("postgresql://u:secret@h/db"))


def test_cli_index_and_ask_with_the_real_models(tmp_path, pg_server, pg_url, monkeypatch):
    """`rag index --store pgvector --url`, then `rag ask` by RAG_PG_URL (no index folder),
    with MiniLM and SmolLM2; the password appears nowhere in what is printed."""
    from cli.main import app

    runner = CliRunner()
    corpus = REPO / "data" / "nhs"
    res = runner.invoke(app, ["index", str(corpus), "--store", "pgvector", "--url", pg_url,
                              "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["index"].startswith("postgresql://postgres@127.0.0.1:")
    assert pg_server.password not in res.output
    assert not any(Path(os.environ["RAG_HOME"]).rglob("CURRENT"))  # no index folder
    monkeypatch.setenv("RAG_PG_URL", pg_url)
    res = runner.invoke(app, ["ask", "What did the department deny?", "--json",
                              "--model", "smollm2-135m"])
    assert res.exit_code == 0, res.output
    answer = json.loads(res.stdout)
    docs = {d.id: d.text for d in map(PgIndex(pg_url).document,
                                      [p["doc"] for p in answer["retrieved"]])}
    assert answer["retrieved"]
    for c in answer["citations"] + answer["retrieved"]:
        assert docs[c["doc"]][c["start"]:c["end"]] == c["text"]
    assert pg_server.password not in res.output
    res = runner.invoke(app, ["ask", "anything", "--pg-schema", "missing_index"])
    assert res.exit_code == 1
    assert "no index in postgresql://postgres@127.0.0.1:" in res.output
    assert pg_server.password not in res.output
    res = runner.invoke(app, ["index", str(corpus), "--store", "pgvector"],
                        env={"RAG_PG_URL": ""})
    assert res.exit_code == 1 and "--store pgvector needs the database" in res.output


def test_api_health_names_the_database_without_the_password(pg_server, pg_url, tmp_path):
    from fastapi.testclient import TestClient

    from rag.config import Settings
    from rag.pipeline import Pipeline
    from serve.api import create_app
    from tests.fakes import ScriptedGenerator

    corpus = tmp_path / "corpus"
    write_generation(corpus, 0)
    s = Settings(corpus=corpus, pg_url=pg_url)
    pipe = Pipeline(s, embedder=HashEmbedder(), generator=ScriptedGenerator("x"))
    client = TestClient(create_app(pipe))
    health = client.get("/v1/health").json()
    assert health["index_ready"] is False
    assert pg_server.password not in json.dumps(health)
    pipe.index(corpus)
    health = client.get("/v1/health").json()
    assert health["index_ready"] is True
    assert health["index"].startswith("postgresql://postgres@127.0.0.1:")
    assert health["index"].endswith("(schema cited_rag)")
    assert {d["id"] for d in pipe.store.documents()} >= {"d0.txt", f"extra_{GENERATIONS[0]}.txt"}
    assert pipe.live.document_text("d0.txt").startswith("Ledger 0")


def test_pages_are_stored_and_an_older_index_gains_them(tmp_path, pg_url):
    from tests import docfiles

    corpus = tmp_path / "c"
    corpus.mkdir()
    docfiles.write_pdf(corpus / "dome.pdf", [["Observatory report."], ["Visitors rose."],
                                             ["The observatory dome was repainted green."]])
    (corpus / "bus.txt").write_text("The night bus was cancelled in May.\n")
    emb = HashEmbedder()
    build_pg_index(corpus, PgIndex(pg_url), emb)
    pg = PgIndex(pg_url)
    doc = pg.document("dome.pdf")
    assert len(doc.pages) == 3 and doc.page_at(doc.text.index("dome was")) == 3
    assert pg.document("bus.txt").pages == ()
    hits = {h.chunk.doc_id: h.page for h in pg.search(None, ["dome", "bus"], 10, 5, "bm25")}
    assert hits == {"dome.pdf": 1, "bus.txt": None}
    with pg.connect() as conn:  # an index written before page starts were stored
        conn.execute('ALTER TABLE "cited_rag".documents DROP COLUMN pages')
    old = PgIndex(pg_url)
    assert old.document("dome.pdf").pages == ()
    assert {h.page for h in old.search(None, ["dome"], 10, 5, "bm25")} == {None}
    report = build_pg_index(corpus, old, emb)  # adds the column, reads the PDF again
    assert report.updated == ["dome.pdf"] and report.unchanged == ["bus.txt"]
    assert len(PgIndex(pg_url).document("dome.pdf").pages) == 3
    assert build_pg_index(corpus, PgIndex(pg_url), emb).unchanged == ["bus.txt", "dome.pdf"]
