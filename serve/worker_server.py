"""The background worker process: ``python -m serve.worker_server`` (shells start it through
``serve.worker.WorkerClient``; ``rag worker start|stop|status`` manage it).

It holds Pipelines, one per distinct settings, that share their embedding models and
generators (and a generator's queue), and answers one request per connection on a Unix
socket: ``hello``, ``status``, ``warm``, ``ask`` (streamed events), ``index``,
``exists``, ``documents`` and ``stop``. Only one worker runs per data home (a lock file), only its
user may connect (socket 0600 in a 0700 folder, and the peer's uid is checked), and it
exits after ``--idle`` seconds without a request.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections import OrderedDict
from pathlib import Path
from typing import TYPE_CHECKING

import psutil
from filelock import FileLock, Timeout

from rag.generate.threads import passive_waiting
from serve.worker import MAX_LINE, PROTOCOL, fingerprint, log_path, private_dir, run_dir

if TYPE_CHECKING:
    from rag.config import Settings

log = logging.getLogger("serve.worker")

MAX_PIPELINES = 4  # distinct settings kept; their models are shared where equal
MAX_GENERATORS = 2  # loaded generator models kept
# settings that change nothing in how a pipeline answers
_NOT_PIPELINE = {"worker", "worker_idle"}


class Worker:
    """The pipelines and the bookkeeping behind the socket."""

    def __init__(self, idle_s: float, socket_file: Path, fingerprint: str) -> None:
        self.idle_s = idle_s
        self.socket_file = socket_file
        self.fingerprint = fingerprint
        self.started = time.time()
        self.last_request = self._previous_request = time.monotonic()
        self.active = 0
        self.requests = 0
        self._lock = threading.Lock()
        self._pipelines: OrderedDict[str, object] = OrderedDict()
        self._embedders: dict[tuple, object] = {}
        self._generators: OrderedDict[tuple, tuple[object, object]] = OrderedDict()

    # ---- components -----------------------------------------------------------------
    def pipeline(self, payload: dict, warm: bool = True):
        """The Pipeline for these settings: kept, or made with shared parts, and (with
        ``warm``) its embedder loaded while its generator loads in the background. The
        index is re-read when another process replaced it."""
        from index.embed.embedders import make_embedder
        from rag.config import Settings
        from rag.generate.backends import generator_for
        from rag.generate.queue import GenerationQueue
        from rag.pipeline import Pipeline

        s = Settings.model_validate(payload)
        key = pipeline_key(s)
        with self._lock:
            pipe = self._pipelines.get(key)
            if pipe is not None:
                self._pipelines.move_to_end(key)
            else:
                ekey = (s.embedding_model, s.embedding_backend)
                if ekey not in self._embedders:
                    self._embedders[ekey] = make_embedder(s.embedding_model,
                                                          s.embedding_backend)
                generator = queue = None
                if s.backend != "openai":
                    gkey = (s.model, s.backend, s.n_ctx, s.threads, s.seed, s.prompt_cache)
                    if gkey not in self._generators:
                        self._generators[gkey] = (generator_for(s),
                                                  GenerationQueue(s.queue_limit, slots=1))
                        while len(self._generators) > MAX_GENERATORS:
                            self._generators.popitem(last=False)
                    self._generators.move_to_end(gkey)
                    generator, queue = self._generators[gkey]
                pipe = Pipeline(s, embedder=self._embedders[ekey], generator=generator,
                                queue=queue)
                self._pipelines[key] = pipe
                while len(self._pipelines) > MAX_PIPELINES:
                    self._pipelines.popitem(last=False)
                self._drop_unused()
        if warm:
            pipe.start_warming()
        pipe.live.refresh()
        return pipe

    def _drop_unused(self) -> None:
        """Forget embedders no kept pipeline uses (caller holds the lock)."""
        used = {id(p.embedder) for p in self._pipelines.values()}
        for k in [k for k, e in self._embedders.items() if id(e) not in used]:
            del self._embedders[k]

    def state(self) -> dict:
        """The worker's state, as seen by the one status request asking for it."""
        with self._lock:
            pipes = list(self._pipelines.values())
            generators = [g for g, _ in self._generators.values()]
            active = self.active - 1  # not counting the request asking
            idle = time.monotonic() - self._previous_request
        return {
            "kind": "state", "pid": os.getpid(), "protocol": PROTOCOL,
            "fingerprint": self.fingerprint, "socket": str(self.socket_file),
            "log": str(log_path()), "uptime_s": round(time.time() - self.started, 1),
            "active": active, "requests": self.requests,
            "idle_s": round(idle if not active else 0.0, 1), "idle_limit_s": self.idle_s,
            "exits_in_s": None if active else round(max(0.0, self.idle_s - idle), 1),
            "rss_mb": _rss_mb(),
            "generators": [{"model": g.name, "loaded": getattr(g, "_llm", None) is not None
                            or getattr(g, "_model", None) is not None} for g in generators],
            "pipelines": [{"index": p.store.location, "model": p.settings.model,
                           "embedding_model": p.settings.embedding_model,
                           "index_loaded": p.live.loaded,
                           "queue": p.queue.stats()} for p in pipes],
        }

    # ---- requests -------------------------------------------------------------------
    def handle(self, request: dict, send) -> None:
        op = request.get("op")
        if op == "hello":
            send({"kind": "hello", "protocol": PROTOCOL, "fingerprint": self.fingerprint,
                  "pid": os.getpid()})
        elif op == "status":
            send(self.state())
        elif op == "stop":
            send({"kind": "stopping", "pid": os.getpid()})
            threading.Thread(target=self.server.shutdown, daemon=True).start()
        elif op == "warm":
            t = time.perf_counter()
            self.pipeline(request["settings"]).warm_up()
            send({"kind": "warm", "seconds": round(time.perf_counter() - t, 2)})
        elif op == "ask":
            self._ask(request, send)
        elif op == "index":
            self._index(request, send)
        elif op == "exists":
            send({"kind": "exists",
                  "exists": self.pipeline(request["settings"], warm=False).index_exists()})
        elif op == "documents":
            send({"kind": "documents",
                  "texts": self.pipeline(request["settings"]).document_texts()})
        else:
            send({"kind": "error", "error": "ValueError",
                  "message": f"unknown request {op!r}"})

    def _ask(self, request: dict, send) -> None:
        pipe = self.pipeline(request["settings"], warm=False)
        events = pipe.ask_stream(request.get("question", ""), k=request.get("k"),
                                 mode=request.get("mode"), history=request.get("history"))
        try:
            # the stream's first step checks the question and the history (the one
            # check, in the pipeline): user errors come before any loading
            first = next(events)
            _ = pipe.retriever  # a missing or damaged index says so before any model loads
            if not pipe.models.warming:
                send({"kind": "status", "text": "loading"})
                pipe.start_warming()
            send(first.to_dict())
            for event in events:
                send(event.to_dict())
        finally:
            events.close()  # a client that left gives its place (and the model) back

    def _index(self, request: dict, send) -> None:
        pipe = self.pipeline(request["settings"])
        corpus = request.get("corpus")

        def progress(stage: str, done: int, total: int) -> None:
            send({"kind": "progress", "stage": stage, "done": done, "total": total})

        report = pipe.index(Path(corpus) if corpus else None,
                            rebuild=bool(request.get("rebuild")), progress=progress)
        send({"kind": "indexed", "report": report.to_dict(), "summary": report.summary(),
              "partial": report.partial, "errors": [str(e) for e in report.errors],
              "warnings": list(report.warnings)})

    def begin(self) -> None:
        with self._lock:
            self.active += 1
            self.requests += 1
            self._previous_request = self.last_request
            self.last_request = time.monotonic()

    def end(self) -> None:
        with self._lock:
            self.active -= 1
            self.last_request = time.monotonic()

    def idle_watch(self) -> None:
        """Stop the server after ``idle_s`` seconds without a request."""
        while True:
            time.sleep(min(5.0, max(0.2, self.idle_s / 10)))
            with self._lock:
                idle = not self.active and \
                    time.monotonic() - self.last_request > self.idle_s
            if idle:
                log.info("idle for %.0f s; exiting", self.idle_s)
                self.server.shutdown()
                return


