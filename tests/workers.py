"""Background workers started by the tests: find them by the data home they serve, and
stop them, so that none outlives the test (or module) that started it."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path


def _environ(pid: str) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def workers_under(roots: list[Path]) -> list[int]:
    """This user's running workers (``python -m serve.worker_server``) whose data home
    (``RAG_HOME``) lies in one of ``roots``."""
    roots = [Path(r).resolve() for r in roots]
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != os.getuid():
                continue
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
            if b"serve.worker_server" not in cmd:
                continue
            home = _environ(proc.name).get("RAG_HOME")
        except OSError:
            continue
        if home and _running(int(proc.name)) and any(
                Path(home).resolve().is_relative_to(r) for r in roots):
            found.append(int(proc.name))
    return found


def stop_workers(roots: list[Path], timeout: float = 10.0) -> list[int]:
    """Stop the workers of ``workers_under(roots)`` (SIGTERM, then SIGKILL after
    ``timeout``); returns their pids."""
    pids = workers_under(roots)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for pid in pids:
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _running(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return pids
