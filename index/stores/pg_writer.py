"""Writing an index in PostgreSQL (``index.stores.pgvector``): one update at a time, held
by an advisory lock, applied in one transaction (documents, chunks with their vectors,
postings and term counts), so readers see the previous version until it commits."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from index.errors import IndexMismatchError
from index.stores.pgvector import FORMAT, HNSW_EF_CONSTRUCTION, HNSW_M, PgError, PgIndex
from index.types import Chunk, Document


@contextmanager
def open_writer(index: PgIndex) -> Iterator[PgWriter]:
    """``index``, held for an update by this process: a PostgreSQL advisory lock on one
    connection, released when it closes (also when the process dies)."""
    import psycopg

    conn = index.connect()
    try:
        got = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))",
                           (f"cited-rag:{index.schema}",)).fetchone()[0]
        conn.commit()
        if not got:
            raise PgError(f"another `rag index` is updating {index.location}; wait for it "
                          f"to finish, then run this one again")
        _add_pages_column(index, conn)
        yield PgWriter(index, conn)
    except psycopg.Error as exc:
        raise index.error(exc, "update the index") from None
    finally:
        conn.close()


def _add_pages_column(index: PgIndex, conn) -> None:
    """An index written before documents had page starts gets the column, in a short
    transaction of its own (readers wait only for that)."""
    if conn.execute("SELECT to_regclass(%s)", (f'"{index.schema}".documents',)
                    ).fetchone()[0] is not None and index.pages_column(conn) == "NULL::int[]":
        conn.execute(index.sql("ALTER TABLE S.documents ADD COLUMN IF NOT EXISTS "
                               "pages int[]"))
    conn.commit()


@dataclass
class NewDocument:
    """A document to write, with its chunks, their vectors and their BM25 tokens."""

    doc: Document
    indexed_at: float
    chunks: list[Chunk]
    vectors: np.ndarray
    tokens: list[list[str]]


class PgWriter:
    """Applies one update in one transaction (see ``open_writer``)."""

    def __init__(self, index: PgIndex, conn) -> None:
        self.index, self.conn = index, conn
        self._q = index.sql

    def meta(self) -> dict | None:
        meta = self.index.read_meta(self.conn)
        self.conn.commit()
        return meta

    def document_meta(self) -> dict[str, dict]:
        """id -> {hash, indexed_at, chunks, kind, pages}: what the planner compares the
        files with."""
        rows = self.conn.execute(self._q(
            f"SELECT id, hash, indexed_at, n_chunks, kind, "
            f"coalesce(array_length({self.index.pages_column(self.conn)}, 1), 0) "
            f"FROM S.documents d")).fetchall()
        self.conn.commit()
        return {r[0]: {"hash": r[1], "indexed_at": r[2], "chunks": r[3], "kind": r[4],
                       "pages": r[5]} for r in rows}

    def _ensure_extension(self) -> None:
        import psycopg

        conn = self.conn
        has = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        conn.commit()
        if has:
            return
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'").fetchone()
        conn.commit()
        if not available:
            raise PgError(f"PostgreSQL at {self.index.where} has no pgvector extension; "
                          f"install pgvector on the server (a package such as "
                          f"postgresql-NN-pgvector), then run: CREATE EXTENSION vector;")
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.commit()
        except psycopg.Error as exc:
            conn.rollback()
            raise PgError(f"the pgvector extension is not enabled in {self.index.where} and "
                          f"this user cannot enable it ({self.index.message(exc)})"
                          f"; ask an administrator to run there: CREATE EXTENSION vector;"
                          ) from None
        self.index.configure(conn)

    def _create(self, dim: int) -> None:
        q = self._q
        self.conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.index.schema}"')
        for stmt in (
            "CREATE TABLE S.meta (one bool PRIMARY KEY DEFAULT true CHECK (one), "
            "format int NOT NULL, embedding_model text NOT NULL, dim int NOT NULL, "
            "chunker jsonb NOT NULL, n_chunks bigint NOT NULL DEFAULT 0, "
            "total_tokens bigint NOT NULL DEFAULT 0, written_at float8, "
            "generation bigint NOT NULL DEFAULT 0)",
            "CREATE TABLE S.documents (id text PRIMARY KEY, title text NOT NULL, "
            "text text NOT NULL, kind text NOT NULL, hash text NOT NULL, mtime float8, "
            "indexed_at float8, n_chunks int NOT NULL, pages int[])",
            "CREATE SEQUENCE S.chunk_seq",
            f"CREATE TABLE S.chunks (seq bigint PRIMARY KEY, id text NOT NULL, "
            f"doc_id text NOT NULL REFERENCES S.documents (id), start int NOT NULL, "
            f"stop int NOT NULL, text text NOT NULL, sentences int[] NOT NULL, "
            f"n_tokens int NOT NULL, embedding vector({int(dim)}) NOT NULL)",
            "CREATE INDEX ON S.chunks (doc_id)",
            "CREATE TABLE S.postings (term text NOT NULL, seq bigint NOT NULL, "
            "tf int NOT NULL, dl int NOT NULL, PRIMARY KEY (term, seq))",
            "CREATE INDEX ON S.postings (seq)",
            "CREATE TABLE S.terms (term text PRIMARY KEY, df int NOT NULL)",
        ):
            self.conn.execute(q(stmt))

    def apply(self, *, embedding_model: str, dim: int, chunker: dict, remove: Sequence[str],
              add: Sequence[NewDocument], rebuild: bool = False,
              crash_hook: Callable[[str], None] | None = None) -> dict:
        """Remove the documents ``remove`` (ids), add ``add``, in one transaction; with
        ``rebuild``, everything goes first. ``crash_hook(stage)`` runs between steps,
        inside the transaction (tests stop the process there). Returns the new meta."""
        hook = crash_hook or (lambda stage: None)
        conn, q = self.conn, self._q
        self._ensure_extension()
        with conn.transaction():
            # an HNSW graph built in memory is several times faster to build
            conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
            meta = self.index.read_meta(conn)
            if meta is not None and (meta["dim"] != dim or meta["format"] != FORMAT):
                if not rebuild:
                    raise IndexMismatchError(
                        f"index in {self.index.location} holds {meta['dim']}-d vectors of "
                        f"{meta['embedding_model']!r}; rebuild it with: rag index CORPUS "
                        f"--store pgvector --rebuild")
                conn.execute(f'DROP SCHEMA "{self.index.schema}" CASCADE')
                meta = None
            if meta is None:
                self._create(dim)
                conn.execute(q("INSERT INTO S.meta (format, embedding_model, dim, chunker) "
                               "VALUES (%s, %s, %s, %s)"),
                             (FORMAT, embedding_model, dim, json.dumps(chunker)))
            if rebuild:
                for table in ("postings", "terms", "chunks", "documents"):
                    conn.execute(q(f"DELETE FROM S.{table}"))
                conn.execute(q("UPDATE S.meta SET n_chunks = 0, total_tokens = 0"))
            elif remove:
                self._remove(list(remove))
            hook("removed")
            self._add(add)
            hook("added")
            conn.execute(q(
                "UPDATE S.meta SET format = %s, embedding_model = %s, chunker = %s, "
                "written_at = %s, generation = generation + 1"),
                (FORMAT, embedding_model, json.dumps(chunker), time.time()))
            conn.execute(q(f"CREATE INDEX IF NOT EXISTS chunks_embedding_hnsw ON S.chunks "
                           f"USING hnsw (embedding vector_ip_ops) "
                           f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})"))
            hook("commit")
            meta = self.index.read_meta(conn)
        if add or remove or rebuild:
            conn.execute(q("ANALYZE S.documents, S.chunks, S.postings, S.terms"))
            conn.commit()
        return meta

    def _remove(self, ids: list[str]) -> None:
        q = self._q
        conn = self.conn
        conn.execute("CREATE TEMP TABLE gone ON COMMIT DROP AS SELECT seq, n_tokens "
                     + q("FROM S.chunks WHERE doc_id = ANY(%s)"), (ids,))
        conn.execute(q(
            "WITH d AS (DELETE FROM S.postings p USING gone g WHERE p.seq = g.seq "
            "RETURNING p.term) "
            "UPDATE S.terms t SET df = t.df - c.n "
            "FROM (SELECT term, count(*) AS n FROM d GROUP BY term) c WHERE t.term = c.term"))
        conn.execute(q("DELETE FROM S.terms WHERE df <= 0"))
        conn.execute(q("UPDATE S.meta SET n_chunks = n_chunks - (SELECT count(*) FROM gone), "
                       "total_tokens = total_tokens - "
                       "(SELECT coalesce(sum(n_tokens), 0) FROM gone)"))
        conn.execute(q("DELETE FROM S.chunks c USING gone g WHERE c.seq = g.seq"))
        conn.execute(q("DELETE FROM S.documents WHERE id = ANY(%s)"), (ids,))

    def _add(self, add: Sequence[NewDocument]) -> None:
        q = self._q
        conn = self.conn
        n = sum(len(d.chunks) for d in add)
        if not add:
            return
        with conn.cursor().copy(q(
                "COPY S.documents (id, title, text, kind, hash, mtime, indexed_at, n_chunks, "
                "pages) FROM STDIN")) as copy:
            for d in add:
                doc = d.doc
                copy.write_row((doc.id, doc.title, doc.text, doc.kind, doc.hash, doc.mtime,
                                d.indexed_at, len(d.chunks), list(doc.pages) or None))
        seqs = sorted(r[0] for r in conn.execute(
            q("SELECT nextval('S.chunk_seq') FROM generate_series(1, %s)"), (n,)).fetchall())
        df: Counter[str] = Counter()
        total = 0
        it = iter(seqs)
        postings = []
        with conn.cursor().copy(q(
                "COPY S.chunks (seq, id, doc_id, start, stop, text, sentences, n_tokens, "
                "embedding) FROM STDIN (FORMAT BINARY)")) as copy:
            copy.set_types(["int8", "text", "text", "int4", "int4", "text", "int4[]", "int4",
                            "vector"])
            for d in add:
                for ch, vec, toks in zip(d.chunks, d.vectors, d.tokens, strict=True):
                    seq = next(it)
                    counts = Counter(toks)
                    df.update(counts.keys())
                    total += len(toks)
                    postings.extend((t, seq, c, len(toks)) for t, c in counts.items())
                    copy.write_row((seq, ch.id, ch.doc_id, ch.start, ch.end, ch.text,
                                    [x for span in ch.sentences for x in span], len(toks),
                                    np.asarray(vec, np.float32)))
        with conn.cursor().copy(q("COPY S.postings (term, seq, tf, dl) FROM STDIN "
                                  "(FORMAT BINARY)")) as copy:
            copy.set_types(["text", "int8", "int4", "int4"])
            for row in postings:
                copy.write_row(row)
        conn.execute("CREATE TEMP TABLE new_df (term text, df int) ON COMMIT DROP")
        with conn.cursor().copy("COPY new_df (term, df) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4"])
            for row in df.items():
                copy.write_row(row)
        conn.execute(q("INSERT INTO S.terms (term, df) SELECT term, df FROM new_df "
                       "ON CONFLICT (term) DO UPDATE SET df = S.terms.df + EXCLUDED.df"))
        conn.execute(q("UPDATE S.meta SET n_chunks = n_chunks + %s, "
                       "total_tokens = total_tokens + %s"), (n, total))
