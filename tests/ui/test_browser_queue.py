"""In a real browser: the sources panel fills before the first token, and a user whose
question waits for the model sees their place in line (fake models; the generator is
held until the test lets it go)."""

from __future__ import annotations

import threading

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.fakes import HashEmbedder, ScriptedGenerator, always_answer
from tests.ui.conftest import open_ui, serve

pytestmark = pytest.mark.browser

DOCS = {"ferry.txt": "Ferry timetable\n\nThe ferry to the island leaves at noon every day. "
                     "Tickets cost four pounds.\n",
        "bus.txt": "Night buses\n\nThe night bus was cancelled by the council in May.\n"}
QUESTION = "When does the ferry to the island leave?"


class Gate(ScriptedGenerator):
    """Holds the model until ``open`` is set."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.open = threading.Event()
        self.calls = 0

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        self.calls += 1
        assert self.open.wait(60), "the test never let the model go"
        yield from super().stream(messages, max_tokens, temperature, stop)


def _send(page, question: str) -> None:
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")


def test_sources_first_and_waiting_users_see_their_place(browser, tmp_path, artifacts):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    gen = Gate("The ferry to the island leaves at noon every day [1].")
    pipe = Pipeline(Settings(corpus=corpus, index=tmp_path / "index"),
                    embedder=HashEmbedder(), generator=gen,
                    decision=always_answer())
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000})
                for _ in range(2)]
    try:
        with serve(pipe) as url:
            first, second = (c.new_page() for c in contexts)
            for page in (first, second):
                open_ui(page, url)
            _send(first, QUESTION)
            # the model is held: the sources are on the page, no token yet
            first.wait_for_selector("#chat .turn .streaming ~ .sources.retrieved .source",
                                    timeout=30_000)
            turn = first.locator("#chat .turn").last
            assert "ferry.txt" in turn.locator(".sources.retrieved").inner_text()
            assert turn.locator(".partial").inner_text() == ""
            _send(second, QUESTION)
            second.wait_for_function(
                "document.querySelector('#chat .turn .streaming.waiting .status')"
                "?.innerText.includes('number 1 in line')", timeout=30_000)
            assert second.locator("#chat .sources.retrieved .source").count() >= 1
            second.screenshot(path=str(artifacts / "queue-position.png"))
            # a source opens in the viewer while the answer is still pending
            second.locator("#chat .sources.retrieved .source").first.click()
            second.wait_for_selector("#doc-view mark", timeout=30_000)
            gen.open.set()
            for page in (first, second):
                page.wait_for_selector("#chat .turn .final", timeout=60_000)
                assert page.locator("#chat .sources.retrieved").count() == 0
                assert "[1]" in page.locator("#chat .turn .final").inner_text()
            assert gen.calls == 2 and pipe.queue.admitted == 0
    finally:
        gen.open.set()
        for c in contexts:
            c.close()
