"""A generator for a model served behind an OpenAI-compatible API: vLLM, TGI, a llama.cpp
server, Ollama (``--backend openai --llm-url http://host:port/v1 --model NAME``).

Tokens stream through server-sent events. Connection errors and 5xx answers are retried
with exponential backoff while no token has been streamed yet; after that, or once the
retries are spent, a ``GenerationError`` names the URL and the fix. Every wait is bounded
by the connect and read timeouts, so a dead or stuck server never hangs a question.

With a probe (rag.generate.base.Probe), the server is asked for log-probabilities and, as a
local model does, the refusal's first token is taken away: ``logit_bias`` with the token
ids the server's own tokenizer gives (``/extras/tokenize`` of llama-cpp-python's server,
``/tokenize`` of vLLM and llama.cpp's ``llama-server``). A server that gives no token ids
answers unsuppressed, and one that sends no log-probabilities answers unsuppressed with
no probabilities: each says so once in the log and in the probe's ``note``, and the
decision then follows the reply's own choice (rag.grounding.decision).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence

import httpx

from rag.errors import GenerationError
from rag.generate.base import Probe, refusal_starts

log = logging.getLogger(__name__)

Messages = list[dict[str, str]]


class _Retryable(Exception):
    """A failure worth another try: the server was unreachable or answered 5xx."""


class _NoLogprobs(Exception):
    """The server streamed content without log-probabilities while the refusal was being
    suppressed: it must be asked again without suppression."""


NO_TOKENIZER = ("the model server gives no token ids (no tokenize endpoint), so the "
                "refusal's first token was not taken away")
NO_LOGPROBS = ("the model server sends no log-probabilities, so the refusal's first token "
               "was not taken away and its probability is unknown")
IGNORED_BIAS = "the model server ignored logit_bias: the refusal's first token stayed"


class OpenAIGenerator:
    """Chat completions from an OpenAI-compatible server at ``url`` (ending in ``/v1``)."""

    backend = "openai"

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
        self.logprobs: bool | None = None  # whether the server sends them (None: not known)
        self._refusal_ids: dict[str, list[int] | None] = {}
        self._warned: set[str] = set()

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
        read from the top alternatives (before any bias), and its first token is taken
        away where the server allows (see the module's text). ``avoid`` is not sent: a
        bias on every form of a word needs more of the server's tokenizer than a rewrite
        is worth."""
        body = {"model": self.name, "messages": messages, "max_tokens": max_tokens,
                "temperature": temperature, "stream": True, "seed": self.seed}
        if stop:
            body["stop"] = stop
        bias = None
        if probe is not None:
            body.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
            if probe.suppress and self.logprobs is not False:
                bias = self.refusal_bias(probe.refusal)
                if bias is None:
                    self._say(probe, NO_TOKENIZER)
            elif probe.suppress:
                self._say(probe, NO_LOGPROBS)
        try:
            yield from self._stream(body, probe, bias)
        except _NoLogprobs:
            self.logprobs = False
            self._say(probe, NO_LOGPROBS)
            yield from self._stream(body, probe, None)

    def _say(self, probe: Probe, note: str) -> None:
        """Put ``note`` on the probe, and in the log once per generator."""
        probe.note = note
        if note not in self._warned:
            self._warned.add(note)
            log.warning("%s (%s)", note, self.url)

    def _stream(self, body: dict, probe: Probe | None, bias: dict[str, float] | None
                ) -> Iterator[str]:
        if bias:
            body = dict(body, logit_bias=bias)
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
                yield from self._attempt(body, started, probe, bool(bias))
                return
            except _Retryable as exc:
                last = str(exc)
                if started[0]:
                    break
        raise GenerationError(f"the model server at {self.url} failed after {tries} "
                              f"attempt{'s' if tries > 1 else ''} ({last}); {self._fix()}")

    def _attempt(self, body: dict, started: list[bool], probe: Probe | None = None,
                 biased: bool = False) -> Iterator[str]:
        url = f"{self.url}/chat/completions"
        try:
            with httpx.Client(timeout=self._timeout, headers=self._headers) as client, \
                    client.stream("POST", url, json=body) as r:
                if r.status_code >= 500:
                    r.read()
                    raise _Retryable(f"HTTP {r.status_code}: {_error_text(r)}")
                if r.status_code >= 400:
                    r.read()
                    raise GenerationError(
                        f"the model server at {self.url} refused the request "
                        f"(HTTP {r.status_code}: {_error_text(r)}); check --model "
                        f"{self.name!r} and the server's settings")
                for piece in _sse_pieces(r.iter_lines(), self.url, probe):
                    if probe is not None and not started[0]:
                        self._first_piece(probe, piece, biased)
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


    def _first_piece(self, probe: Probe, piece: str, biased: bool) -> None:
        """Check the first streamed piece of a probed reply: it came with
        log-probabilities (else ``_NoLogprobs`` when suppressing), and a suppressed
        refusal did not start it."""
        if probe.p_refusal is None:
            if biased:
                raise _NoLogprobs()
            self.logprobs = False
            return
        self.logprobs = True
        if biased:
            starts = {w.lower() for w in refusal_starts(probe.refusal)}
            word = piece.strip().split()[0].lower() if piece.strip() else ""
            if word and word in starts:
                self._say(probe, IGNORED_BIAS)
            else:
                probe.suppressed = True

    # ---- the server's tokenizer ---------------------------------------------------
    def refusal_bias(self, refusal: str) -> dict[str, float] | None:
        """``logit_bias`` that takes away each first token of the refusal's first word
        (in each letter case), from the server's tokenizer; None when it gives no ids."""
        if refusal not in self._refusal_ids:
            ids: set[int] | None = set()
            try:
                for word in refusal_starts(refusal):
                    tokens = self.token_ids(word)
                    if not tokens:
                        ids = None
                        break
                    ids.add(tokens[0])
            except httpx.HTTPError:
                return None  # not reachable now: asked again next time
            self._refusal_ids[refusal] = sorted(ids) if ids else None
        ids = self._refusal_ids[refusal]
        return {str(i): SUPPRESS_BIAS for i in ids} if ids else None

    def token_ids(self, text: str) -> list[int] | None:
        """``text``'s token ids (no BOS) by the server's own tokenizer, or None when it
        has no tokenize endpoint (``httpx.HTTPError`` when it cannot be reached)."""
        root = self.url[:-3] if self.url.endswith("/v1") else self.url
        attempts = [  # llama-cpp-python's server, vLLM, llama.cpp's llama-server
            (f"{root}/extras/tokenize", {"input": text, "model": self.name}, ""),
            (f"{root}/tokenize", {"model": self.name, "prompt": text,
                                  "add_special_tokens": False}, None),
            (f"{root}/tokenize", {"content": text, "add_special": False}, None)]
        with httpx.Client(timeout=self._timeout, headers=self._headers) as client:
            for url, payload, empty in attempts:
                tokens = _tokens(client, url, payload)
                if tokens is None:
                    continue
                if empty is not None:  # this endpoint may add a BOS: drop it
                    lead = _tokens(client, url, dict(payload, input=empty)) or []
                    if tokens[:len(lead)] == lead:
                        tokens = tokens[len(lead):]
                return tokens or None
        return None


SUPPRESS_BIAS = -100.0  # the OpenAI API's floor: the token is never chosen


def _tokens(client: httpx.Client, url: str, payload: dict) -> list[int] | None:
    r = client.post(url, json=payload)
    if r.status_code != 200:
        return None
    try:
        tokens = r.json().get("tokens")
    except (ValueError, AttributeError):
        return None
    if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
        return None
    return tokens


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
    """Fill ``probe`` from one event's ``logprobs.content`` entries. The refusal's
    probability is the sum over its starts among the first step's top alternatives (the
    API gives no more): one outside them counts 0, being less likely than each."""
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
