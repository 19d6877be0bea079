"""Reproducible synthetic corpora for ``rag bench``.

- ``nhs_documents``: real English text for the build benchmark: the bundled articles'
  sentences, reshuffled into documents of about 600 words (seeded).
- ``clustered_vectors``: unit vectors around random centres. Text embeddings cluster by
  topic; uniformly random vectors do not, and make every approximate index look worse
  than it is on real data. Used for search-only sizes too large to embed in minutes.
- ``zipf_texts``: short texts over a Zipf-distributed vocabulary, so BM25 has realistic
  posting-list lengths at a million chunks.
- ``synthetic_index``: an index of such chunks written straight to disk (no chunking or
  embedding), matching files in a corpus folder, so that updates to a large index can be
  timed.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np

from index.chunking import ChunkerConfig, split_sentences
from index.load.loaders import file_hash
from index.stores import disk
from index.stores.ann import DenseSpec
from index.stores.vectors import FaissVectors, StoreSpec, vector_key
from index.types import Chunk, Document


def nhs_documents(corpus: Path, n_docs: int, words_per_doc: int = 600,
                  seed: int = 0) -> list[str]:
    """``n_docs`` texts made of the corpus's sentences (index.chunking.split_sentences) in
    a seeded random order."""
    sentences = []
    for path in sorted(Path(corpus).glob("*.txt")):
        text = " ".join(path.read_text(encoding="utf-8").split())
        spans = split_sentences(text, max_words=10_000)
        sentences += [text[a:b] for a, b in spans if len(text[a:b].split()) >= 4]
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(n_docs):
        out: list[str] = []
        while sum(len(s.split()) for s in out) < words_per_doc:
            out.append(sentences[int(rng.integers(len(sentences)))])
        docs.append(" ".join(out))
    return docs


def clustered_vectors(n: int, dim: int = 384, clusters: int = 1000, noise: float = 0.5,
                      seed: int = 0, block: int = 100_000) -> np.ndarray:
    """``n`` unit vectors: a random centre each plus Gaussian noise, normalised."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    out = np.empty((n, dim), np.float32)
    for i in range(0, n, block):
        m = min(block, n - i)
        x = centres[rng.integers(0, clusters, m)]
        x += noise / np.sqrt(dim) * rng.standard_normal((m, dim)).astype(np.float32)
        out[i:i + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def queries_near(vectors: np.ndarray, n: int, noise: float = 0.3,
                 seed: int = 1) -> np.ndarray:
    """Query vectors near random rows (a question close to some chunks)."""
    rng = np.random.default_rng(seed)
    dim = vectors.shape[1]
    q = vectors[rng.integers(0, len(vectors), n)].copy()
    q += noise / np.sqrt(dim) * rng.standard_normal(q.shape).astype(np.float32)
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def vocabulary(size: int = 50_000, seed: int = 0) -> list[str]:
    """Pronounceable made-up words, unique and deterministic."""
    rng = np.random.default_rng(seed)
    cons, vows = list("bcdfghjklmnprstvwz"), list("aeiou")
    words: set[str] = set()
    while len(words) < size:
        n = int(rng.integers(2, 5))
        words.add("".join(cons[int(rng.integers(18))] + vows[int(rng.integers(5))]
                          for _ in range(n)))
    return sorted(words)


def zipf_texts(n: int, words_per_text: int = 40, vocab: list[str] | None = None,
               seed: int = 0) -> list[str]:
    """``n`` texts of words drawn with Zipf frequencies (rank r with probability ~1/r)."""
    vocab = vocab or vocabulary()
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    ids = rng.choice(len(vocab), size=(n, words_per_text), p=p)
    arr = np.array(vocab, dtype=object)
    return [" ".join(row) + "." for row in arr[ids]]


def questions(n: int, vocab: list[str] | None = None, seed: int = 2) -> list[str]:
    """Distinct questions over the mid-frequency vocabulary (none repeats, so query
    embedding caches never hit)."""
    vocab = vocab or vocabulary()
    rng = np.random.default_rng(seed)
    mid = vocab[100:5000]
    return [f"What did the {mid[int(rng.integers(len(mid)))]} say about "
            f"{mid[int(rng.integers(len(mid)))]} {mid[int(rng.integers(len(mid)))]} "
            f"in question {i}?" for i in range(n)]


def in_memory_index(texts: list[str], vectors: np.ndarray, chunks_per_doc: int = 10,
                    dense: DenseSpec | None = None, faiss_index=None) -> disk.IndexData:
    """An ``IndexData`` over ``texts`` (one chunk each, ``chunks_per_doc`` to a document)
    with the given vectors, for retrieval timing without files."""
    documents: dict[str, Document] = {}
    chunks: list[Chunk] = []
    for d in range(0, len(texts), chunks_per_doc):
        part = texts[d:d + chunks_per_doc]
        doc_text = " ".join(part)
        doc = Document(id=f"doc{d // chunks_per_doc:07d}.txt", title=part[0][:40],
                       text=doc_text, kind="txt", hash=f"{d:016x}")
        documents[doc.id] = doc
        pos = 0
        for t in part:
            chunks.append(Chunk(doc.id, pos, pos + len(t), t, ((pos, pos + len(t)),),
                                id=f"{doc.id}-{pos}"))
            pos += len(t) + 1
    dim = vectors.shape[1]
    index = faiss_index if faiss_index is not None else disk.build_faiss(
        vectors, dim, (dense or DenseSpec()).resolve(len(vectors)))
    keys = [vector_key(documents[c.doc_id], c) for c in chunks]
    manifest = {"embedding": {"model": "synthetic", "dim": dim}}
    return disk.IndexData(manifest, documents, chunks, vectors, faiss_index=index,
                           bm25=disk.build_bm25(texts), vectors=FaissVectors(dim, index, keys),
                           keys=keys)


def synthetic_index(corpus: Path, index_dir: Path, n_chunks: int, embedding_model: str,
                    dim: int, chunks_per_doc: int = 10, words_per_chunk: int = 40,
                    chunker: ChunkerConfig | None = None, dense: DenseSpec | None = None,
                    seed: int = 0) -> None:
    """Write ``n_chunks // chunks_per_doc`` documents into ``corpus`` and an index of
    them into ``index_dir`` as ``build_index`` would leave it (same manifest, chunker and
    keys), with clustered random vectors instead of embeddings."""
    corpus.mkdir(parents=True, exist_ok=True)
    chunker = chunker or ChunkerConfig()
    dense = dense or DenseSpec()
    texts = zipf_texts(n_chunks, words_per_chunk, seed=seed)
    vectors = clustered_vectors(n_chunks, dim, seed=seed)
    documents: dict[str, Document] = {}
    chunks: list[Chunk] = []
    search_texts: list[str] = []
    for d in range(0, n_chunks, chunks_per_doc):
        part = texts[d:d + chunks_per_doc]
        doc_id = f"base{d // chunks_per_doc:07d}.txt"
        path = corpus / doc_id
        path.write_text(" ".join(part), encoding="utf-8")
        doc = Document(id=doc_id, title=doc_id, text=" ".join(part), kind="txt",
                       hash=file_hash(path))
        documents[doc_id] = doc
        pos = 0
        for t in part:
            chunks.append(Chunk(doc_id, pos, pos + len(t), t, ((pos, pos + len(t)),)))
            search_texts.append(t)
            pos += len(t) + 1
    counts = {d: 0 for d in documents}
    for ch in chunks:
        counts[ch.doc_id] += 1
    manifest = {
        "corpus": str(corpus),
        "embedding": {"model": embedding_model, "dim": dim},
        "chunker": asdict(chunker),
        "vectors": StoreSpec().to_dict(),
        "dense": dense.to_manifest(len(chunks)),
        "documents": {d.id: {"hash": d.hash, "title": d.title, "kind": d.kind,
                             "chunks": counts[d.id], "indexed_at": 0.0}
                      for d in documents.values()},
    }
    disk.save(index_dir, disk.IndexData(manifest, documents, chunks, vectors),
               search_texts)
