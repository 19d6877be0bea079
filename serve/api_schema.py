"""The HTTP API's request and response bodies (pydantic): what ``/openapi.json``
publishes, and what ``serve.api`` checks requests against."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

API_VERSION = "1"


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(description="The question, in plain language.",
                          examples=["Who leads the new unit, and since when?"])
    k: StrictInt | None = Field(None, ge=1, le=100, description="Passages to retrieve.")
    answer_mode: Literal["verified", "naive"] | None = Field(
        None, description="verified (default): every sentence checked against its "
                          "citations; naive: the model's answer as it is.")
    history: list[Turn] | None = Field(
        None, description="The conversation's earlier turns, oldest first. A follow-up "
                          "question that leans on them is rewritten to stand alone.")


class CitationOut(BaseModel):
    n: int
    doc: str
    start: int = Field(description="Character offset in the document's text.")
    end: int
    text: str = Field(description="Exactly the document's characters [start:end].")
    title: str = ""
    modified: str = Field("", description="The document's modification date, YYYY-MM-DD.")
    warning: str = Field("", description="Set when the passage's document addresses AI "
                                         "assistants: quoted, never to be taken as fact.")
    page: int | None = Field(None, description="The page (PDF) or slide (presentation) "
                                               "the passage starts on, 1-based; null for "
                                               "documents without pages.")
    provenance: str = Field("", description="One line: title, file, page and modification "
                                            "date.")


class PassageOut(BaseModel):
    doc: str
    page: int | None = Field(None, description="The page or slide the passage starts on.")
    start: int
    end: int
    score: float
    dense_score: float | None = None
    bm25_score: float | None = None
    title: str
    text: str


class SentenceOut(BaseModel):
    text: str
    citations: list[int]
    supported: bool
    score: float
    quote: bool = False
    conflict: bool = False
    prefix: str = ""


class AnswerOut(BaseModel):
    """The same object as ``rag ask --json``."""

    question: str
    standalone_question: str = Field(
        "", description="The question as retrieved and answered: a follow-up rewritten "
                        "to stand alone, else the question itself.")
    answer: str
    grade: Literal["answer", "caution", "refused"] = Field(
        description="answer: confident; caution: shown, but the documents may not answer "
                    "exactly this (see note); refused: the documents do not answer.")
    note: str = Field("", description="What a caution answer's reader should know.")
    refused: bool
    refusal_reason: str = ""
    citations: list[CitationOut]
    retrieved: list[PassageOut]
    sentences: list[SentenceOut]
    timings: dict[str, float]
    tokens_generated: int = 0
    mode: str = ""
    model: str = ""
    raw_answer: str = ""
    confidence: float | None = Field(None, description="The graded decision's "
                                                       "P(the answer is right).")
    coverage: float | None = Field(None, description="The graded decision's P(the "
                                                     "documents cover the question).")
    withheld: str = Field("", description="The draft answer a refusal withheld.")
    conflict: bool = Field(False, description="The evidence disagrees: the answer cites "
                                              "each side.")
    sides: list[dict[str, Any]] = Field(default_factory=list)
    set_aside: list[dict[str, Any]] = Field(
        default_factory=list, description="Documents kept out of the evidence because they "
                                          "address AI assistants, with the reason.")
    notes: list[str] = Field(
        default_factory=list, description="How the answer was decided, where the reader "
                                          "should know: e.g. \"decision: not calibrated "
                                          "for this backend (...)\".")


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """OpenAI chat-completion request. Sampling fields (temperature, top_p, ...) are
    accepted and ignored: the server's settings decide them."""

    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage] = Field(min_length=1)
    model: str | None = None
    stream: StrictBool = False
    k: StrictInt | None = Field(None, ge=1, le=100,
                                description="Passages to retrieve (extension).")
    answer_mode: Literal["verified", "naive"] | None = Field(
        None, description="Extension: verified (default) or naive.")


class ChatChoiceMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatChoiceMessage
    finish_reason: Literal["stop"] = "stop"


class ChatResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    citations: list[CitationOut] = Field(
        description="Extension: the passages the answer's [n] markers refer to.")
    refused: bool = Field(description="Extension: true when the documents do not answer.")
    grade: Literal["answer", "caution", "refused"] = Field(
        "answer", description="Extension: answer (confident), caution (the message begins "
                              "with a note and quotes its passages) or refused.")
    standalone_question: str = Field(
        "", description="Extension: the question as retrieved and answered (a follow-up "
                        "rewritten to stand alone).")
    notes: list[str] = Field(default_factory=list, description="Extension: how the answer "
                                                               "was decided, as in /v1/ask.")


class QueueOut(BaseModel):
    waiting: int = Field(description="Questions waiting for the model.")
    limit: int = Field(description="Most questions that may wait; one more gets 503.")
    slots: int = Field(description="Answers generated at once.")


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    index: str
    index_ready: bool
    model: str
    version: str = API_VERSION
    queue: QueueOut


class ErrorOut(BaseModel):
    detail: str


ERRORS = {400: {"model": ErrorOut, "description": "The question is empty or too long."},
          401: {"model": ErrorOut, "description": "Missing or wrong bearer token."},
          422: {"model": ErrorOut, "description": "The request body is not valid."},
          503: {"model": ErrorOut, "description": "The model is busy (too many questions "
                                                  "wait; see Retry-After), or the index or "
                                                  "the model is unusable."}}
