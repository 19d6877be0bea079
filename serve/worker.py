"""The background worker, as a shell sees it: where it listens, how to start, reach and
stop it, and ``WorkerClient`` to ask it questions.

The worker (``serve.worker_server``, a separate process) keeps the embedding model, the
index and the generator loaded between commands, so ``rag ask`` pays for loading once,
not on every question. It listens on a Unix socket under ``$RAG_HOME/run/`` (folder
0700, socket 0600, and it checks the caller's user id), exits after ``worker_idle``
seconds without a question, and is started again on the next use. A worker that runs
other code or another environment than the caller (an upgrade, another checkout, other
``RAG_*`` variables outside the settings) is replaced when idle; while it is busy the
caller answers in its own process instead.

This module imports nothing heavy: a shell that talks to the worker stays light.

Wire format: one JSON object per line. A request is ``{"op": ..., ...}``; the worker
answers with events, each ``{"kind": ...}``; the last is the result or
``{"kind": "error", "error": class name, "message": ...}``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from index.home import data_home
from rag.errors import BusyError, RagError, WorkerError

PROTOCOL = 1
MAX_LINE = 64 * 2**20  # the longest event (a documents listing) a client accepts
START_TIMEOUT_S = 60.0
# a Unix socket path must fit in sun_path (108 bytes on Linux, with its terminating NUL)
_SUN_PATH_MAX = 107
# environment variables that change how things look, never an answer
_DISPLAY_ONLY = {"HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"}
_FINAL = {"answer", "error", "indexed", "documents", "warm", "state", "stopping", "hello",
          "exists"}


# ---- where ---------------------------------------------------------------------------
def run_dir() -> Path:
    """``$RAG_HOME/run``: the worker's socket, lock and log."""
    return data_home() / "run"


def socket_path() -> Path:
    """The socket of this data home's worker. A path too long for a Unix socket moves to
    a per-user folder in the temporary directory, named by the data home."""
    path = run_dir() / "worker.sock"
    if len(os.fsencode(path)) <= _SUN_PATH_MAX:
        return path
    tag = hashlib.sha256(os.fsencode(data_home().resolve())).hexdigest()[:16]
    return Path("/tmp") / f"cited-rag-{os.getuid()}" / f"{tag}.sock"


def log_path() -> Path:
    return run_dir() / "worker.log"


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700, and make sure it is 0700 and ours."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    st = path.lstat()
    if not stat.S_ISDIR(st.st_mode):
        raise WorkerError(f"{path} is not a folder (a link?); remove it or set RAG_HOME")
    if st.st_uid != os.getuid():
        raise WorkerError(f"{path} belongs to another user; remove it or set RAG_HOME")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)
    return path


# ---- which code -----------------------------------------------------------------------
def _source_dirs() -> list[Path]:
    """The packages whose code a worker runs: the library and the worker itself."""
    root = Path(__file__).resolve().parent.parent
    return [root / pkg for pkg in ("rag", "index", "eval", "serve")]


def fingerprint() -> str:
    """What a worker's answers depend on beyond the request's settings: the interpreter,
    the code (each source file's size and mtime) and the environment variables that
    the settings do not carry (``RAG_MODELS_DIR``, ``RAG_MAX_FILE_MB``, ``HF_*``, ...)."""
    from rag.config import Settings

    h = hashlib.sha256(f"{PROTOCOL}|{sys.executable}|{sys.version}".encode())
    for folder in _source_dirs():
        for f in sorted(folder.rglob("*.py")):
            st = f.stat()
            h.update(f"{f}|{st.st_size}|{st.st_mtime_ns}".encode())
    carried = {f"RAG_{name.upper()}" for name in Settings.model_fields}
    env = _worker_env()  # as a worker started from here would see it
    for key in sorted(env):
        if key in carried or key in _DISPLAY_ONLY:
            continue
        if key.startswith(("RAG_", "HF_", "TRANSFORMERS_", "OMP_", "LLAMA_")) or \
                key in ("XDG_DATA_HOME", "PYTHONPATH"):
            h.update(f"{key}={env[key]}".encode())
    return h.hexdigest()[:16]


def settings_payload(settings) -> dict:
    """Every setting as JSON, secrets in clear (the database URL, the model server's key:
    they travel only over the worker's private socket and are never written down), and
    every path made absolute (the worker's working folder is not the caller's)."""
    data = settings.model_dump(mode="json")
    data.update(settings.secrets())
    for key in ("corpus", "index", "qdrant_path"):
        if data.get(key):
            data[key] = str(Path(data[key]).expanduser().resolve())
    for key in ("model", "embedding_model"):  # a name, or a file or folder
        value = data.get(key)
        if value and Path(value).expanduser().exists():
            data[key] = str(Path(value).expanduser().resolve())
    return data


