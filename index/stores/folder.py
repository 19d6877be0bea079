"""An index kept in a folder (``index.stores.disk``), as a ``VectorStore``: its vectors in
FAISS files beside it or in a Qdrant collection (``index.stores.vectors``), built by
``index.builder``. The modules that read and build it load when they are used: a shell
that only asks where the index is, or whether it builds on first use, does not pay for
them."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from index.builder import BuildReport
    from index.chunking import ChunkerConfig
    from index.embed.base import Embedder
    from index.stores.ann import DenseSpec
    from index.stores.disk import IndexData
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
        from index.stores import disk

        return disk.exists(self.path)

    def version(self) -> str | None:
        """The live version folder's name (raises when the index is missing or damaged)."""
        from index.stores import disk

        return disk.current_version(self.path).name

    def load(self, embedding_model: str) -> IndexData:
        """The live version, its embeddings memory-mapped."""
        from index.stores import disk

        return disk.load(self.path, embedding_model=embedding_model, mmap=True)

    def build(self, corpus: Path, embedder: Embedder, chunker: ChunkerConfig, *,
              rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        from index.builder import build_index

        return build_index(corpus, self.path, embedder, chunker, rebuild=rebuild,
                           progress=progress, store_spec=self.vectors, dense=self.dense)

    def documents(self) -> list[dict]:
        from index.stores import disk

        manifest = disk.read_manifest(self.path)
        return [{"id": doc_id, **meta} for doc_id, meta in manifest["documents"].items()]
