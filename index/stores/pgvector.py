"""An index in PostgreSQL with pgvector: documents, chunks (character and sentence spans),
their vectors under an HNSW index and an inverted full-text index with BM25 statistics, in
one schema per index (default ``cited_rag``). Several processes read it while one updates
it: an update is one transaction, so readers see the previous version until it commits,
and a crash (even SIGKILL) rolls it back on the server. ``PgIndex`` here connects and
reads; ``index.stores.pg_writer`` writes.

Layout of a schema ``S``::

    S.meta        one row: format, embedding model and dimension, chunker, the number of
                  chunks and of their tokens (BM25's N and average length), generation
    S.documents   id, title, text (what spans index), kind, file hash, mtime, indexed_at,
                  page starts (int[], PDF pages and slides; added to older indexes)
    S.chunks      seq (insertion order), chunk id, doc_id, start, stop, text, sentence
                  spans (flat int[]), token count, embedding vector(dim) + HNSW index
    S.postings    (term, seq) -> term frequency and the chunk's token count
    S.terms       term -> document frequency

Terms are the tokens of the FAISS path's BM25 (``index.text``: bm25s' tokenizer, English
stopwords, Snowball stemmer) and scores use bm25s' formula (Lucene BM25, k1 1.5, b 0.75), so
both stores rank alike. PostgreSQL's own ``tsvector``/``ts_rank`` were not used: ts_rank
has no inverse document frequency, so its ranking, and then the fused one, would differ.

Connection strings may carry a password; it is never logged, written or shown: messages
name the server by ``redact(url)``. Credentials can also come from libpq's own sources
(``PGPASSWORD``, ``~/.pgpass``, ``PGSERVICE``).
"""

from __future__ import annotations

import atexit
import re
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from index.errors import IndexMismatchError, IndexNotFoundError, VectorStoreError
from index.types import Chunk, Document

FORMAT = 1
DEFAULT_SCHEMA = "cited_rag"
BM25_K1, BM25_B = 1.5, 0.75  # bm25s' defaults (method "lucene")
# the HNSW graph of the FAISS path (index.stores.ann.DenseSpec): 32 links per node, 80 candidates
# while building, 128 while searching (pgvector's defaults, 16/64/40, keep fewer)
HNSW_M, HNSW_EF_CONSTRUCTION, EF_SEARCH = 32, 80, 128
CONNECT_TIMEOUT = 5  # seconds
_SCHEMA = re.compile(r"[a-z_][a-z0-9_]{0,62}")
PGVECTOR_HINT = "install the client with: pip install 'cited-rag[pgvector]'"


class PgError(VectorStoreError):
    """PostgreSQL cannot be reached, refused the login, lacks pgvector, or failed."""


def redact(url: str) -> str:
    """``postgresql://user@host:port/dbname``: where a connection string points, without
    its password or any other parameter."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        d = conninfo_to_dict(url)
    except Exception:  # noqa: BLE001 - any parse error: show nothing of the string
        return "postgresql://(unparseable connection string)"
    user = f"{d['user']}@" if d.get("user") else ""
    host = d.get("host") or d.get("hostaddr") or "localhost"
    if "/" in str(host):
        host = f"[socket {host}]"
    port = d.get("port") or "5432"
    return f"postgresql://{user}{host}:{port}/{d.get('dbname') or ''}"


def _password(url: str) -> str | None:
    try:
        from psycopg.conninfo import conninfo_to_dict

        return conninfo_to_dict(url).get("password")
    except Exception:  # noqa: BLE001
        return None


def _first_line(exc: BaseException, secret: str | None = None) -> str:
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = re.sub(r"^connection failed: ", "", text)
    return text.replace(secret, "***") if secret else text


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk: its fused score and the scores it had in each ranking."""

    score: float
    dense: float | None
    bm25: float | None
    chunk: Chunk
    title: str
    page: int | None = None


