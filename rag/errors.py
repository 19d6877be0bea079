"""Exceptions raised while answering. The CLI and UI translate them to one line."""

from index.errors import ModelError, RagError

__all__ = ["RagError", "ModelError", "QuestionError", "GenerationError"]


class QuestionError(RagError):
    """The question is empty or too long."""


class GenerationError(RagError):
    """The generator failed while producing an answer."""
