"""Many clients at once against `rag api` with the real model: nothing fails but the
intended 503s, and every client that waits is told its place in line.

    python scripts/load_api.py                          # 20 clients, 2 minutes, default model
    python scripts/load_api.py --clients 6 --seconds 60 --model smollm2-135m
    python scripts/load_api.py --queue-limit 8 --out /tmp/load

Starts `rag api` on a free loopback port (its own RAG_HOME, the bundled corpus indexed
first) and runs the clients in threads. Each client asks the NHS gold questions in turn
through the streamed chat endpoint, reads the whole event stream, and on HTTP 503 waits
the ``Retry-After`` seconds before asking again. Reported: answered, intended 503s (with a
Retry-After), anything else (errors), latency and time to the sources (p50/p95), and of
the answers that waited in line, how many saw a ``queue_position`` chunk first.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q / 100 * len(values)))], 3)


def one_request(client: httpx.Client, url: str, question: str) -> dict:
    """One streamed chat completion; what happened, with timings."""
    t0 = time.perf_counter()
    body = {"messages": [{"role": "user", "content": question}], "stream": True}
    out: dict = {"question": question, "positions": []}
    with client.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
        out["status"] = r.status_code
        if r.status_code != 200:
            r.read()
            out["retry_after"] = r.headers.get("Retry-After")
            out["detail"] = r.text[:200]
            out["latency_s"] = time.perf_counter() - t0
            return out
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            now = time.perf_counter() - t0
            if "error" in chunk:
                out["error"] = chunk["error"]
            elif "sources" in chunk and "sources_s" not in out:
                out["sources_s"] = now
            elif "queue_position" in chunk:
                out["positions"].append(chunk["queue_position"])
            elif chunk["choices"][0].get("finish_reason") == "stop":
                out["refused"] = chunk.get("refused")
                out["citations"] = len(chunk.get("citations") or [])
    out["latency_s"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--queue-limit", type=int, default=None,
                    help="RAG_QUEUE_LIMIT for the server [default: the setting's]")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from eval.gold import GOLD_DEFAULT, load_gold

    questions = [g.question for g in load_gold(GOLD_DEFAULT)]
    home = Path(tempfile.mkdtemp(prefix="rag-load-"))
    env = dict(os.environ, RAG_HOME=str(home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    if args.queue_limit is not None:
        env["RAG_QUEUE_LIMIT"] = str(args.queue_limit)
    subprocess.run([sys.executable, "-m", "cli", "index"], env=env, cwd=REPO, check=True,
                   capture_output=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(home / "api.log", "wb")  # noqa: SIM115 - closed at the end
    server = subprocess.Popen([sys.executable, "-m", "cli", "api", "--port", str(port),
                               "--model", args.model], env=env, cwd=REPO, stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise SystemExit("rag api did not start")
        health = httpx.get(f"{url}/v1/health").json()
        results: list[dict] = []
        lock = threading.Lock()
        start = threading.Barrier(args.clients)
        stop_at = [0.0]

        def client(n: int) -> None:
            i = n
            with httpx.Client(timeout=httpx.Timeout(600, connect=10)) as c:
                start.wait()
                while time.monotonic() < stop_at[0]:
                    q = questions[i % len(questions)]
                    i += 1
                    try:
                        res = one_request(c, url, q)
                    except httpx.HTTPError as exc:
                        res = {"status": None, "exception": f"{type(exc).__name__}: {exc}"}
                    res["client"] = n
                    with lock:
                        results.append(res)
                    if res.get("status") == 503 and res.get("retry_after"):
                        time.sleep(float(res["retry_after"]))

        stop_at[0] = time.monotonic() + args.seconds
        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(n,), daemon=True)
                   for n in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    answered = [r for r in results if r.get("status") == 200 and "error" not in r]
    busy = [r for r in results if r.get("status") == 503 and r.get("retry_after")]
    errors = [r for r in results if r not in answered and r not in busy]
    summary = {
        "clients": args.clients, "seconds": args.seconds, "wall_s": round(wall, 1),
        "model": args.model, "queue_limit": health["queue"]["limit"],
        "requests": len(results), "answered": len(answered), "busy_503": len(busy),
        "errors": len(errors), "error_examples": errors[:3],
        "latency_p50_s": pct([r["latency_s"] for r in answered], 50),
        "latency_p95_s": pct([r["latency_s"] for r in answered], 95),
        "sources_p50_s": pct([r["sources_s"] for r in answered if "sources_s" in r], 50),
        "answered_with_a_position_first": sum(1 for r in answered if r["positions"]),
        "first_positions_seen": sorted({r["positions"][0] for r in answered if r["positions"]}),
        "retry_after_s": sorted({int(r["retry_after"]) for r in busy}),
        "refused": sum(1 for r in answered if r.get("refused")),
        "answers_per_minute": round(len(answered) / wall * 60, 1),
        "loadavg": os.getloadavg(),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "load_api.json").write_text(text)
        (args.out / "load_api_requests.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in results))
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