def pipeline_key(s: Settings) -> str:
    """What tells two pipelines apart: every setting that changes an answer, the secrets
    by a digest (two databases behind one masked URL are two pipelines)."""
    data = {k: v for k, v in s.model_dump(mode="json").items() if k not in _NOT_PIPELINE}
    for name, value in s.secrets().items():
        data[name] = hashlib.sha256(value.encode()).hexdigest()
    return json.dumps(data, sort_keys=True)


class Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        worker: Worker = self.server.worker
        if not _same_user(self.request):
            return
        line = self.rfile.readline(MAX_LINE)
        if not line:
            return
        worker.begin()
        try:
            request = json.loads(line)
            worker.handle(request, self._send)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client went away
        except Exception as exc:  # every failure ends in an error event, never silence
            self._error(exc)
        finally:
            worker.end()

    def _send(self, event: dict) -> None:
        self.wfile.write(json.dumps(event, ensure_ascii=False).encode() + b"\n")
        self.wfile.flush()

    def _error(self, exc: BaseException) -> None:
        from rag.errors import BusyError, RagError

        if isinstance(exc, RagError):
            event = {"kind": "error", "error": type(exc).__name__,
                     "message": str(exc).splitlines()[0] if str(exc) else type(exc).__name__}
            if isinstance(exc, BusyError):
                event["retry_after"] = exc.retry_after
        elif isinstance(exc, ValueError):
            event = {"kind": "error", "error": "ValueError", "message": str(exc)}
        else:
            log.error("request failed:\n%s", traceback.format_exc())
            event = {"kind": "error", "error": "WorkerError",
                     "message": f"the worker failed ({type(exc).__name__}: {exc}); its log: "
                                f"{log_path()}"}
        with contextlib.suppress(OSError):
            self._send(event)


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = False


