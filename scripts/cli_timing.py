"""How long `rag ask` takes from a terminal, and where a cold process spends its time.

    python scripts/cli_timing.py                      # both parts, 5 questions each
    python scripts/cli_timing.py --part breakdown     # one cold process, stage by stage
    python scripts/cli_timing.py --part wall --questions 8 --out /tmp/cli-timing

``wall`` runs the real command (``python -m cli ask --stream``) as a user does, one
process per question, and times from start to exit, to the "Sources:" line and to the
first model token on stderr:

- ``--no-worker``: every question in a fresh process (models loaded each time);
- with the worker: the worker is stopped first, so the first question starts it and loads
  the models; the others find it warm.

``breakdown`` times, in one fresh process, each stage of a cold `rag ask --no-worker`:
importing the CLI, importing sentence-transformers (torch), loading the embedding model and
the index, loading llama.cpp and the model, putting the fixed prompt prefix in the KV cache
(processed, and loaded from the saved prompt cache), then one question (retrieval,
evidence, first token, total). Both parts use a private RAG_HOME under --home (the index
of the bundled corpus is built there once) and the default model unless --model.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

BREAKDOWN = r'''
import json, sys, time
T0 = time.perf_counter()
out = {}
def mark(name, since):
    out[name] = round(time.perf_counter() - since, 3)
    return time.perf_counter()
t = T0
import cli.main  # the whole command, as `rag` imports it
t = mark("import_cli_s", t)
from rag.config import Settings
from rag.pipeline import Pipeline
import sentence_transformers
t = mark("import_sentence_transformers_s", t)
model, question, cache = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
pipe = Pipeline(Settings(model=model, worker=False, prompt_cache=cache))
pipe.embedder.warm_up()
t = mark("embedder_load_s", t)
_ = pipe.retriever
t = mark("index_load_s", t)
import llama_cpp
t = mark("import_llama_cpp_s", t)
gen = pipe.generator
gen.warm_up()
t = mark("llama_load_s", t)
pipe.models.prime(gen, "verified")
t = mark("prompt_prefix_s", t)
out["prompt_prefix_tokens"] = len(gen._prefixes[0]) if getattr(gen, "_prefixes", None) else 0
ans = pipe.ask(question)
t = mark("first_question_s", t)
out["question_timings"] = {k: round(v, 3) for k, v in ans.timings.items()}
out["process_total_s"] = round(time.perf_counter() - T0, 3)
print("BREAKDOWN " + json.dumps(out))
'''


def env_for(home: Path) -> dict[str, str]:
    return dict(os.environ, RAG_HOME=str(home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")


def questions(n: int) -> list[str]:
    sys.path.insert(0, str(REPO))
    from eval.gold import GOLD_DEFAULT, load_gold

    return [item.question for item in load_gold(GOLD_DEFAULT)[:n]]


def ensure_index(home: Path) -> None:
    subprocess.run([sys.executable, "-m", "cli", "index"], env=env_for(home), cwd=REPO,
                   check=True, capture_output=True)


def timed_ask(home: Path, question: str, model: str, worker: bool) -> dict:
    """One `rag ask --stream` process: seconds to the sources, the first token, the end."""
    args = [sys.executable, "-m", "cli", "ask", question, "--stream", "--model", model]
    if not worker:
        args.append("--no-worker")
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, env=env_for(home), cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    sources = first = None
    seen_sources_block = False
    buf = b""
    while True:
        ch = proc.stderr.read(1)
        if not ch:
            break
        now = time.perf_counter() - t0
        buf += ch
        if sources is None and b"Sources:" in buf:
            sources = now
        if sources is not None and not seen_sources_block and buf.endswith(b"\n\n"):
            seen_sources_block = True  # the sources block ends with a blank line
            mark = len(buf)
        elif seen_sources_block and first is None and len(buf) > mark and not \
                buf[mark:].startswith(b"(the model is busy"):
            first = now
    proc.wait()
    total = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"rag ask failed: {proc.stdout.read().decode()} {buf.decode()}")
    return {"total_s": round(total, 3), "sources_s": round(sources, 3) if sources else None,
            "first_token_s": round(first, 3) if first else None}


def part_wall(home: Path, qs: list[str], model: str) -> dict:
    subprocess.run([sys.executable, "-m", "cli", "worker", "stop"], env=env_for(home),
                   cwd=REPO, capture_output=True)
    runs: dict[str, list[dict]] = {"no_worker": [], "worker": []}
    for q in qs:  # every question in a fresh, model-loading process
        runs["no_worker"].append(timed_ask(home, q, model, worker=False))
        print(f"no worker: {runs['no_worker'][-1]}", file=sys.stderr)
    for q in qs:  # the first starts the worker
        runs["worker"].append(timed_ask(home, q, model, worker=True))
        print(f"worker: {runs['worker'][-1]}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "cli", "worker", "stop"], env=env_for(home),
                   cwd=REPO, capture_output=True)

    def summary(rows: list[dict]) -> dict:
        return {k: round(statistics.median(r[k] for r in rows), 3)
                for k in ("total_s", "sources_s", "first_token_s") if all(r[k] for r in rows)}

    return {"no_worker": runs["no_worker"], "worker": runs["worker"],
            "no_worker_p50": summary(runs["no_worker"]),
            "worker_first": runs["worker"][0],
            "worker_later_p50": summary(runs["worker"][1:]) if len(qs) > 1 else None}


def part_breakdown(home: Path, question: str, model: str) -> dict:
    cache = home / "cache" / "prompts"
    out = {}
    for label, use_cache, clear in (("prompt cache empty", "1", True),
                                    ("prompt cache saved", "1", False),
                                    ("no prompt cache", "0", False)):
        if clear:
            shutil.rmtree(cache, ignore_errors=True)
        proc = subprocess.run([sys.executable, "-c", BREAKDOWN, model, question, use_cache],
                              env=env_for(home), cwd=REPO, capture_output=True, text=True)
        line = [x for x in proc.stdout.splitlines() if x.startswith("BREAKDOWN ")]
        if proc.returncode != 0 or not line:
            raise SystemExit(proc.stderr[-2000:])
        out[label] = json.loads(line[0][len("BREAKDOWN "):])
        print(f"{label}: {out[label]}", file=sys.stderr)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["wall", "breakdown", "both"], default="both")
    ap.add_argument("--questions", type=int, default=5)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--home", type=Path, default=None,
                    help="RAG_HOME for the runs [default: a new temporary folder]")
    ap.add_argument("--out", type=Path, default=None, help="write cli_timing.json here")
    args = ap.parse_args()
    home = args.home or Path(tempfile.mkdtemp(prefix="rag-cli-timing-"))
    ensure_index(home)
    qs = questions(args.questions)
    result: dict = {"model": args.model, "cpus": os.cpu_count(),
                    "loadavg_start": os.getloadavg()}
    if args.part in ("breakdown", "both"):
        result["breakdown"] = part_breakdown(home, qs[0], args.model)
    if args.part in ("wall", "both"):
        result["wall"] = part_wall(home, qs, args.model)
    result["loadavg_end"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "cli_timing.json").write_text(text)


if __name__ == "__main__":
    main()
