"""An index kept in a folder (``index.stores.disk``), as a ``VectorStore``: its vectors in
FAISS files beside it or in a Qdrant collection (``index.stores.vectors``), built by
``index.builder``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from index.builder import BuildReport, build_index
from index.chunking import ChunkerConfig
from index.embed.base import Embedder
from index.stores import disk
from index.stores.ann import DenseSpec
from index.stores.vectors import StoreSpec


class FolderStore:
    """The index in folder ``path``. ``vectors`` names where a build puts the vectors
    (None: where the index has them, FAISS for a new one); ``dense`` the FAISS index type
    (None: the index's own)."""

    kind = "folder"
    builds_on_first_use = True

    def __init__(self, path: Path, vectors: StoreSpec | None = None,
                 dense: DenseSpec | None = None) -> None:
        self.path = Path(path)
        self.vectors = vectors
        self.dense = dense

    @property
    def location(self) -> str:
        return str(self.path)

    def exists(self) -> bool:
        return disk.exists(self.path)

    def version(self) -> str | None:
        """The live version folder's name (raises when the index is missing or damaged)."""
        return disk.current_version(self.path).name

    def load(self, embedding_model: str) -> disk.IndexData:
        """The live version, its embeddings memory-mapped."""
        return disk.load(self.path, embedding_model=embedding_model, mmap=True)

    def build(self, corpus: Path, embedder: Embedder, chunker: ChunkerConfig, *,
              rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        return build_index(corpus, self.path, embedder, chunker, rebuild=rebuild,
                           progress=progress, store_spec=self.vectors, dense=self.dense)

    def documents(self) -> list[dict]:
        manifest = disk.read_manifest(self.path)
        return [{"id": doc_id, **meta} for doc_id, meta in manifest["documents"].items()]
