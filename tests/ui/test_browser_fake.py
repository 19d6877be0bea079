"""Browser tests over fake models: escaping, refusals, the document viewer."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.fakes import HashEmbedder, ScriptedGenerator
from tests.ui.conftest import ask, open_ui, serve

pytestmark = pytest.mark.browser

EVIL = ("Evil festival notes\n\n"
        "The lantern festival <script>alert(1)</script> was cancelled by the council.\n"
        "Organisers said <img src=x onerror=alert(2)> the lantern festival returns in May.\n")


class OnTopicGenerator(ScriptedGenerator):
    """Replies with its script to questions about the festival and declines the rest,
    reporting a first-step refusal probability as a model would."""

    def __init__(self, script: str) -> None:
        super().__init__(script)
        self.script = script

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        asked = messages[-1]["content"].rsplit("Question:", 1)[-1].lower()
        self.reply, self.p_refusal = ((self.script, 0.05) if "festival" in asked else
                                      ("NOT IN DOCUMENTS", 0.95))
        yield from super().stream(messages, max_tokens, temperature, stop, probe)


@pytest.fixture(scope="module")
def fake_ui(tmp_path_factory):
    root = tmp_path_factory.mktemp("fake-ui")
    (root / "corpus").mkdir()
    (root / "corpus" / "evil.txt").write_text(EVIL, encoding="utf-8")
    gen = OnTopicGenerator("The lantern festival <script>alert(3)</script> was cancelled "
                           "by the council [1].")
    pipe = Pipeline(Settings(corpus=root / "corpus", index=root / "index"),
                    embedder=HashEmbedder(), generator=gen)
    with serve(pipe) as url:
        yield url, pipe


def test_script_in_documents_renders_as_text(fake_ui, page, artifacts):
    url, pipe = fake_ui
    open_ui(page, url)
    ask(page, "Was the lantern festival cancelled by the council?")
    turn = page.locator("#chat .turn").last
    assert turn.locator(".final").count() == 1
    page.locator("#chat .source").first.click()
    page.wait_for_selector("#doc-view mark")
    page.wait_for_timeout(500)
    assert page.dialogs == []
    for sel in ("#chat script", "#chat img", "#doc-view script", "#doc-view img"):
        assert page.locator(sel).count() == 0, sel
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.inner_html("#doc-view")
    assert "<script>alert(1)</script>" in page.inner_text("#doc-view")
    assert "&lt;script&gt;" in page.inner_html("#chat")
    mark = page.locator("#doc-view mark")
    doc, start, end = (mark.get_attribute(a) for a in ("data-doc", "data-start", "data-end"))
    assert doc == "evil.txt"
    assert mark.evaluate("m => m.textContent") == pipe.live.document_text(doc)[int(start):int(end)]
    page.screenshot(path=str(artifacts / "escaping.png"))


def test_refusal_is_styled_and_lists_closest_passages(fake_ui, page, artifacts):
    url, pipe = fake_ui
    open_ui(page, url)
    ask(page, "What is the airspeed velocity of an unladen swallow?")
    turn = page.locator("#chat .turn").last
    assert turn.locator(".refusal").count() == 1
    assert "Closest passages" in turn.inner_text()
    turn.locator(".source").first.click()
    page.wait_for_selector("#doc-view mark")
    text = page.locator("#doc-view mark").evaluate("m => m.textContent")
    assert text and text in pipe.live.document_text("evil.txt")
    page.screenshot(path=str(artifacts / "refusal.png"))


def test_settings_apply_changes_k_and_temperature(fake_ui, page):
    url, pipe = fake_ui
    open_ui(page, url)
    page.get_by_role("tab", name="Settings").click()
    for sel, value in (("#top-k", "3"), ("#temperature", "0.5")):
        box = page.locator(f"{sel} input[type=number]")
        box.fill(value)
        box.press("Enter")
    page.click("#apply")
    page.wait_for_function("document.querySelector('#info')?.innerText.includes('k=3')")
    assert pipe.settings.k == 3 and pipe.settings.temperature == 0.5
    assert "documents" in page.inner_text("#info") and "chunks" in page.inner_text("#info")


def test_upload_rejects_escape_and_remove_reindexes(fake_ui, page, tmp_path):
    url, pipe = fake_ui
    corpus = pipe.settings.corpus
    src = tmp_path / "notes.md"
    src.write_text("# Quokka notes\n\nQuokkas live on Rottnest Island.\n")
    open_ui(page, url)
    page.get_by_role("tab", name="Documents").click()
    page.locator("#upload input[type=file]").set_input_files(str(src))
    page.wait_for_function("document.querySelector('#doc-msg')?.innerText.includes('Indexed')")
    new = [d["id"] for d in pipe.store.documents() if d["id"].startswith("notes_")]
    assert len(new) == 1 and (corpus / new[0]).is_file()
    page.locator("#remove-choice input").click()
    page.get_by_role("option", name=new[0]).click()
    page.click("#remove")
    page.wait_for_function("document.querySelector('#doc-msg')?.innerText.includes('Removed')")
    assert not (corpus / new[0]).exists()
    assert [d["id"] for d in pipe.store.documents()] == ["evil.txt"]
    assert new[0] not in page.inner_text("#doc-table")