def _worker_env() -> dict[str, str]:
    """The caller's environment, with the folder holding this code first on PYTHONPATH
    and every PYTHONPATH entry absolute: the worker imports the same code."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    entries = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep)
               if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys([root, *entries]))
    return env


# ---- errors ---------------------------------------------------------------------------
def _error_from(event: dict) -> RagError:
    """The library exception an error event names (its message kept), else RagError."""
    import index.errors
    import rag.errors

    name = event.get("error", "")
    message = event.get("message") or "the worker failed"
    if name == "BusyError":
        return BusyError(message, retry_after=int(event.get("retry_after") or 1))
    for module in (rag.errors, index.errors):
        cls = getattr(module, name, None)
        if isinstance(cls, type) and issubclass(cls, RagError):
            try:
                return cls(message)
            except TypeError:  # needs other arguments (DocumentError)
                break
    return RagError(message)


class WorkerDied(WorkerError):
    """The connection ended before the worker sent its result."""


# ---- the client -----------------------------------------------------------------------
class WorkerClient:
    """Talks to this data home's worker, starting it when needed."""

    def __init__(self, idle_s: float = 300.0, start_timeout: float = START_TIMEOUT_S) -> None:
        self.idle_s = idle_s
        self.start_timeout = start_timeout
        self.socket = socket_path()
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint()
        return self._fingerprint

    # ---- one request ----------------------------------------------------------------
    def _connect(self, timeout: float | None = None) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(os.fsencode(self.socket))
        except OSError:
            sock.close()
            raise
        return sock

    def _exchange(self, request: dict, timeout: float | None = None) -> Iterator[dict]:
        """Send ``request``; yield the events up to and including the final one.
        ``OSError`` when nobody listens; ``WorkerDied`` when the worker goes away."""
        sock = self._connect(timeout)
        with sock, sock.makefile("rb") as stream:
            sock.sendall(json.dumps(request).encode() + b"\n")
            while True:
                try:
                    line = stream.readline(MAX_LINE)
                except (ConnectionError, TimeoutError) as exc:
                    raise WorkerDied(f"the worker stopped answering ({exc})") from exc
                if not line:
                    raise WorkerDied("the worker closed the connection before the end of "
                                     f"its answer; its log: {log_path()}")
                event = json.loads(line)
                if event.get("kind") == "error":
                    raise _error_from(event)
                yield event
                if event.get("kind") in _FINAL:
                    return

    def hello(self, timeout: float = 5.0) -> dict | None:
        """The running worker's identity, or None when none answers."""
        try:
            return next(self._exchange({"op": "hello"}, timeout), None)
        except (OSError, WorkerDied, ValueError):
            return None

    # ---- lifecycle -------------------------------------------------------------------
    def ensure(self) -> dict:
        """A worker running this code for this environment: the one that answers, a
        new one if none does, and a new one in place of an idle one that runs other
        code. Raises ``WorkerError`` when the worker answering runs other code but is
        busy (the caller then answers in its own process), or cannot be started."""
        info = self.hello()
        if info is not None and info.get("fingerprint") == self.fingerprint:
            return info
        if info is not None:
            status = self.status() or {}
            if status.get("active", 0) > 0:
                raise WorkerError("the running worker uses other code or settings and "
                                  "is busy")
            self.stop()
        return self._spawn()

    def _spawn(self) -> dict:
        private_dir(run_dir())
        private_dir(self.socket.parent)
        log = log_path()
        with contextlib.suppress(OSError):
            if log.stat().st_size > 2**20:  # keep the log short
                log.unlink()
        with open(log, "ab") as out:
            os.chmod(log, 0o600)
            proc = subprocess.Popen(
                [sys.executable, "-m", "serve.worker_server", "--idle", str(self.idle_s),
                 "--socket", str(self.socket)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=_worker_env(),
                cwd=str(run_dir()), start_new_session=True, close_fds=True)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            info = self.hello(timeout=2.0)
            if info is not None:
                if info.get("fingerprint") != self.fingerprint:
                    raise WorkerError(f"another worker took the socket {self.socket}")
                return info
            if proc.poll() is not None and proc.returncode != 0:
                raise WorkerError(f"the worker did not start (exit code {proc.returncode})"
                                  f"{_log_tail()}")
            time.sleep(0.05)
        proc.kill()
        raise WorkerError(f"the worker did not answer within {self.start_timeout:.0f} s"
                          f"{_log_tail()}")

    def status(self) -> dict | None:
        """The worker's state (pid, uptime, loaded models, queue), or None if none runs."""
        try:
            return next(self._exchange({"op": "status"}, timeout=5.0), None)
        except (OSError, WorkerDied, ValueError):
            return None

    def stop(self, timeout: float = 10.0) -> bool:
        """Stop the running worker; False when none was running."""
        info = self.hello()
        if info is None:
            return False
        try:
            list(self._exchange({"op": "stop"}, timeout=5.0))
        except (OSError, WorkerDied):
            pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not _alive(int(info.get("pid", 0))):
                return True
            time.sleep(0.05)
        with contextlib.suppress(OSError):
            os.kill(int(info["pid"]), 15)
        return True

    # ---- work ------------------------------------------------------------------------
    def stream(self, request: dict) -> Iterator[dict]:
        """The events of ``request`` from a compatible worker (started if needed). A
        worker that dies on the way is started again and asked once more; a status
        event says so."""
        self.ensure()
        try:
            yield from self._exchange(request)
            return
        except (WorkerDied, ConnectionRefusedError, FileNotFoundError) as exc:
            yield {"kind": "status", "text": f"the worker stopped ({exc}); starting it again"}
        self.ensure()
        try:
            yield from self._exchange(request)
        except (OSError, WorkerDied) as exc:
            raise WorkerError(f"the worker failed twice ({exc}); run with --no-worker, "
                              f"and see its log: {log_path()}") from exc

    def ask(self, settings, question: str, k: int | None = None, mode: str | None = None,
            history: list[dict] | None = None) -> Iterator[dict]:
        """Answer events, as ``StreamEvent.to_dict()``: status, sources, queued, token,
        and last answer (``Answer.to_dict()``). ``history``: earlier turns of a chat."""
        yield from self.stream({"op": "ask", "settings": settings_payload(settings),
                                "question": question, "k": k, "mode": mode,
                                "history": history or []})

    def index(self, settings, corpus: Path | None = None, rebuild: bool = False
              ) -> Iterator[dict]:
        """Progress events ``{"kind": "progress", "stage", "done", "total"}``, then
        ``{"kind": "indexed", "report": ..., "summary": ..., "partial": ...}``."""
        payload = {"op": "index", "settings": settings_payload(settings), "rebuild": rebuild,
                   "corpus": str(Path(corpus).expanduser().resolve()) if corpus else None}
        yield from self.stream(payload)

    def warm(self, settings) -> dict:
        """Load the models and the index for ``settings``; returns the final event."""
        events = list(self.stream({"op": "warm", "settings": settings_payload(settings)}))
        return events[-1]

    def index_exists(self, settings) -> bool:
        """Whether the index of ``settings`` is there (``Pipeline.index_exists``, asked
        of the worker's pipeline)."""
        events = list(self.stream({"op": "exists", "settings": settings_payload(settings)}))
        return bool(events[-1]["exists"])

    def documents(self, settings) -> dict[str, str]:
        events = list(self.stream({"op": "documents",
                                   "settings": settings_payload(settings)}))
        return events[-1]["texts"]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (our own child, not yet reaped) is gone for our purposes
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _log_tail(lines: int = 3) -> str:
    try:
        text = log_path().read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    tail = " | ".join(t.strip() for t in text[-lines:] if t.strip())
    return f"; its log ({log_path()}) ends: {tail}" if tail else ""


class WorkerPipeline:
    """What ``rag eval`` needs of a Pipeline, served by the worker: ``settings``,
    ``index``, ``ask`` and ``document_texts``."""

    def __init__(self, settings, client: WorkerClient | None = None) -> None:
        self.settings = settings
        self.client = client or WorkerClient(idle_s=settings.worker_idle)

    def index(self, corpus: Path | None = None, rebuild: bool = False, progress=None) -> dict:
        result: dict = {}
        for ev in self.client.index(self.settings, corpus or self.settings.corpus, rebuild):
            if ev["kind"] == "progress" and progress is not None:
                progress(ev["stage"], ev["done"], ev["total"])
            elif ev["kind"] == "indexed":
                result = ev
        return result

    def ask(self, question: str, k: int | None = None, mode: str | None = None,
            history: list[dict] | None = None):
        from rag.types import Answer

        for ev in self.client.ask(self.settings, question, k=k, mode=mode, history=history):
            if ev["kind"] == "answer":
                return Answer.from_dict(ev["answer"])
        raise WorkerError("the worker sent no answer")

    def document_texts(self) -> dict[str, str]:
        return self.client.documents(self.settings)
