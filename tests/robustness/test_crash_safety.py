"""Issue 8, point 2: a build killed at any moment leaves the previous index live, and a
damaged index gives one line that says how to fix it, never a traceback."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from index.builder import build_index
from index.stores import disk
from rag.retrieve.retrievers import HybridRetriever
from tests.conftest import NHS_CORPUS
from tests.fakes import HashEmbedder
from tests.robustness.helpers import REPO, assert_clean_error, rag

# Builds the index again and again, changing one document each time, until killed.
DRIVER = """
import sys, time
from pathlib import Path
from index.builder import build_index
from tests.fakes import HashEmbedder
corpus, idx = Path(sys.argv[1]), Path(sys.argv[2])
emb = HashEmbedder()
print("ready", flush=True)
deadline = time.monotonic() + 60
i = 0
while time.monotonic() < deadline:
    i += 1
    (corpus / f"extra{i % 3}.txt").write_text(f"Ferry bulletin {i}. The ferry leaves at "
                                             f"{i % 12 + 1} o'clock.", encoding="utf-8")
    build_index(corpus, idx, emb)
"""

TASKFORCE_Q = "Did the health department confirm the taskforce?"


def make_corpus(root: Path) -> Path:
    import shutil

    shutil.copytree(NHS_CORPUS, root)
    rng = random.Random(7)
    words = ("ferry harbour council island timetable winter storm passengers "
             "bus night service route cancelled restored spring budget").split()
    for n in range(30):  # enough text that a build spends a while writing
        paras = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 25))) + "."
                 for _ in range(60)]
        (root / f"filler{n:02d}.txt").write_text(f"Filler {n}\n\n" + "\n".join(paras),
                                                  encoding="utf-8")
    return root


def check_live(idx: Path) -> int:
    """The live index loads, is consistent and answers a retrieval query."""
    data = disk.load(idx)
    for ch in data.chunks:
        assert ch.text == data.documents[ch.doc_id].text[ch.start:ch.end]
    hits = HybridRetriever(data, HashEmbedder()).retrieve(TASKFORCE_Q, 3)
    assert hits and hits[0].doc == "002_460e449dcac45b62.txt"
    return len(data.chunks)


def leftovers(idx: Path) -> list[str]:
    live = (idx / disk.CURRENT).read_text(encoding="utf-8").strip()
    return sorted(p.name for p in idx.iterdir() if p.name not in (live, disk.CURRENT))


def test_sigkill_at_random_moments_never_breaks_the_index(tmp_path):
    corpus = make_corpus(tmp_path / "c")
    idx = tmp_path / "idx"
    build_index(corpus, idx, HashEmbedder())
    check_live(idx)
    rng = random.Random(8)
    kills, seen_leftovers, t_end = 0, set(), time.monotonic() + 100
    while kills < 18 and time.monotonic() < t_end:
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(corpus), str(idx)],
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
            time.sleep(rng.uniform(0.05, 2.5))
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
        assert proc.returncode == -signal.SIGKILL, "the driver must still be building"
        kills += 1
        check_live(idx)
        seen_leftovers.update(n.split("-")[0] for n in leftovers(idx))
    print(f"\n{kills} kills; leftover kinds seen: {sorted(seen_leftovers)}")
    assert kills >= 10
    (corpus / "final.txt").write_text("The final bulletin about the ferry.", encoding="utf-8")
    report = build_index(corpus, idx, HashEmbedder())
    assert "final.txt" in report.added
    check_live(idx)
    assert leftovers(idx) == []
    # an unchanged run also sweeps up what a killed run left behind
    (idx / ".tmp-deadbeef0000").mkdir()
    (idx / ".CURRENT.deadbeef").write_text("v-x", encoding="utf-8")
    assert not build_index(corpus, idx, HashEmbedder()).written
    assert leftovers(idx) == []


# ---- damaged index files, through the real command -----------------------------------

def _break_manifest(v: Path) -> None:
    data = (v / "manifest.json").read_bytes()
    (v / "manifest.json").write_bytes(data[: len(data) // 2])


def _manifest_not_an_object(v: Path) -> None:
    (v / "manifest.json").write_text("[1, 2, 3]", encoding="utf-8")


def _garbage_chunks(v: Path) -> None:
    (v / "chunks.jsonl").write_bytes(b"\x00\xffnot json at all\n{\"half\": ")


def _chunks_of_another_shape(v: Path) -> None:
    (v / "chunks.jsonl").write_text('{"id": 1}\n[1, 2]\n', encoding="utf-8")


def _drop_a_chunk(v: Path) -> None:
    lines = (v / "chunks.jsonl").read_text(encoding="utf-8").splitlines()
    (v / "chunks.jsonl").write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")


def _missing_faiss(v: Path) -> None:
    (v / "dense.faiss").unlink()


def _garbage_embeddings(v: Path) -> None:
    (v / "embeddings.npy").write_bytes(b"\x93NUMPY garbage")


def _wrong_pointer(v: Path) -> None:
    (v.parent / disk.CURRENT).write_text("v-does-not-exist", encoding="utf-8")


def _pointer_outside(v: Path) -> None:
    (v.parent / disk.CURRENT).write_text("../../etc", encoding="utf-8")


DAMAGE = [_break_manifest, _manifest_not_an_object, _garbage_chunks,
          _chunks_of_another_shape, _drop_a_chunk, _missing_faiss, _garbage_embeddings,
          _wrong_pointer, _pointer_outside]


@pytest.fixture(scope="module")
def model_name() -> str:
    from rag.config import Settings

    return Settings().embedding_model


def _damaged_index(root: Path, model_name: str, damage) -> Path:
    """An index that the CLI's model accepts (built with a fake of the same name and
    dimension, so no model is loaded), then damaged."""
    idx = root / "idx"
    build_index(NHS_CORPUS, idx, HashEmbedder(dim=384, name=model_name))
    damage(disk.current_version(idx))
    return idx


def _ask_in_process(idx: Path, home: Path, monkeypatch):
    """``rag ask`` through the real command object, in this process (no start-up cost)."""
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setenv("RAG_HOME", str(home))
    return CliRunner().invoke(app, ["ask", TASKFORCE_Q, "--index",
                                    str(idx), "--json"])


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__.strip("_"))
def test_damaged_index_is_one_line_with_the_fix(tmp_path, model_name, damage, monkeypatch,
                                                in_process):
    idx = _damaged_index(tmp_path, model_name, damage)
    result = _ask_in_process(idx, tmp_path, monkeypatch)
    assert result.exit_code == 1, (result.exception, result.output)
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--rebuild" in lines[0]
    assert str(idx) in lines[0]
    assert result.stdout == ""  # no answer from a damaged index


@pytest.mark.model
def test_damaged_index_through_the_rag_command(tmp_path, model_name):
    """The same, as a user runs it (a subprocess), for three kinds of damage."""
    for damage in (_break_manifest, _garbage_chunks, _wrong_pointer):
        root = tmp_path / damage.__name__
        idx = _damaged_index(root, model_name, damage)
        out = rag("ask", TASKFORCE_Q, "--index", str(idx), "--json",
                  home=tmp_path, timeout=120)  # one worker answers the three
        line = assert_clean_error(out, "--rebuild")
        assert str(idx) in line and out.stdout == ""


def test_rebuild_repairs_a_damaged_index(tmp_path, model_name):
    idx = _damaged_index(tmp_path, model_name, _garbage_chunks)
    out = rag("index", str(NHS_CORPUS), "--index", str(idx), home=tmp_path)
    assert_clean_error(out, "--rebuild")
    emb = HashEmbedder(dim=384, name=model_name)
    with pytest.raises(disk.IndexCorruptError):
        build_index(NHS_CORPUS, idx, emb)
    assert len(build_index(NHS_CORPUS, idx, emb, rebuild=True).added) == 2
    assert leftovers(idx) == []
    disk.load(idx, embedding_model=model_name)


def test_rag_index_rebuild_repairs_a_damaged_index_fast(tmp_path, model_name, monkeypatch):
    """``rag index --rebuild`` through the real command object, its embedder a fake of
    the index's model (no model loaded): the damaged index is replaced, whole."""
    from typer.testing import CliRunner

    from cli.main import app

    monkeypatch.setattr("rag.pipeline.make_embedder",
                        lambda *a, **kw: HashEmbedder(dim=384, name=model_name))
    idx = _damaged_index(tmp_path, model_name, _garbage_chunks)
    out = CliRunner().invoke(app, ["index", str(NHS_CORPUS), "--index", str(idx)])
    assert out.exit_code == 1 and "--rebuild" in out.stderr
    out = CliRunner().invoke(app, ["index", str(NHS_CORPUS), "--index", str(idx),
                                   "--rebuild", "--json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)["added"]) == 2
    assert leftovers(idx) == []
    disk.load(idx, embedding_model=model_name)


@pytest.mark.slow
@pytest.mark.model
def test_rag_index_rebuild_repairs_a_damaged_index(tmp_path, model_name):
    idx = _damaged_index(tmp_path, model_name, _garbage_chunks)
    out = rag("index", str(NHS_CORPUS), "--index", str(idx), "--rebuild", "--json",
              home=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert len(json.loads(out.stdout)["added"]) == 2
    assert leftovers(idx) == []
    disk.load(idx, embedding_model=model_name)


def _shift_offsets(v: Path) -> None:
    """Valid JSON, consistent counts, but every span moved: the worst kind of damage."""
    rows = [json.loads(line) for line in (v / "chunks.jsonl").read_text().splitlines()]
    for r in rows:
        r["start"] += 7
        r["end"] += 7
        r["sentences"] = [[a + 7, b + 7] for a, b in r["sentences"]]
    (v / "chunks.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_shifted_spans_are_refused_not_served(tmp_path):
    idx = tmp_path / "idx"
    build_index(NHS_CORPUS, idx, HashEmbedder())
    _shift_offsets(disk.current_version(idx))
    with pytest.raises(disk.IndexCorruptError, match="--rebuild"):
        disk.load(idx)
