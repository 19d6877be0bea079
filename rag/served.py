"""A generator for a model served behind an OpenAI-compatible API: vLLM, TGI, a llama.cpp
server, Ollama (``--backend openai --llm-url http://host:port/v1 --model NAME``).

Tokens stream through server-sent events. Connection errors and 5xx answers are retried
with exponential backoff while no token has been streamed yet; after that, or once the
retries are spent, a ``GenerationError`` names the URL and the fix. Every wait is bounded
by the connect and read timeouts, so a dead or stuck server never hangs a question.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence

import httpx

from rag.errors import GenerationError
from rag.generators import Probe, refusal_starts

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


class _Retryable(Exception):
    """A failure worth another try: the server was unreachable or answered 5xx."""


class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible server at ``url`` (ending in ``/v1``)."""

    def __init__(self, url: str, model: str, api_key: str | None = None,
                 timeout: float = 60.0, connect_timeout: float = 5.0, retries: int = 2,
                 backoff: float = 0.5, seed: int = 0) -> None:
        if not url or not url.startswith(("http://", "https://")):
            raise GenerationError(f"--llm-url must be an http(s) URL such as "
                                  f"http://127.0.0.1:8080/v1; got {url!r}")
        if retries < 0:
            raise ValueError(f"retries must be >= 0, got {retries}")
        self.url = url.rstrip("/")
        self.name = model
        self.retries = retries
        self.backoff = backoff
        self.seed = seed
        self._timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def _fix(self) -> str:
        return ("start the server or fix --llm-url (e.g. python -m llama_cpp.server "
                "--model MODEL.gguf --port 8080, then --llm-url http://127.0.0.1:8080/v1)")

    def warm_up(self) -> None:
        """Check that the server answers ``GET /models``."""
        try:
            with httpx.Client(timeout=self._timeout, headers=self._headers) as client:
                r = client.get(f"{self.url}/models")
        except httpx.HTTPError as exc:
            raise GenerationError(f"the model server at {self.url} is not reachable "
                                  f"({type(exc).__name__}); {self._fix()}") from exc
        if r.status_code >= 400:
            raise GenerationError(f"the model server at {self.url} answered "
                                  f"{r.status_code} to GET /models: {_error_text(r)}")

    def stream(self, messages: Messages, max_tokens: int = 200, temperature: float = 0.0,
               stop: list[str] | None = None, probe: Probe | None = None,
               avoid: Sequence[str] | None = None) -> Iterator[str]:
        """Stream the reply. With a ``probe``, the server is asked for log-probabilities
        (``logprobs``, ``top_logprobs``): the refusal's probability at the first step is
        read from the top alternatives; a served model's first token is not suppressed.
        ``avoid`` is not sent: the server's token ids are not known here."""
        body = {"model": self.name, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, "stream": True, "seed": self.seed}
        if stop:
            body["stop"] = stop
        if probe is not None:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        last, tries = "", 0
        for attempt in range(self.retries + 1):
            tries = attempt + 1
            if attempt:
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning("model server %s: %s; retry %d/%d in %.1fs", self.url, last,
                            attempt, self.retries, delay)
                time.sleep(delay)
            started = [False]
            try:
                yield from self._attempt(dict(body, probe=probe) if probe else body, started)
                return
            except _Retryable as exc:
                last = str(exc)
                if started[0]:
                    break
        raise GenerationError(f"the model server at {self.url} failed after {tries} "
                              f"attempt{'s' if tries > 1 else ''} ({last}); {self._fix()}")

    def _attempt(self, body: dict, started: list[bool]) -> Iterator[str]:
        url = f"{self.url}/chat/completions"
        try:
            with httpx.Client(timeout=self._timeout, headers=self._headers) as client, \
                    client.stream("POST", url, json={k: v for k, v in body.items()
                                                     if k != "probe"}) as r:
                if r.status_code >= 500:
                    r.read()
                    raise _Retryable(f"HTTP {r.status_code}: {_error_text(r)}")
                if r.status_code >= 400:
                    r.read()
                    raise GenerationError(
                        f"the model server at {self.url} refused the request "
                        f"(HTTP {r.status_code}: {_error_text(r)}); check --model "
                        f"{self.name!r} and the server's settings")
                for piece in _sse_pieces(r.iter_lines(), self.url, body.get("probe")):
                    started[0] = True
                    yield piece
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
            raise _Retryable(f"{type(exc).__name__}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise GenerationError(f"the model server at {self.url} sent nothing for "
                                  f"{self._timeout.read:.0f}s ({type(exc).__name__}); "
                                  f"it may be overloaded: raise RAG_LLM_TIMEOUT or check "
                                  f"the server") from exc
        except httpx.HTTPError as exc:
            raise GenerationError(f"the model server at {self.url} failed "
                                  f"({type(exc).__name__}: {exc})") from exc


def _sse_pieces(lines: Iterator[str], url: str, probe: Probe | None = None
                ) -> Iterator[str]:
    """Content pieces of an OpenAI chat-completion event stream; log-probabilities, when
    the server sends them, go to ``probe``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            event = json.loads(data)
        except ValueError as exc:
            raise GenerationError(f"the model server at {url} sent a malformed event: "
                                  f"{data[:80]!r}") from exc
        if event.get("error"):
            raise GenerationError(f"the model server at {url} reported an error: "
                                  f"{_message(event['error'])}")
        for choice in event.get("choices") or []:
            if probe is not None:
                _read_logprobs(choice.get("logprobs"), probe)
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                yield piece


TOP_LOGPROBS = 20  # the most the OpenAI API allows


def _read_logprobs(logprobs, probe: Probe) -> None:
    """Fill ``probe`` from one event's ``logprobs.content`` entries."""
    entries = (logprobs or {}).get("content") if isinstance(logprobs, dict) else None
    starts = {w.lower() for w in refusal_starts(probe.refusal)}
    for entry in entries or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("logprob"), int | float):
            continue
        if probe.p_refusal is None:
            top = entry.get("top_logprobs") or []
            probe.p_refusal = float(sum(
                math.exp(t["logprob"]) for t in top
                if isinstance(t, dict) and str(t.get("token", "")).strip().lower() in starts
                and isinstance(t.get("logprob"), int | float)))
        probe.logprobs.append(float(entry["logprob"]))


def _message(err) -> str:
    if isinstance(err, dict):
        return str(err.get("message") or err)[:200]
    return str(err)[:200]


def _error_text(r: httpx.Response) -> str:
    try:
        body = r.json()
    except ValueError:
        return (r.text or r.reason_phrase or "").strip()[:200]
    if isinstance(body, dict):
        return _message(body.get("error") or body.get("detail") or body)
    return str(body)[:200]
