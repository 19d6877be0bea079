"""Shared helpers for the robustness tests: the real ``rag`` command in a subprocess, and
large text files written in blocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def rag(*args: str, home: Path, env: dict | None = None, timeout: float = 300,
        stdin: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m cli ARGS`` as a user would, with RAG_HOME in ``home``."""
    full = dict(os.environ, RAG_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                **(env or {}))
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True,
                          text=True, env=full, timeout=timeout, cwd=REPO, input=stdin)


def assert_clean_error(out: subprocess.CompletedProcess, *needles: str, code: int = 1) -> str:
    """A user error: exit ``code``, no traceback, one ``Error:`` line naming ``needles``."""
    err = out.stderr
    assert out.returncode == code, (out.returncode, out.stdout[-2000:], err[-2000:])
    assert "Traceback" not in err and "Traceback" not in out.stdout, err[-3000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("Error:")]
    assert len(lines) == 1, err[-3000:]
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def write_big(path: Path, mb: float) -> None:
    """A text file of ``mb`` megabytes of ordinary sentences, written in blocks."""
    para = ("The harbour master said the ferry would run again in spring. "
            "Passengers were told to check the timetable before travelling.\n\n")
    block = para * (2**20 // len(para))
    with open(path, "w", encoding="ascii") as f:
        for _ in range(int(mb)):
            f.write(block)
