"""Processes the pgvector tests start: a reader that searches in a loop and checks that
every answer comes from one version of the index, and an indexer that stops inside its
write transaction (to be killed there).

    python -m tests.index.stores.pg_workers read URL DEADLINE_S STOP_FILE OUT_JSON
    python -m tests.index.stores.pg_workers index-and-hang URL CORPUS MARKER_FILE
"""

from __future__ import annotations

import json
import random
import re
import sys
import time
from pathlib import Path

from index.stores.pg_builder import build_pg_index
from index.stores.pgvector import PgIndex
from rag.retrieve.retrievers import PgRetriever
from tests.fakes import HashEmbedder

GENERATIONS = ["zorblat", "quimbly", "frandel", "mopsket", "trivane", "glimber"]
_GEN = re.compile("|".join(GENERATIONS))
_GOODS = ("lamp oil", "salt", "rope", "tea", "copper nails", "wool", "barley", "tar",
          "linen", "candles", "iron", "cider", "flour", "soap", "timber", "glass")
_PLACES = ("north", "south", "east", "west", "old", "new", "inner", "outer")


def write_generation(corpus: Path, g: int, n_docs: int = 5) -> None:
    """Version ``g`` of a corpus: every document names generation ``g``'s word; one extra
    document per generation replaces the previous generation's."""
    corpus.mkdir(parents=True, exist_ok=True)
    word = GENERATIONS[g]
    for old in corpus.glob("extra_*.txt"):
        old.unlink()
    rng = random.Random(g)
    for i in range(n_docs):
        body = " ".join(f"Ledger {i} entry {j} records the {word} shipment of "
                        f"{' '.join(rng.sample(_GOODS, 2 + (i + j) % 3))}, crate "
                        f"{j * 7 + i}, for the {rng.choice(_PLACES)} {word} harbour."
                        for j in range(12))
        (corpus / f"d{i}.txt").write_text(f"Ledger {i}\n\n{body}\n", encoding="utf-8")
    (corpus / f"extra_{word}.txt").write_text(
        f"Extra note\n\nThe {word} harbour keeps its lamp oil in crates.\n", encoding="utf-8")


def read(url: str, seconds: float, stop_file: Path, out: Path) -> None:
    index = PgIndex(url, pool_size=2)
    retriever = PgRetriever(index, HashEmbedder(), mode="hybrid")
    seen: set[str] = set()
    queries, errors = 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop_file.exists():
        try:
            passages = retriever.retrieve("lamp oil shipment harbour crate ledger "
                                          + " ".join(GENERATIONS), k=10)
            gens = {m for p in passages for m in _GEN.findall(p.text)}
            if len(gens) != 1:
                errors.append(f"passages from versions {sorted(gens)}")
            docs = [d["id"] for d in index.documents()]
            extras = [d for d in docs if d.startswith("extra_")]
            if len(extras) != 1 or len(docs) != 6:
                errors.append(f"documents {docs}")
            seen |= gens
            queries += 1
        except Exception as exc:  # noqa: BLE001 - report every failure to the test
            errors.append(f"{type(exc).__name__}: {exc}")
    index.close()
    out.write_text(json.dumps({"queries": queries, "seen": sorted(seen), "errors": errors}),
                   encoding="utf-8")


def index_and_hang(url: str, corpus: Path, marker: Path) -> None:
    def hook(stage: str) -> None:
        if stage == "added":  # everything written, not committed
            marker.write_text("in transaction", encoding="utf-8")
            time.sleep(120)

    build_pg_index(corpus, PgIndex(url), HashEmbedder(), crash_hook=hook)


if __name__ == "__main__":
    cmd, *args = sys.argv[1:]
    if cmd == "read":
        read(args[0], float(args[1]), Path(args[2]), Path(args[3]))
    elif cmd == "index-and-hang":
        index_and_hang(args[0], Path(args[1]), Path(args[2]))
    else:
        raise SystemExit(f"unknown command {cmd}")
