"""Exceptions raised while building or loading an index. The CLI and UI translate them."""


class RagError(Exception):
    """Base class for every error a user can cause and fix."""


class DocumentError(RagError):
    """One document could not be read; the rest of the corpus is still indexed."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class CorpusError(RagError):
    """The corpus folder is missing, empty or unreadable."""


class IndexNotFoundError(RagError):
    """No index exists at the given location."""


class IndexMismatchError(RagError):
    """The index on disk was built with other settings, another model or another format."""


class IndexCorruptError(RagError):
    """An index file is missing or damaged."""


class VectorStoreError(RagError):
    """The store holding the index (Qdrant, PostgreSQL) cannot be reached or refused an
    operation."""


class ModelError(RagError):
    """A model could not be found, verified or loaded."""


class DependencyError(RagError):
    """A package cited-rag depends on is not installed (the message names it and the
    command that installs it)."""
