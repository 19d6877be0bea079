"""Fixtures for the UI tests: an in-process Gradio server and a headless Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import NHS_CORPUS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu",
                 "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serve(pipeline) -> Iterator[str]:
    """Run the UI over ``pipeline`` in this process; yields its URL."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from ui.app import build_app, launch_options

    demo = build_app(pipeline)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port,
                quiet=True, **launch_options())
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def copy_corpus(dst: Path) -> Path:
    shutil.copytree(NHS_CORPUS, dst)
    return dst


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Screenshots go to $RAG_TEST_ARTIFACTS or a temporary folder, never the repo."""
    path = Path(os.environ.get("RAG_TEST_ARTIFACTS") or tempfile.mkdtemp(prefix="rag-ui-"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = ctx.new_page()
    pg.dialogs = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    yield pg
    ctx.close()


def open_ui(page, url: str, timeout: float = 120_000) -> None:
    """Load the page and wait until the index and models are loaded."""
    page.goto(url, wait_until="domcontentloaded")
    page.wait_for_selector("#question textarea", timeout=60_000)
    page.wait_for_function("document.querySelector('#status')?.innerText.includes('Ready')",
                           timeout=timeout)


def ask(page, question: str, timeout: float = 120_000) -> None:
    """Type a question, press Enter, wait for the final answer or refusal."""
    n = page.locator("#chat .turn").count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    page.wait_for_function(
        f"document.querySelectorAll('#chat .turn').length > {n} && "
        f"document.querySelectorAll('#chat .turn')[{n}]"
        ".querySelector('.final, .refusal, .error')", timeout=timeout)
