"""Time to the first token of real verified prompts under llama.cpp settings, side by side.

The prompts are the ones the pipeline builds for NHS gold questions (retrieval and evidence
selection run once, here). Each setting then runs in its own process (thread counts and
OpenMP's wait policy are fixed when llama.cpp loads): it loads the model, puts the fixed
prompt prefix in the KV cache (as the pipeline does), and for every prompt measures the
time to the first token and the decoding speed after it. Settings take turns, round after
round, so each sees the same machine; the table gives medians over rounds and prompts.

    python scripts/first_token.py                                  # threads and wait policy
    python scripts/first_token.py --config '{"threads": 2}' \\
        --config '{"threads": 2, "model": "/tmp/qwen-q4_0.gguf"}'    # a re-quantized model
    python scripts/first_token.py --requantize q4_0 --out /tmp/ft   # adds that model

A config takes: model (packaged name or .gguf), threads, threads_batch, n_batch, n_ubatch,
flash_attn, env (extra environment, e.g. {"OMP_WAIT_POLICY": "PASSIVE"}), torch_first
(default true: torch is imported and used first, as in the pipeline, where the embedding
model loads before the generator; torch and llama.cpp then share torch's OpenMP runtime),
label.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# the generator sets OMP_WAIT_POLICY=PASSIVE unless the environment sets it; "" gives
# OpenMP's own default (spin, then sleep)
DEFAULT_CONFIGS = [
    {"label": "2 threads, OpenMP default wait (spinning)", "threads": 2,
     "env": {"OMP_WAIT_POLICY": ""}},
    {"label": "2 threads, passive wait (the default here)", "threads": 2},
    {"label": "1 thread", "threads": 1},
]


def build_prompts(n: int, model: str) -> list[list[dict]]:
    """The verified prompts of the first ``n`` NHS gold questions."""
    from eval.gold import GOLD_DEFAULT, load_gold
    from rag.config import Settings
    from rag.generate.prompts import verified_messages
    from rag.pipeline import Pipeline

    pipe = Pipeline(Settings(model=model, worker=False))
    pipe.index()
    out = []
    for item in load_gold(GOLD_DEFAULT)[:n]:
        passages = pipe.retriever.retrieve(item.question, pipe.settings.k)
        _, evidence = pipe.evidence_for(item.question, passages)
        out.append(verified_messages(item.question, evidence))
    return out


def child(config: dict, prompts_file: Path, decode_tokens: int) -> dict:
    """One setting, in this process: first-token seconds and tokens/s per prompt."""
    from rag.answer.models import prompt_samples
    from rag.generate.local import LlamaCppGenerator
    from rag.generate.models import resolve_model

    prompts = json.loads(prompts_file.read_text())
    if config.get("torch_first", True):  # as in the pipeline: the embedder loads first
        import torch

        torch.ones(256, 256) @ torch.ones(256, 256)
    _, path = resolve_model(config.get("model", "qwen2.5-coder-1.5b"))
    t = time.perf_counter()
    threads = config.get("threads") or os.cpu_count()
    options = {"n_threads_batch": config.get("threads_batch") or threads}
    options.update({k: config[k] for k in ("n_batch", "n_ubatch", "flash_attn") if k in config})
    gen = LlamaCppGenerator(path, n_ctx=4096, n_threads=threads, llama_options=options)
    gen.warm_up()
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    prefix = gen.warm_prefix(prompt_samples("verified"))
    prefix_s = time.perf_counter() - t
    first, rate, new_tokens = [], [], []
    for messages in prompts:
        tokens = gen.prompt_tokens(messages)
        new_tokens.append(len(tokens) - prefix)
        t0 = time.perf_counter()
        stamps = [time.perf_counter() for _ in gen.stream(messages, max_tokens=decode_tokens)]
        if stamps:
            first.append(stamps[0] - t0)
        if len(stamps) > 1:
            rate.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {"first_token_s": first, "tokens_per_s": rate, "new_tokens": new_tokens,
            "prefix_tokens": prefix, "prefix_s": prefix_s, "load_s": load_s,
            "loadavg": os.getloadavg()[0]}


def requantize(kind: str, out_dir: Path) -> Path:
    """The packaged default model re-quantized to ``kind`` (q4_0, q8_0, iq4_nl)."""
    import llama_cpp

    from rag.generate.models import packaged_model_path

    ftype = {"q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
             "iq4_nl": llama_cpp.LLAMA_FTYPE_MOSTLY_IQ4_NL}[kind]
    src = packaged_model_path("qwen2.5-coder-1.5b")
    dst = out_dir / f"{src.stem}-{kind}.gguf"
    if not dst.exists():
        params = llama_cpp.llama_model_quantize_default_params()
        params.ftype = ftype
        params.allow_requantize = True
        if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params) != 0:
            raise SystemExit(f"quantizing to {kind} failed")
    return dst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", default=[], help="a JSON config (repeat)")
    ap.add_argument("--questions", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--decode-tokens", type=int, default=16)
    ap.add_argument("--requantize", choices=["q4_0", "q8_0", "iq4_nl"], action="append",
                    default=[], help="also time the default model re-quantized this way")
    ap.add_argument("--out", type=Path, default=None, help="write first_token.json here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--prompts", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.prompts, args.decode_tokens)))
        return
    configs = [json.loads(c) for c in args.config] or list(DEFAULT_CONFIGS)
    work = Path(tempfile.mkdtemp(prefix="first-token-"))
    for kind in args.requantize:
        configs.append({"label": f"2 threads, re-quantized {kind}", "threads": 2,
                        "model": str(requantize(kind, args.out or work))})
    prompts_file = work / "prompts.json"
    prompts_file.write_text(json.dumps(build_prompts(args.questions, "qwen2.5-coder-1.5b")))
    runs: dict[int, list[dict]] = {i: [] for i in range(len(configs))}
    for r in range(args.rounds):
        for i, cfg in enumerate(configs):
            env = dict(os.environ, **cfg.get("env", {}))
            out = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg),
                                  "--prompts", str(prompts_file),
                                  "--decode-tokens", str(args.decode_tokens)],
                                 capture_output=True, text=True, env=env, check=True)
            runs[i].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"round {r + 1} {cfg.get('label', cfg)}: first token p50 "
                  f"{statistics.median(runs[i][-1]['first_token_s']):.2f} s "
                  f"(load average {runs[i][-1]['loadavg']:.1f})", file=sys.stderr)
    rows = []
    for i, cfg in enumerate(configs):
        first = [x for run in runs[i] for x in run["first_token_s"]]
        rate = [x for run in runs[i] for x in run["tokens_per_s"]]
        rows.append({"config": cfg, "first_token_p50_s": round(statistics.median(first), 3),
                     "tokens_per_s_p50": round(statistics.median(rate), 2) if rate else None,
                     "new_tokens_p50": statistics.median(runs[i][0]["new_tokens"]),
                     "prefix_tokens": runs[i][0]["prefix_tokens"],
                     "load_s_p50": round(statistics.median(r["load_s"] for r in runs[i]), 2),
                     "loadavg": [r["loadavg"] for r in runs[i]]})
    print("| setting | first token p50 | decode tokens/s | new prompt tokens p50 | "
          "model load |\n|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['config'].get('label', row['config'])} | {row['first_token_p50_s']} s "
              f"| {row['tokens_per_s_p50']} | {row['new_tokens_p50']} | {row['load_s_p50']} s |")
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "first_token.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
