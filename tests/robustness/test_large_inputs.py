"""Large inputs: a big text file, a file over a raised size limit, one very long line,
each indexed or split in bounded time and memory, every span exact."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from index.builder import build_index
from index.stores import disk
from tests.fakes import HashEmbedder
from tests.robustness.helpers import REPO, write_big

# The child's own peak RSS: VmHWM is reset by exec, while ru_maxrss keeps the peak of the
# forked parent (the test process, with models loaded) and would measure that instead.
PEAK_MB_CODE = ("def PEAK_MB():\n"
                "    for line in open('/proc/self/status'):\n"
                "        if line.startswith('VmHWM:'):\n"
                "            return int(line.split()[1]) // 1024\n")


# builds the index of argv[1] into argv[2] with the fake embedder; prints chunks,
# seconds and peak MB
BUILD_CODE = (
        f"{PEAK_MB_CODE}"
        "import sys, time\n"
        "from index.builder import build_index\n"
        "from tests.fakes import HashEmbedder\n"
        "t = time.perf_counter()\n"
        "r = build_index(sys.argv[1], sys.argv[2], HashEmbedder())\n"
        "print(r.total_chunks, round(time.perf_counter() - t, 1), PEAK_MB())\n")


def test_large_text_is_chunked_in_bounded_time_and_memory(tmp_path):
    """5 MB of text through the real build in a fresh process: time and peak memory."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    write_big(corpus / "big.txt", 5)
    code = BUILD_CODE
    out = subprocess.run([sys.executable, "-c", code, str(corpus), str(tmp_path / "idx")],
                         capture_output=True, text=True, cwd=REPO, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    chunks, seconds, rss_mb = out.stdout.split()
    print(f"5 MB text: {chunks} chunks in {seconds} s, peak RSS {rss_mb} MB")
    assert int(chunks) > 5000 and float(seconds) < 180 and int(rss_mb) < 1500
    data = disk.load(tmp_path / "idx")
    text = data.documents["big.txt"].text
    assert all(c.text == text[c.start:c.end] for c in data.chunks)


def test_a_file_over_a_raised_limit_takes_the_huge_document_path(tmp_path, monkeypatch):
    """The 50 MB test below, scaled down for every run: a file over the size limit is
    skipped with the fix, then indexed once RAG_MAX_FILE_MB is raised, split by the
    splitter for huge documents, every span exact, in bounded time."""
    from index import chunking

    corpus = tmp_path / "c"
    corpus.mkdir()
    write_big(corpus / "huge.txt", 2)  # 2 MB: over a 1 MB limit
    monkeypatch.setenv("RAG_MAX_FILE_MB", "1")
    report = build_index(corpus, tmp_path / "idx", HashEmbedder())
    assert report.partial and "over the 1 MB limit" in str(report.errors[0])
    assert "RAG_MAX_FILE_MB" in str(report.errors[0])
    monkeypatch.setenv("RAG_MAX_FILE_MB", "3")
    monkeypatch.setattr(chunking, "PYSBD_MAX_CHARS", 100_000)  # 2 MB is "huge" here
    t = time.perf_counter()
    report = build_index(corpus, tmp_path / "idx", HashEmbedder())
    assert not report.errors and report.total_chunks > 2_000
    assert time.perf_counter() - t < 120
    data = disk.load(tmp_path / "idx")
    text = data.documents["huge.txt"].text
    assert len(text) > 2_000_000 and all(c.text == text[c.start:c.end] for c in data.chunks)


@pytest.mark.slow
def test_fifty_megabytes_with_a_raised_limit_is_indexed_in_bounded_time(tmp_path):
    """RAG_MAX_FILE_MB=60: a 50 MB file is indexed (fake embedder), time and memory kept."""
    corpus = tmp_path / "c"
    corpus.mkdir()
    write_big(corpus / "huge.txt", 50)
    code = BUILD_CODE
    out = subprocess.run([sys.executable, "-c", code, str(corpus), str(tmp_path / "idx")],
                         capture_output=True, text=True, cwd=REPO, timeout=1200,
                         env=dict(os.environ, RAG_MAX_FILE_MB="60"))
    assert out.returncode == 0, out.stderr[-3000:]
    chunks, seconds, rss_mb = out.stdout.split()
    print(f"\n50 MB text: {chunks} chunks in {seconds} s, peak RSS {rss_mb} MB")
    assert int(chunks) > 50_000 and int(rss_mb) < 6000


def test_one_long_line_is_split_in_bounded_time():
    """A file with no line breaks (pysbd alone is quadratic in the line's length)."""
    from index.chunking import split_sentences

    text = "The ferry leaves at noon and the night bus at one. " * 12_000  # 600 KB
    t0 = time.perf_counter()
    spans = split_sentences(text)
    assert time.perf_counter() - t0 < 30
    assert len(spans) == 12_000
    assert all(text[s:e] == "The ferry leaves at noon and the night bus at one."
               for s, e in spans)
