"""The HTTP API for other programs (FastAPI): ``create_app(pipeline)``; its bodies are in
``serve.api_schema``.

- ``POST /v1/ask``: ``{"question", "k"?, "answer_mode"?, "history"?}`` -> the ``rag ask
  --json`` object (``Answer.to_dict()``). ``history``: the conversation's earlier turns,
  ``[{"role": "user" or "assistant", "content"}]``, oldest first; a follow-up that leans
  on them is answered as the standalone question in ``standalone_question``.
- ``POST /v1/chat/completions``: OpenAI-compatible. The last user message is the
  question, the user and assistant messages before it its conversation (system messages
  are ignored: the server's instructions decide); ``choices[0].message.content`` is
  the verified answer (a caution begins with its note and ends with its passages
  quoted: ``Answer.plain_text``), and extra top-level fields carry ``citations`` (as in
  ``/v1/ask``), ``grade``, ``refused`` and ``standalone_question``. With
  ``"stream": true`` the answer comes as server-sent ``chat.completion.chunk`` events:
  a role chunk at once; as soon as retrieval ends, a chunk whose extra ``sources`` field
  lists the retrieved passages; while other questions are being answered, chunks whose
  extra ``queue_position`` field says how many are ahead (1 = next); then the verified
  answer's text in content deltas once it is verified (their concatenation equals the
  non-streamed content), a final chunk with ``finish_reason``, ``citations``,
  ``grade``, ``refused`` and ``standalone_question``, then ``data: [DONE]``. A follow-up rewritten
  to stand alone is announced before the sources by a chunk whose extra
  ``standalone_question`` field holds it.
- ``GET /v1/health``; the schema at ``/openapi.json`` and docs at ``/docs``.

Answers are generated one at a time, first come first served (the pipeline's
``GenerationQueue``); at most ``queue_limit`` questions wait, and one more gets HTTP 503
with a ``Retry-After`` header. Library errors become HTTP errors here and only here: a
bad question 400, a full queue or an unusable index or model 503, invalid JSON or fields
422 with a one-line ``detail``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from rag.answer.conversation import SEARCHING
from rag.errors import BusyError, QuestionError, RagError
from serve.api_schema import (
    API_VERSION,
    ERRORS,
    AnswerOut,
    AskRequest,
    ChatChoice,
    ChatChoiceMessage,
    ChatMessage,
    ChatRequest,
    ChatResponse,
    HealthOut,
    QueueOut,
)

# ---- the app -----------------------------------------------------------------------
BearerCreds = Annotated[HTTPAuthorizationCredentials | None,
                        Depends(HTTPBearer(auto_error=False))]


def create_app(pipeline, token: str | None = None) -> FastAPI:
    """The API over ``pipeline`` (a ``rag.pipeline.Pipeline``). With ``token``, the
    answering endpoints need ``Authorization: Bearer TOKEN``."""
    app = FastAPI(title="cited-rag API", version=API_VERSION,
                  description="Answers about a folder of documents, with verified [n] "
                              "citations to exact character spans.")
    def check_token(creds: BearerCreds) -> None:
        given = creds.credentials if creds else ""
        if not secrets.compare_digest(given.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    def answer(question: str, k: int | None, mode: str | None,
               history: list[dict] | None = None):
        try:  # the pipeline's queue: one generation at a time, a bounded line
            return pipeline.ask(question, k=k, mode=mode, history=history)
        except Exception as exc:
            raise _http_error(exc) from exc

    auth = [Depends(check_token)] if token else []  # only then in the schema too
    errors = ERRORS if token else {c: v for c, v in ERRORS.items() if c != 401}

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": _validation_message(exc)})

    @app.get("/v1/health", response_model=HealthOut, tags=["meta"])
    def health() -> HealthOut:
        q = pipeline.queue
        return HealthOut(index=pipeline.store.location, index_ready=pipeline.index_exists(),
                         model=_model_name(pipeline),
                         queue=QueueOut(waiting=q.waiting, limit=q.limit, slots=q.slots))

    @app.post("/v1/ask", response_model=AnswerOut, responses=errors, tags=["answers"],
              dependencies=auth)
    def ask(req: AskRequest) -> JSONResponse:
        """Answer a question; the same object as ``rag ask --json``."""
        history = [t.model_dump() for t in req.history or []]
        ans = answer(req.question, req.k, req.answer_mode, history)
        return JSONResponse(ans.to_dict())

    @app.post("/v1/chat/completions", response_model=ChatResponse, responses={
        **errors, 200: {"description": "A chat.completion, or with stream: true an "
                                       "event stream of chat.completion.chunk objects.",
                        "content": {"text/event-stream": {}}}},
        tags=["answers"], dependencies=auth)
    async def chat(req: ChatRequest):
        """OpenAI-compatible chat completion: the last user message is the question, the
        user and assistant messages before it the conversation it may follow up on."""
        question, history = _conversation(req.messages)
        cid, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())
        model = _model_name(pipeline)
        if not req.stream:
            ans = await run_in_threadpool(answer, question, req.k, req.answer_mode, history)
            body = ChatResponse(
                id=cid, created=created, model=model,
                choices=[ChatChoice(message=ChatChoiceMessage(content=ans.plain_text()))],
                citations=[c.to_dict() for c in ans.citations], refused=ans.refused,
                grade=ans.grade,
                standalone_question=ans.standalone_question or question, notes=ans.notes)
            return JSONResponse(body.model_dump())
        steps = pipeline.ask_stream(question, k=req.k, mode=req.answer_mode,
                                    history=history)
        try:  # a bad question is a 400, a full queue a 503, before the stream starts
            first = await run_in_threadpool(next, steps)
        except Exception as exc:
            steps.close()
            raise _http_error(exc) from exc

        async def events() -> AsyncIterator[str]:
            def chunk(delta: dict, finish: str | None = None, **extra) -> str:
                obj = {"id": cid, "object": "chat.completion.chunk", "created": created,
                       "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                       **extra}
                return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"

            yield chunk({"role": "assistant", "content": ""})
            ans = None
            try:
                async for ev in _in_thread(steps, first):
                    if ev.kind == "status" and ev.text.startswith(SEARCHING):
                        yield chunk({}, standalone_question=ev.text[len(SEARCHING):])
                    elif ev.kind == "sources":
                        yield chunk({}, sources=[p.brief() for p in ev.passages or []])
                    elif ev.kind == "queued":
                        yield chunk({}, queue_position=ev.position)
                    elif ev.kind == "answer":
                        ans = ev.answer
            except Exception as exc:  # after the 200: an error event, then the end
                http = _http_error(exc)
                err = {"message": http.detail, "type": "rag_error", "code": http.status_code}
                yield f"data: {json.dumps({'error': err}, ensure_ascii=False)}\n\n"
                yield "data: [DONE]\n\n"
                return
            for piece in _pieces(ans.plain_text()):
                yield chunk({"content": piece})
            yield chunk({}, "stop", citations=[c.to_dict() for c in ans.citations],
                        refused=ans.refused, grade=ans.grade,
                        standalone_question=ans.standalone_question or question,
                        notes=ans.notes)
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache"})

    return app


async def _in_thread(steps, first) -> AsyncIterator:
    """The pipeline's stream, advanced by a thread of its own so the event loop stays
    free. When the client goes away the thread stops at the next step and closes the
    stream, which gives its place in the queue (and the model) back; a waiting stream
    steps every few seconds (``GenerationQueue.heartbeat``), so that happens soon."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def put(item) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
            loop.call_soon_threadsafe(inbox.put_nowait, item)

    def produce() -> None:
        try:
            for ev in steps:
                if stop.is_set():
                    break
                put(("event", ev))
        except Exception as exc:  # raised again on the event loop's side
            put(("error", exc))
            return
        finally:
            steps.close()
        put(("end", None))

    yield first
    threading.Thread(target=produce, daemon=True, name="rag-api-stream").start()
    try:
        while True:
            kind, value = await inbox.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def _http_error(exc: BaseException) -> HTTPException:
    """The HTTP error for a library error: 400 for the question, 503 for the rest (with
    Retry-After when the queue is full)."""
    if isinstance(exc, HTTPException):
        return exc
    if isinstance(exc, QuestionError):
        return HTTPException(400, str(exc))
    if isinstance(exc, BusyError):
        return HTTPException(503, _one_line(exc), headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, RagError):
        return HTTPException(503, _one_line(exc))
    raise exc


def _text(m: ChatMessage) -> str:
    if isinstance(m.content, list):  # content parts: keep the text ones
        return " ".join(str(p.get("text", "")) for p in m.content if p.get("type") == "text")
    return m.content or ""


def _conversation(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The question (the last user message) and the user and assistant turns before it,
    oldest first (empty ones left out)."""
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise HTTPException(400, "no user message: the last message with role 'user' is "
                                 "the question")
    history = [{"role": m.role, "content": _text(m)} for m in messages[:last]
               if m.role in ("user", "assistant") and _text(m).strip()]
    return _text(messages[last]), history


def _pieces(text: str) -> list[str]:
    """The answer in word-sized deltas (whitespace kept, so they join back exactly)."""
    return re.findall(r"\S+\s*|\s+", text)


def _model_name(pipeline) -> str:
    gen = pipeline.models.loaded_generator
    return getattr(gen, "name", None) or pipeline.settings.model


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "body"
        parts.append(f"{loc}: {e.get('msg', 'invalid')}")
    return "invalid request: " + "; ".join(parts)