class PgIndex:
    """One index (a schema) in a PostgreSQL database with pgvector. Readers share a pool
    of autocommit connections (``psycopg_pool``); each search or listing is one statement,
    so it sees one committed version. ``writer()`` takes the index for an update."""

    def __init__(self, url: str, schema: str = DEFAULT_SCHEMA, pool_size: int = 4) -> None:
        if not _SCHEMA.fullmatch(schema or ""):
            raise ValueError(f"PostgreSQL schema name must be lower-case letters, digits and "
                             f"_ (not starting with a digit, at most 63); got {schema!r}")
        if pool_size < 1:
            raise ValueError(f"pool_size must be >= 1, got {pool_size}")
        try:
            import pgvector.psycopg  # noqa: F401
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as exc:
            raise PgError(f"the pgvector store needs {exc.name}, which is not installed; "
                          f"{PGVECTOR_HINT}") from exc
        from psycopg.conninfo import conninfo_to_dict

        try:
            conninfo_to_dict(url)
        except Exception as exc:  # noqa: BLE001 - psycopg.ProgrammingError
            raise ValueError("the PostgreSQL URL is not a connection string; expected e.g. "
                             "postgresql://USER@HOST:5432/DBNAME") from exc
        self._url = url
        self._secret = _password(url)
        self.schema = schema
        self.pool_size = pool_size
        self.where = redact(url)
        self._pool = None
        self._lock = threading.Lock()
        # connections with pgvector's types; one opened before the first index run created
        # the extension is configured again on its next use
        self._with_vector: weakref.WeakSet = weakref.WeakSet()

    def message(self, exc: BaseException) -> str:
        """The first line of ``exc``, the connection string's password hidden."""
        return _first_line(exc, self._secret)

    def __repr__(self) -> str:
        return f"PgIndex({self.location!r})"

    @property
    def location(self) -> str:
        """Where the index is, for people: server, database and schema, no password."""
        return f"{self.where} (schema {self.schema})"

    # ---- connections ---------------------------------------------------------------
    def error(self, exc: BaseException, doing: str) -> PgError:
        msg = _first_line(exc, self._secret)
        low = msg.lower()
        if "password authentication failed" in low or "no password supplied" in low:
            return PgError(f"PostgreSQL at {self.where} refused the login ({msg}); check the "
                           f"user and password (in the URL, PGPASSWORD or ~/.pgpass)")
        if "database" in low and "does not exist" in low:
            return PgError(f"{msg} at {self.where}; create it (createdb NAME) or fix the "
                           f"database name in --url / RAG_PG_URL")
        if doing == "connect":
            return PgError(f"cannot reach PostgreSQL at {self.where} ({msg}); start the "
                           f"server or fix --url / RAG_PG_URL")
        return PgError(f"PostgreSQL at {self.where} failed to {doing} ({msg})")

    def connect(self, autocommit: bool = False):
        """A new connection (pgvector's types registered if the extension exists)."""
        import psycopg

        try:
            conn = psycopg.connect(self._url, connect_timeout=CONNECT_TIMEOUT,
                                   application_name="cited-rag", autocommit=autocommit)
        except psycopg.Error as exc:
            raise self.error(exc, "connect") from None
        try:
            self.configure(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def configure(self, conn) -> None:
        from pgvector.psycopg import register_vector

        has = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
        if has:
            register_vector(conn)
            conn.execute(f"SET hnsw.ef_search = {EF_SEARCH}")
            self._with_vector.add(conn)
        if not conn.autocommit:
            conn.commit()

    def _configure_reader(self, conn) -> None:
        conn.autocommit = True
        self.configure(conn)

    @property
    def pool(self):
        with self._lock:
            if self._pool is None:
                from psycopg_pool import ConnectionPool

                self.connect(autocommit=True).close()  # a clear error before any pooling
                pool = ConnectionPool(self._url, min_size=1, max_size=self.pool_size,
                                      kwargs={"connect_timeout": CONNECT_TIMEOUT,
                                              "application_name": "cited-rag"},
                                      configure=self._configure_reader, open=False,
                                      name=f"cited-rag-{self.schema}")
                pool.open(wait=True, timeout=30)
                atexit.register(pool.close)
                self._pool = pool
            return self._pool

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    @contextmanager
    def _read(self, doing: str) -> Iterator:
        import psycopg

        try:
            with self.pool.connection() as conn:
                if conn not in self._with_vector:
                    self.configure(conn)
                yield conn
        except psycopg.errors.UndefinedTable:
            raise self._missing() from None
        except psycopg.Error as exc:
            raise self.error(exc, doing) from None

    def sql(self, sql: str) -> str:
        """``sql`` with ``S.`` naming this index's schema (a checked identifier)."""
        return sql.replace("S.", f'"{self.schema}".')

    def _missing(self) -> IndexNotFoundError:
        return IndexNotFoundError(
            f"no index in {self.location}; build one with: rag index CORPUS --store pgvector "
            f"--url {self.where}" + (f" --pg-schema {self.schema}"
                                     if self.schema != DEFAULT_SCHEMA else ""))

    # ---- reading -------------------------------------------------------------------
    def pages_column(self, conn) -> str:
        """The column of page starts, or NULL for an index written before it existed
        (its next update adds it)."""
        if not getattr(self, "_has_pages", False):
            self._has_pages = conn.execute(
                "SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND "
                "table_name = 'documents' AND column_name = 'pages'",
                (self.schema,)).fetchone() is not None
        return "d.pages" if self._has_pages else "NULL::int[]"

    def exists(self) -> bool:
        with self._read("read the index") as conn:
            return self.read_meta(conn) is not None

    def read_meta(self, conn) -> dict | None:
        if conn.execute("SELECT to_regclass(%s)", (f'"{self.schema}".meta',)).fetchone()[0] \
                is None:
            return None
        row = conn.execute(self.sql(
            "SELECT format, embedding_model, dim, chunker, n_chunks, total_tokens, "
            "written_at, generation FROM S.meta")).fetchone()
        if row is None:
            return None
        keys = ("format", "embedding_model", "dim", "chunker", "n_chunks", "total_tokens",
                "written_at", "generation")
        return dict(zip(keys, row, strict=True))

    def meta(self) -> dict:
        """The index's settings and counts; ``IndexNotFoundError`` if there is none."""
        with self._read("read the index") as conn:
            meta = self.read_meta(conn)
        if meta is None:
            raise self._missing()
        if meta["format"] != FORMAT:
            raise IndexMismatchError(
                f"index in {self.location} has format {meta['format']}, this version reads "
                f"{FORMAT}; rebuild it with: rag index CORPUS --store pgvector --rebuild")
        return meta

    def check_compatible(self, embedding_model: str) -> dict:
        meta = self.meta()
        if meta["embedding_model"] != embedding_model:
            raise IndexMismatchError(
                f"index in {self.location} was built with embedding model "
                f"{meta['embedding_model']!r}, but {embedding_model!r} is configured; use "
                f"--embedding-model {meta['embedding_model']!r} or rebuild it with: rag index "
                f"CORPUS --store pgvector --rebuild")
        return meta

    def documents(self) -> list[dict]:
        """Each document's id, hash, title, kind, chunk count and indexing time."""
        with self._read("list the documents") as conn:
            rows = conn.execute(self.sql(
                "SELECT id, hash, title, kind, n_chunks, indexed_at FROM S.documents "
                "ORDER BY id")).fetchall()
        return [{"id": r[0], "hash": r[1], "title": r[2], "kind": r[3], "chunks": r[4],
                 "indexed_at": r[5]} for r in rows]

    def document(self, doc_id: str) -> Document | None:
        with self._read("read a document") as conn:
            row = conn.execute(self.sql(
                f"SELECT id, title, text, kind, hash, mtime, {self.pages_column(conn)} "
                f"FROM S.documents d WHERE id = %s"), (doc_id,)).fetchone()
        return Document(*row[:6], pages=tuple(row[6] or ())) if row else None

    def search(self, query: np.ndarray | None, terms: Sequence[str], n: int, k: int,
               mode: str = "hybrid", rrf_k: int = 60) -> list[Hit]:
        """The top ``k`` chunks, in one statement: the ``n`` nearest by inner product
        (HNSW) and the ``n`` best by BM25 over ``terms`` (a query term counts as often as
        it occurs), fused by reciprocal rank as ``rag.retrieve.retrievers.rrf_fuse`` does (ties in
        the order of first appearance, dense first); ``mode`` dense or bm25: that ranking
        alone."""
        params = {"q": None if query is None else np.asarray(query, np.float32).reshape(-1),
                  "terms": list(terms), "n": int(n), "k": int(k), "rrf": float(rrf_k),
                  "k1": BM25_K1, "b": BM25_B}
        dense = """
            dense AS (
              SELECT seq, -dist AS score, row_number() OVER (ORDER BY dist, seq) AS rank
              FROM (SELECT seq, embedding <#> %(q)s AS dist FROM S.chunks
                    ORDER BY embedding <#> %(q)s LIMIT %(n)s) d)"""
        sparse = """
            st AS (SELECT n_chunks::float8 AS n,
                          greatest(total_tokens::float8 / greatest(n_chunks, 1), 1e-9) AS avgdl
                   FROM S.meta),
            qt AS (SELECT t.term, t.df, count(*) AS qtf
                   FROM unnest(%(terms)s::text[]) AS u(term) JOIN S.terms t ON t.term = u.term
                   GROUP BY t.term, t.df),
            sparse AS (
              SELECT seq, score, row_number() OVER (ORDER BY score DESC, seq) AS rank
              FROM (SELECT p.seq,
                           sum(qt.qtf * ln(1 + (st.n - qt.df + 0.5) / (qt.df + 0.5))
                               * p.tf / (p.tf + %(k1)s * (1 - %(b)s + %(b)s * p.dl / st.avgdl)))
                             AS score
                    FROM qt JOIN S.postings p ON p.term = qt.term CROSS JOIN st
                    GROUP BY p.seq ORDER BY score DESC, p.seq LIMIT %(n)s) s
              WHERE score > 0)"""
        tail = """
            SELECT f.score, f.dscore, f.sscore, c.id, c.doc_id, c.start, c.stop, c.text,
                   c.sentences, d.title, PAGES
            FROM top f JOIN S.chunks c ON c.seq = f.seq JOIN S.documents d ON d.id = c.doc_id
            ORDER BY f.ord"""
        if mode == "dense":
            sql = f"""WITH {dense},
                top AS (SELECT seq, score, score AS dscore, NULL::float8 AS sscore, rank AS ord
                        FROM dense ORDER BY rank LIMIT %(k)s) {tail}"""
        elif mode == "bm25":
            sql = f"""WITH {sparse},
                top AS (SELECT seq, score, NULL::float8 AS dscore, score AS sscore, rank AS ord
                        FROM sparse ORDER BY rank LIMIT %(k)s) {tail}"""
        elif mode == "hybrid":
            sql = f"""WITH {dense}, {sparse},
                fused AS (
                  SELECT coalesce(d.seq, s.seq) AS seq, d.score AS dscore, s.score AS sscore,
                         coalesce(1.0::float8 / (%(rrf)s + d.rank), 0)
                           + coalesce(1.0::float8 / (%(rrf)s + s.rank), 0) AS score,
                         coalesce(d.rank, (SELECT count(*) FROM dense) + s.rank) AS first
                  FROM dense d FULL JOIN sparse s ON d.seq = s.seq),
                top AS (SELECT seq, score, dscore, sscore,
                               row_number() OVER (ORDER BY score DESC, first) AS ord
                        FROM fused ORDER BY score DESC, first LIMIT %(k)s) {tail}"""
        else:
            raise ValueError(f"retrieval mode must be hybrid, dense or bm25; got {mode!r}")
        if mode != "bm25" and query is None:
            raise ValueError("a dense search needs a query vector")
        with self._read("search") as conn:
            rows = conn.execute(self.sql(sql.replace("PAGES", self.pages_column(conn))),
                                params).fetchall()
        out = []
        for score, dscore, sscore, cid, doc_id, start, stop, text, sents, title, pages in rows:
            flat = list(sents or ())
            spans = tuple((flat[i], flat[i + 1]) for i in range(0, len(flat), 2))
            page = Document(doc_id, title, "", "", "", pages=tuple(pages or ())).page_at(start)
            out.append(Hit(float(score), None if dscore is None else float(dscore),
                           None if sscore is None else float(sscore),
                           Chunk(doc_id, start, stop, text, spans, cid), title, page))
        return out
