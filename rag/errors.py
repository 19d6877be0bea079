"""Exceptions raised while answering. The CLI and UI translate them to one line."""

from index.errors import ModelError, RagError

__all__ = ["RagError", "ModelError", "QuestionError", "GenerationError", "BusyError",
           "WorkerError"]


class QuestionError(RagError):
    """The question is empty or too long."""


class GenerationError(RagError):
    """The generator failed while producing an answer."""


class BusyError(RagError):
    """Too many questions are waiting for the model; ``retry_after`` seconds is a fair
    wait before asking again."""

    def __init__(self, message: str, retry_after: int = 1, waiting: int = 0) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.waiting = waiting


class WorkerError(RagError):
    """The background worker could not be started, reached or stopped."""
