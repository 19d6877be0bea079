"""How soon the web UI shows the sources, the first token and the answer after Enter, and
what a second user sees while the model answers the first.

    python scripts/ui_timing.py                        # 5 NHS questions, default model
    python scripts/ui_timing.py --questions 10 --out /tmp/ui-timing

Starts `rag serve` (own RAG_HOME, the bundled corpus) and drives a headless Chromium
(/usr/bin/chromium, Playwright). For each question the page records, with
``performance.now()``, the Enter key, the first sources panel, the first model token and
the final answer. Then two pages ask at the same moment: the one that waits must show
its place in line; the time until it does is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
        "--disable-dev-shm-usage"]

WATCH = """(n) => {
  window.__t = {};
  const chat = document.querySelector('#chat');
  const obs = new MutationObserver(() => {
    const turn = chat.querySelectorAll('.turn')[n];
    if (!turn) return;
    const now = performance.now();
    if (!window.__t.sources && turn.querySelector('.sources .source')) window.__t.sources = now;
    const p = turn.querySelector('.streaming .partial');
    if (!window.__t.token && p && p.textContent) window.__t.token = now;
    if (!window.__t.position && turn.querySelector('.streaming.waiting')) window.__t.position = now;
    if (!window.__t.final && turn.querySelector('.final, .refusal, .error')) {
      window.__t.final = now; obs.disconnect(); }
  });
  obs.observe(chat, {childList: true, subtree: true, characterData: true});
  document.querySelector('#question textarea').addEventListener('keydown',
    e => { if (e.key === 'Enter') window.__t.enter = performance.now(); }, {once: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ask(page, n: int, question: str) -> dict:
    page.evaluate(WATCH, n)
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function("window.__t.final", timeout=600_000, polling=50)
    t = page.evaluate("window.__t")
    return {k: round((t[k] - t["enter"]) / 1000, 3) for k in ("sources", "token", "position",
                                                              "final") if k in t}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=5)
    ap.add_argument("--model", default="qwen2.5-coder-1.5b")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from playwright.sync_api import sync_playwright

    from eval.gold import GOLD_DEFAULT, load_gold

    qs = [g.question for g in load_gold(GOLD_DEFAULT)][:args.questions]
    home = Path(tempfile.mkdtemp(prefix="rag-ui-timing-"))
    port = free_port()
    env = dict(os.environ, RAG_HOME=str(home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1",
               GRADIO_ANALYTICS_ENABLED="False")
    subprocess.run([sys.executable, "-m", "cli", "index"], env=env, cwd=REPO, check=True,
                   capture_output=True)
    server = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port),
                               "--model", args.model], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    result: dict = {"model": args.model, "questions": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
            pages = [browser.new_context().new_page() for _ in range(2)]
            url = f"http://127.0.0.1:{port}/"
            for page in pages:
                for _ in range(600):
                    try:
                        page.goto(url, wait_until="domcontentloaded")
                        break
                    except Exception:  # noqa: BLE001 - not up yet
                        time.sleep(1)
                page.wait_for_function(
                    "document.querySelector('#status')?.innerText.includes('Ready')",
                    timeout=600_000)
            for i, q in enumerate(qs):
                result["questions"].append(ask(pages[0], i, q))
                print(f"{q}: {result['questions'][-1]}", file=sys.stderr)
            # two users at once: the second waits while the first is answered
            n = len(qs)
            for page in pages:
                page.evaluate(WATCH, n if page is pages[0] else 0)
            for page, q in zip(pages, qs[:2], strict=True):
                page.fill("#question textarea", q)
            pages[0].press("#question textarea", "Enter")
            pages[1].press("#question textarea", "Enter")
            for page in pages:
                page.wait_for_function("window.__t.final", timeout=600_000, polling=50)
            both = [page.evaluate("window.__t") for page in pages]
            result["two_users"] = [{k: round((t[k] - t["enter"]) / 1000, 3)
                                    for k in ("sources", "position", "token", "final")
                                    if k in t} for t in both]
            browser.close()
    finally:
        server.terminate()
        server.wait(30)
    rows = result["questions"]
    result["p50"] = {k: round(statistics.median(r[k] for r in rows if k in r), 3)
                     for k in ("sources", "token", "final") if any(k in r for r in rows)}
    result["loadavg"] = os.getloadavg()
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "ui_timing.json").write_text(text)


if __name__ == "__main__":
    main()
