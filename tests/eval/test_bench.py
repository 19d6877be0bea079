"""``rag bench``: size parsing, synthetic data, and a smoke run on the real models."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from eval.bench import RandomEmbedder, bench_retrieval, bench_update, parse_sizes, synthetic
from eval.bench.report import to_markdown
from index.builder import build_index
from index.stores import disk


def test_parse_sizes():
    assert parse_sizes("10k, 100k,1M,2500") == [10_000, 100_000, 1_000_000, 2500]
    assert parse_sizes("1.5k") == [1500]
    for bad in ("ten", "10x", "50", ""):
        with pytest.raises(ValueError, match="size"):
            parse_sizes(bad)


def test_clustered_vectors_are_reproducible_unit_vectors():
    a = synthetic.clustered_vectors(500, 32, clusters=10)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, synthetic.clustered_vectors(500, 32, clusters=10))
    texts = synthetic.zipf_texts(50, 20)
    assert texts == synthetic.zipf_texts(50, 20) and len(set(texts)) == 50
    assert len(set(synthetic.questions(30))) == 30


def test_synthetic_index_is_what_build_index_would_update(tmp_path):
    emb = RandomEmbedder("bench/random", 16)
    synthetic.synthetic_index(tmp_path / "c", tmp_path / "i", 300, emb.name, 16)
    data = disk.load(tmp_path / "i", embedding_model=emb.name)
    assert len(data.chunks) == 300 and len(data.documents) == 30
    (tmp_path / "c" / "new.txt").write_text("A new document about libraries. " * 30)
    report = build_index(tmp_path / "c", tmp_path / "i", emb)
    assert report.added == ["new.txt"] and len(report.unchanged) == 30
    assert report.embedded_chunks == len(disk.load(tmp_path / "i").chunks) - 300


def test_retrieval_and_update_sections_on_small_sizes(fake_embedder):
    r = bench_retrieval(fake_embedder, 3000, queries=5)
    assert r["index_type"] == "flat" and r["recall_at_10"] == 1.0
    assert r["retrieve"]["p50_ms"] > 0 and r["peak_rss_mb"] > 0
    u = bench_update(500, 5, dim=16, build_rate=10.0)
    assert u["new_chunks"] > 0 and u["ratio"] > 0
    md = to_markdown({"machine": {"cpus": 2, "platform": "x", "python": "3"},
                      "settings": {"embedding_model": "m", "embedding_backend": "torch",
                                   "model": "g", "backend": "auto", "k": 5},
                      "retrieval": [r], "update": u, "peak_rss_mb": 1})
    assert "| 3k | flat |" in md and "add 5 documents" in md


@pytest.mark.model
def test_bench_smoke_run_on_the_real_models(tmp_path):
    env = dict(os.environ, RAG_HOME=str(tmp_path / "home"), HF_HUB_OFFLINE="1")
    out = subprocess.run(
        [sys.executable, "-m", "cli", "bench", "--sizes", "2k", "--build-chunks", "12",
         "--queries", "5", "--update-base", "1k", "--update-docs", "5",
         "--e2e-questions", "2", "--model", "smollm2-135m", "--json",
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    r = json.loads(out.stdout)
    assert r["build"]["chunks"] >= 12 and 0 < r["build"]["ratio"]
    assert r["retrieval"][0]["chunks"] == 2000
    assert r["generation"]["raw_tokens_per_s"] > 0 and r["generation"]["ratio"] > 0
    assert r["end_to_end"]["questions"] == 2 and r["end_to_end"]["latency_p50_s"] > 0
    assert (tmp_path / "out" / "bench.md").read_text().count("|") > 20