def _same_user(sock: socket.socket) -> bool:
    """Only this user's processes may talk to the worker (SO_PEERCRED)."""
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return False
    _pid, uid, _gid = struct.unpack("3i", creds)
    return uid == os.getuid()


def _rss_mb() -> float | None:
    """This process's resident memory, in MB."""
    try:
        return round(psutil.Process().memory_info().rss / 2**20, 1)
    except psutil.Error:
        return None


def serve(socket_file: Path, idle_s: float, code: str | None = None) -> int:
    """Run the worker until idle, stopped or signalled. Returns the exit code. ``code``:
    the fingerprint of the environment the worker was started in."""
    private_dir(run_dir())
    private_dir(socket_file.parent)
    lock = FileLock(run_dir() / "worker.lock", blocking=False)  # held for the lifetime
    try:
        lock.acquire()
    except Timeout:
        log.info("another worker holds %s; exiting", lock.lock_file)
        return 0
    with contextlib.suppress(FileNotFoundError):
        socket_file.unlink()  # a dead worker's socket: we hold the lock
    old = os.umask(0o177)
    try:
        server = Server(os.fsencode(socket_file), Handler)
    finally:
        os.umask(old)
    os.chmod(socket_file, 0o600)
    inode = socket_file.stat().st_ino
    worker = Worker(idle_s, socket_file, code or fingerprint())
    server.worker = worker
    worker.server = server

    def on_signal(signum, frame) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=worker.idle_watch, daemon=True, name="idle-watch").start()
    log.info("worker %d listening on %s (idle limit %.0f s)", os.getpid(), socket_file, idle_s)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        with contextlib.suppress(OSError):
            if socket_file.stat().st_ino == inode:
                socket_file.unlink()
        lock.release()
    log.info("worker %d stopped", os.getpid())
    return 0


def main(argv: list[str] | None = None) -> int:
    from serve.worker import socket_path

    parser = argparse.ArgumentParser(prog="python -m serve.worker_server",
                                     description="The cited-rag background worker.")
    parser.add_argument("--idle", type=float, default=300.0,
                        help="exit after this many seconds without a request")
    parser.add_argument("--socket", type=Path, default=None, help="socket path")
    args = parser.parse_args(argv)
    code = fingerprint()  # of the environment as the caller gave it
    passive_waiting()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.setLevel(logging.INFO)
    for handler in logging.getLogger().handlers:  # the worker's own news, others' warnings
        handler.addFilter(lambda r: r.levelno >= logging.WARNING or r.name == log.name)
    return serve(args.socket or socket_path(), args.idle, code)


if __name__ == "__main__":
    sys.exit(main())
