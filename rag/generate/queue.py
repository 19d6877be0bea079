"""The line in front of the generator: ``slots`` answers are generated at a time (one for a
model in this process), first come first served, and at most ``limit`` questions wait.
Everyone in the line knows their place.

A question takes a ``Ticket`` when it arrives (``GenerationQueue.admit``; a full line
raises ``BusyError`` with a retry delay), waits for the model only when it needs it
(``Ticket.wait`` yields its place while it waits), gives the model back as soon as its
tokens are out (``Ticket.release_model``) and leaves with ``Ticket.close``.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import TypeVar

from rag.config import Settings
from rag.errors import BusyError
from rag.generate.base import Generator, Probe
from rag.types import StreamEvent

# a turn's length is estimated from the recent ones (exponential moving average)
_SMOOTHING = 0.3
_FIRST_GUESS_S = 3.0

T = TypeVar("T")


def generation_slots(settings: Settings) -> int:
    """Answers generated at once: ``generation_slots`` for a served model, else one (a
    model in this process generates one answer at a time)."""
    return settings.generation_slots if settings.backend == "openai" else 1


class GenerationQueue:
    """First come, first served access to a generator, with a bounded line.

    ``slots`` questions are answered at once (1 for a model in this process; a served
    model with parallel slots takes more). ``limit`` is how many may wait meanwhile; one
    more is refused with ``BusyError``. ``heartbeat`` is how often (seconds) a waiting
    ticket reports its place even when it has not changed, so a shell notices a client
    that went away."""

    def __init__(self, limit: int = 32, heartbeat: float = 2.0, slots: int = 1) -> None:
        if limit < 0:
            raise ValueError(f"the queue limit must be >= 0, got {limit}")
        if heartbeat <= 0:
            raise ValueError(f"heartbeat must be > 0, got {heartbeat}")
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        self.limit = limit
        self.heartbeat = heartbeat
        self.slots = slots
        self._cond = threading.Condition()
        self._line: deque[Ticket] = deque()  # the first ``slots`` hold the model
        self._admitted = 0
        self._turn_s: float | None = None

    # ---- state --------------------------------------------------------------------
    @property
    def admitted(self) -> int:
        """Questions in progress: retrieving, waiting or being answered."""
        with self._cond:
            return self._admitted

    @property
    def waiting(self) -> int:
        """Questions waiting for the model (not counting those it is answering)."""
        with self._cond:
            return max(0, len(self._line) - self.slots)

    def retry_after(self) -> int:
        """Seconds after which a refused question may find room: the line ahead of it
        at the recent pace, at least one second."""
        with self._cond:
            turn = self._turn_s if self._turn_s is not None else _FIRST_GUESS_S
            return max(1, math.ceil(turn * max(1, len(self._line)) / self.slots))

    def stats(self) -> dict:
        with self._cond:
            return {"admitted": self._admitted,
                    "waiting": max(0, len(self._line) - self.slots), "limit": self.limit,
                    "slots": self.slots,
                    "turn_s": None if self._turn_s is None else round(self._turn_s, 3)}

    def _place(self, ticket: Ticket) -> int:
        """0 while ``ticket`` holds a slot, else its place among the waiting (1 = next);
        caller holds the lock."""
        return max(0, self._line.index(ticket) - self.slots + 1)

    # ---- tickets ------------------------------------------------------------------
    def admit(self) -> Ticket:
        """A ticket for a new question, or ``BusyError`` when the line is full."""
        with self._cond:
            if self._admitted >= self.limit + self.slots:
                busy = True
            else:
                busy = False
                self._admitted += 1
        if busy:
            retry = self.retry_after()
            raise BusyError(f"the model is busy: {self.limit} questions are waiting; "
                            f"try again in {retry} s", retry_after=retry,
                            waiting=self.limit)
        return Ticket(self)


class Ticket:
    """One question's place. Use it once: ``wait`` -> generate -> ``release_model``, and
    ``close`` at the end whatever happened (it is idempotent)."""

    def __init__(self, queue: GenerationQueue) -> None:
        self._q = queue
        self._closed = False
        self._started: float | None = None
        self.waited_s = 0.0

    def position(self) -> int:
        """0 while this ticket holds the model, N when it is N-th in line to get it,
        -1 when it is not in the line."""
        with self._q._cond:
            if self not in self._q._line:
                return -1
            return self._q._place(self)

    def wait(self) -> Iterator[int]:
        """Join the line for the model; yields this ticket's place (1 = next) whenever
        it changes, and every ``heartbeat`` seconds, until the model is free for it."""
        q = self._q
        t0 = time.monotonic()
        with q._cond:
            if self._closed:
                raise RuntimeError("this ticket is closed")
            if self not in q._line:
                q._line.append(self)
            pos = q._place(self)
        while pos > 0:
            yield pos
            with q._cond:
                deadline = time.monotonic() + q.heartbeat
                while (now := q._place(self)) == pos and time.monotonic() < deadline:
                    q._cond.wait(max(0.0, deadline - time.monotonic()))
                pos = now
        self.waited_s = time.monotonic() - t0
        self._started = time.monotonic()

    def release_model(self) -> None:
        """Give the model to the next in line (after the last token)."""
        q = self._q
        with q._cond:
            if self in q._line:
                was_holding = q._place(self) == 0
                q._line.remove(self)
                if was_holding and self._started is not None:
                    took = time.monotonic() - self._started
                    q._turn_s = took if q._turn_s is None else \
                        (1 - _SMOOTHING) * q._turn_s + _SMOOTHING * took
                q._cond.notify_all()
            self._started = None

    def close(self) -> None:
        """Leave: give the model back if held, and free the place in the line."""
        self.release_model()
        q = self._q
        with q._cond:
            if not self._closed:
                self._closed = True
                q._admitted -= 1
                q._cond.notify_all()

    def __enter__(self) -> Ticket:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def generate_in_line(ticket: Ticket, ready: Callable[[], Generator], request: dict,
                     timings: dict, t0: float, probe: Probe | None = None
                     ) -> Iterator[StreamEvent | str]:
    """One generation through the line: ``queued`` events while ``ticket`` waits for the
    model, then ``ready()`` (the generator, loaded and primed) streams the reply as
    ``token`` events, and the model is given back; the whole reply comes last. Fills
    ``timings``: queue_s, first_token_s (from ``t0``), generate_s and tokens."""
    for position in ticket.wait():
        yield StreamEvent("queued", position=position)
    if ticket.waited_s:
        timings["queue_s"] = ticket.waited_s
    t = time.perf_counter()
    text, n = "", 0
    kwargs = {"probe": probe} if probe is not None else {}
    try:
        for piece in ready().stream(**request, **kwargs):
            if n == 0:
                timings["first_token_s"] = time.perf_counter() - t0
            n += 1
            text += piece
            yield StreamEvent("token", piece)
    finally:
        ticket.release_model()
    timings["generate_s"] = time.perf_counter() - t
    timings["tokens"] = n
    yield text


def call_in_line(ticket: Ticket, call: Callable[[], T], timings: dict, key: str
                 ) -> Iterator[StreamEvent | T]:
    """One use of the model that is no streamed reply (the reading of a yes/no draft,
    rag.grounding.reading), in line like a generation: ``queued`` events while ``ticket``
    waits, then ``call()``, and the model is given back; its result comes last and its
    seconds go to ``timings[key]``."""
    for position in ticket.wait():
        yield StreamEvent("queued", position=position)
    t = time.perf_counter()
    try:
        result = call()
    finally:
        ticket.release_model()
    timings[key] = time.perf_counter() - t
    yield result
