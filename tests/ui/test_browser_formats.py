"""Office documents in the browser (fake models): a Word citation opens in the document
viewer at its exact span, a PDF citation shows its page, and the Documents tab takes a
.docx upload."""

from __future__ import annotations

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests import docfiles
from tests.fakes import HashEmbedder, ScriptedGenerator, always_answer
from tests.ui.conftest import ask, open_ui, serve

pytestmark = pytest.mark.browser

ORCHARD_Q = "How many quince trees did the Tarrow Valley orchard plant?"
DOME_Q = "What colour was the observatory dome repainted?"
REPLIES = {"quince": "The Tarrow Valley orchard planted 318 quince trees [1].",
           "dome": "The observatory dome was repainted green [1].",
           "pier": "The Karrow pier reopened in April [1]."}


class Replies(ScriptedGenerator):
    def __init__(self) -> None:
        super().__init__("NOT IN DOCUMENTS", cite_best=True, p_refusal=0.05)

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        asked = messages[-1]["content"].rsplit("Question:", 1)[-1]
        self.reply = next((r for k, r in REPLIES.items() if k in asked), "NOT IN DOCUMENTS")
        yield from super().stream(messages, max_tokens, temperature, stop, probe)


@pytest.fixture(scope="module")
def office_ui(tmp_path_factory):
    root = tmp_path_factory.mktemp("office-ui")
    corpus = root / "corpus"
    corpus.mkdir()
    docfiles.write_docx(corpus / "orchard.docx", [
        ("heading", "Orchard report"), "Volunteers met on Saturdays <b>all year</b>.",
        "The Tarrow Valley orchard planted 318 quince trees in 2019.",
        ("table", [["Fruit", "Rows"], ["Quince", "12"]])], title="Orchard report")
    docfiles.write_pdf(corpus / "dome.pdf", [["Observatory report."], ["Visitors rose."],
                                             ["The observatory dome was repainted green."]])
    pipe = Pipeline(Settings(corpus=corpus, index=root / "index"), embedder=HashEmbedder(),
                    generator=Replies(), decision=always_answer())
    with serve(pipe) as url:
        yield url, pipe


def test_docx_citation_opens_at_its_exact_span(office_ui, page, artifacts):
    url, pipe = office_ui
    open_ui(page, url)
    ask(page, ORCHARD_Q)
    turn = page.locator("#chat .turn").last
    assert turn.locator(".final").count() == 1
    assert "orchard.docx" in turn.locator(".sources").inner_text()
    turn.locator("a.cite").first.click()
    page.wait_for_selector("#doc-view mark")
    mark = page.locator("#doc-view mark")
    doc, start, end = (mark.get_attribute(a) for a in ("data-doc", "data-start", "data-end"))
    assert doc == "orchard.docx"
    text = pipe.live.document_text(doc)
    assert mark.evaluate("m => m.textContent") == text[int(start):int(end)] == \
        "The Tarrow Valley orchard planted 318 quince trees in 2019."
    # the whole extracted text is shown (escaped), the table as header: value rows
    view = page.inner_text("#doc-view")
    assert "Fruit: Quince; Rows: 12" in view and "<b>all year</b>" in view
    assert page.locator("#doc-view b:has-text('all year')").count() == 0
    assert mark.is_visible()
    page.screenshot(path=str(artifacts / "docx-citation.png"))


def test_pdf_citation_shows_its_page(office_ui, page, artifacts):
    url, pipe = office_ui
    open_ui(page, url)
    ask(page, DOME_Q)
    turn = page.locator("#chat .turn").last
    assert "dome.pdf · page 3" in turn.locator(".sources").inner_text()
    turn.locator("a.cite").first.click()
    page.wait_for_selector("#doc-view mark")
    assert "dome.pdf · page 3" in page.inner_text("#doc-view .doc-head")
    assert page.locator("#doc-view mark").evaluate("m => m.textContent") == \
        "The observatory dome was repainted green."
    page.screenshot(path=str(artifacts / "pdf-page-citation.png"))


def test_docx_upload_is_indexed(office_ui, page, tmp_path):
    url, pipe = office_ui
    src = docfiles.write_docx(tmp_path / "pier notes.docx", ["The Karrow pier reopened in "
                                                             "April."])
    open_ui(page, url)
    page.get_by_role("tab", name="Documents").click()
    page.locator("#upload input[type=file]").set_input_files(str(src))
    page.wait_for_function("document.querySelector('#doc-msg')?.innerText.includes('Indexed')")
    new = [d for d in pipe.store.documents() if d["id"].startswith("pier_notes_")]
    assert len(new) == 1 and new[0]["id"].endswith(".docx") and new[0]["kind"] == "docx"
    assert "Skipped" not in page.inner_text("#doc-msg")
