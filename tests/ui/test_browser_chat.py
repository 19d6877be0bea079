"""A conversation in a real Chromium (fake models over the synthetic corpus): the second
turn is a follow-up, answered as its standalone question, which the page shows; both
turns' citations open their passages; a new conversation forgets the first."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.conftest import KARROW_CORPUS
from tests.fakes import ChatGenerator, HashEmbedder, always_answer
from tests.ui.conftest import ask, open_ui, serve

pytestmark = pytest.mark.browser

FIRST = "Who built the lighthouse at Karrow Point?"
FOLLOW = "How tall is its tower?"
STANDALONE = "How tall is the tower of the lighthouse at Karrow Point?"


@pytest.fixture(scope="module")
def chat_ui(tmp_path_factory):
    gen = ChatGenerator(["The lighthouse was built in 1872 by the engineer Alice Brennan [1].",
                         "The tower stands 31 metres tall [1]."], STANDALONE)
    pipe = Pipeline(Settings(corpus=KARROW_CORPUS, index=tmp_path_factory.mktemp("idx")),
                    embedder=HashEmbedder(), generator=gen, decision=always_answer())
    with serve(pipe) as url:
        yield url, pipe, gen


def opened(page) -> str:
    page.wait_for_selector("#doc-view mark")
    return page.locator("#doc-view mark").evaluate("m => m.textContent")


def test_a_follow_up_cites_the_right_passage_and_shows_what_was_searched(chat_ui, page,
                                                                         artifacts):
    url, pipe, gen = chat_ui
    open_ui(page, url)
    ask(page, FIRST)
    ask(page, FOLLOW)
    first, second = page.locator("#chat .turn").nth(0), page.locator("#chat .turn").nth(1)
    assert first.locator(".searching").count() == 0
    searched = second.locator(".searching").inner_text()
    assert searched.startswith("Searching for:") and STANDALONE in searched
    assert FIRST in gen.rewrites[-1][1]["content"]  # the session's conversation was sent
    second.locator("a.cite").first.click()
    text = opened(page)
    assert "31 metres" in text and text in pipe.live.document_text("lighthouse.txt")
    first.locator("a.cite").first.click()  # the earlier turn's citation still opens
    page.wait_for_function("document.querySelector('#doc-view mark')?.textContent"
                           ".includes('Alice Brennan')")
    page.screenshot(path=str(artifacts / "follow-up.png"))

    page.click("#reset")
    page.wait_for_function("document.querySelectorAll('#chat .turn').length == 0")
    before = len(gen.rewrites)
    ask(page, FOLLOW)  # a new conversation: nothing to follow up on, so no rewrite
    assert len(gen.rewrites) == before
    assert page.locator("#chat .turn .searching").count() == 0
