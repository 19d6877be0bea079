"""A normal run prints no debug lines, and the scripts read no machine paths."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import NHS_CORPUS, REPO


@pytest.mark.model
def test_rag_index_prints_no_debug_lines(tmp_path):
    """bm25s sets its logger to DEBUG when imported; `rag index` printed
    'DEBUG bm25s: Building index from IDs objects' on every run."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-m", "cli", "index", str(NHS_CORPUS), "--index",
                           str(tmp_path / "index")], env=env, capture_output=True,
                          text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Indexed" in done.stdout
    assert "DEBUG" not in done.stderr + done.stdout


def test_bm25s_logs_through_the_application_config():
    import logging

    from index.stores.disk import build_bm25

    build_bm25(["alpha beta", "gamma delta"])
    assert logging.getLogger("bm25s").level == logging.NOTSET  # the root's level applies


def test_embedding_backends_script_reads_files_of_the_repository():
    sys.path.insert(0, str(REPO / "scripts"))
    try:
        import embedding_backends as script
    finally:
        sys.path.remove(str(REPO / "scripts"))
    assert script.SQUAD.is_file() and script.SQUAD.is_relative_to(REPO)
    chunks = script.bench_chunks(12, 30)
    assert len(chunks) == 12 and all(len(c.split()) == 30 for c in chunks)
