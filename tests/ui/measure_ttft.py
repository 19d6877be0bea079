"""By hand: time to first token through the UI with the default model, and screenshots.

    .venv/bin/python -m tests.ui.measure_ttft [OUT_DIR]

Starts ``rag serve`` (default model) over a temporary copy of the bundled corpus, presses
Enter in a headless Chromium and times until the first streamed token is on the page.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, copy_corpus, free_port

FIRST_TOKEN = """() => {
  const chat = document.querySelector('#chat');
  const obs = new MutationObserver(() => {
    const p = chat.querySelector('.streaming .partial');
    if (p && p.textContent) { obs.disconnect(); window.__t1 = performance.now(); } });
  obs.observe(chat, {childList: true, subtree: true, characterData: true});
  document.querySelector('#question textarea').addEventListener('keydown',
    e => { if (e.key === 'Enter') window.__t0 = performance.now(); }, {once: true});
}"""


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="rag-ttft-"))
    corpus = copy_corpus(home / "nhs")
    port = free_port()
    env = {**os.environ, "RAG_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False"}
    server = subprocess.Popen([str(Path(sys.executable).parent / "rag"), "serve", "--corpus",
                               str(corpus), "--port", str(port)], env=env)
    try:
        with sync_playwright() as pw:
            b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = b.new_page(viewport={"width": 1400, "height": 900})
            t = time.time()
            for _ in range(120):
                try:
                    page.goto(f"http://127.0.0.1:{port}/", wait_until="domcontentloaded")
                    break
                except Exception:  # server not up yet
                    time.sleep(1)
            page.wait_for_function(
                "document.querySelector('#status')?.innerText.includes('Ready')",
                timeout=600_000)
            print(f"ready (index + models loaded) after {time.time() - t:.1f}s")
            page.fill("#question textarea", "Did the health department confirm the taskforce?")
            page.evaluate(FIRST_TOKEN)
            page.press("#question textarea", "Enter")
            page.wait_for_function("window.__t1", timeout=300_000, polling=50)
            ttft = page.evaluate("(window.__t1 - window.__t0) / 1000")
            print(f"time to first token through the UI: {ttft:.2f}s")
            page.wait_for_selector("#chat .final, #chat .refusal", timeout=300_000)
            print("pipeline timings shown under the answer:",
                  page.locator("#chat .turn .meta").first.inner_text())
            page.locator("#chat a.cite").first.click()
            page.wait_for_selector("#doc-view mark")
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / "chat-citation.png"))
            page.fill("#question textarea", "What is the boiling point of mercury?")
            page.press("#question textarea", "Enter")
            page.wait_for_function("document.querySelectorAll('#chat .turn').length == 2 && "
                                   "document.querySelectorAll('#chat .turn')[1]"
                                   ".querySelector('.final, .refusal')", timeout=300_000)
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "refusal.png"))
            page.get_by_role("tab", name="Documents").click()
            page.wait_for_timeout(500)
            page.screenshot(path=str(out / "documents.png"))
            b.close()
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="rag-shots-")))
