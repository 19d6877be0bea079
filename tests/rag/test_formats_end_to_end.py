"""A folder of one file per format (plus a 3-page PDF, a scanned PDF and an image),
indexed and asked about a fact only one file holds: the answer cites that file, at the
right page or slide, with a span that is exactly the index's text. Plumbing with a
hashing embedder and a scripted model; the real models in the ``model`` tests."""

from __future__ import annotations

import pytest

from index.load import ocr
from rag.config import Settings
from rag.pipeline import Pipeline
from tests import docfiles
from tests.fakes import ScriptedGenerator, always_answer

FILLER = ["The committee thanked everyone who came.", "Minutes were taken by the secretary."]

# question, keyword the scripted model answers to, its reply, file, page (None: no pages)
CASES = [
    ("How many quince trees did the Tarrow Valley orchard plant?", "quince",
     "The Tarrow Valley orchard planted 318 quince trees [1].", "orchard.docx", None),
    ("At what temperature does the glassworks kiln run?", "kiln",
     "The glassworks kiln runs at 1,320 degrees [1].", "glassworks.pptx", 2),
    ("Who keeps the Skerry Light?", "Skerry",
     "Morag Dunlop keeps the Skerry Light [1].", "lights.xlsx", None),
    ("What did Ansel Varga repair the tower clock with?", "Varga",
     "Ansel Varga repaired the tower clock with a brass pendulum [1].", "clock.epub", None),
    ("Where does the choir rehearsal move to?", "choir",
     "The choir rehearsal moves to Fenwick Hall [1].", "choir.eml", None),
    ("How much are rye loaves at the Quill Street bakery?", "rye",
     "Rye loaves cost four pounds at the Quill Street bakery [1].", "bakery.odt", None),
    ("How many passengers does the ferry Marigold carry?", "Marigold",
     "The ferry Marigold carries 64 passengers [1].", "ferry.rtf", None),
    ("What colour was the Wexley lighthouse painted in 1990?", "Wexley",
     "The Wexley lighthouse was painted red in 1990 [1].", "talk.odp", 2),
    ("What colour was the observatory dome repainted?", "observatory",
     "The observatory dome was repainted green in 2021 [1].", "observatory.pdf", 3),
    ("When did the Brindle canal lock open?", "Brindle",
     "The Brindle canal lock opened in 1794 [1].", "canal.pdf", 2),
    ("When does the museum open on Sundays?", "museum",
     "The museum opens at nine on Sundays [1].", "sign.png", None),
]


def write_corpus(root):
    root.mkdir(parents=True, exist_ok=True)
    docfiles.write_docx(root / "orchard.docx", [
        ("heading", "Orchard report"), FILLER[0],
        "The Tarrow Valley orchard planted 318 quince trees in 2019.",
        ("table", [["Fruit", "Rows"], ["Quince", "12"]])])
    docfiles.write_pptx(root / "glassworks.pptx", [
        {"title": "Glassworks review", "lines": [FILLER[1]]},
        {"title": "The kiln", "lines": ["The glassworks kiln runs at 1,320 degrees."]},
        {"title": "Questions", "lines": ["Thank you."]}])
    docfiles.write_xlsx(root / "lights.xlsx", {"Lighthouses": [
        ["Name", "Keeper", "Lit"], ["Skerry Light", "Morag Dunlop", 1861],
        ["Hook Point", "Ewan Bell", 1872]]})
    docfiles.write_epub(root / "clock.epub", "The Clockmaker", [
        ("Chapter One", [FILLER[0]]),
        ("Chapter Two", ["Ansel Varga repaired the tower clock with a brass pendulum."])])
    docfiles.write_eml(root / "choir.eml", "Ann Lee <ann@example.org>", "choir@example.org",
                       "Rehearsal", "Tue, 04 Jun 2024 10:00:00 +0100",
                       "Hello all,\n\nThe choir rehearsal moves to Fenwick Hall on "
                       "Thursday.\n\nAnn")
    docfiles.write_odt(root / "bakery.odt", [
        FILLER[1], "The Quill Street bakery sells rye loaves for four pounds."])
    docfiles.write_rtf(root / "ferry.rtf", [FILLER[0], "The ferry Marigold carries 64 "
                                                       "passengers."])
    docfiles.write_odp(root / "talk.odp", [
        {"title": "Coast walk", "lines": [FILLER[1]]},
        {"title": "Lighthouse", "lines": ["The Wexley lighthouse was painted red in 1990."]}])
    docfiles.write_pdf(root / "observatory.pdf", [
        ["Observatory annual report.", FILLER[0]], ["Visitors rose this year.", FILLER[1]],
        ["The observatory dome was repainted green in 2021."]], title="Observatory")
    docfiles.write_scan_pdf(root / "canal.pdf", [
        ["Canal society newsletter"], ["The Brindle canal lock opened in 1794."]])
    docfiles.write_image(root / "sign.png", ["The museum opens at nine on Sundays."])
    return root


class FactGenerator(ScriptedGenerator):
    """Answers each question with the reply for the keyword it contains, its [1] pointing
    at the evidence line it copies from, as a model that reads the right passage would."""

    def __init__(self) -> None:
        super().__init__("NOT IN DOCUMENTS", cite_best=True, p_refusal=0.05)

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        asked = messages[-1]["content"].rsplit("Question:", 1)[-1]
        self.reply = next((reply for _, key, reply, _, _ in CASES if key in asked),
                          "NOT IN DOCUMENTS")
        yield from super().stream(messages, max_tokens, temperature, stop, probe)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    if ocr.unavailable_reason():
        pytest.skip(ocr.unavailable_reason())
    from tests.fakes import HashEmbedder

    root = tmp_path_factory.mktemp("formats")
    corpus = write_corpus(root / "corpus")
    p = Pipeline(Settings(corpus=corpus, index=root / "idx"), embedder=HashEmbedder(),
                 generator=FactGenerator(), decision=always_answer())
    report = p.index()
    assert not report.errors and len(report.added) == 11, report.to_dict()
    assert report.ocr_pages == 3  # the scan's two pages and the image
    return p


def test_every_format_is_indexed_with_its_page_count(pipe):
    docs = {d["id"]: d for d in pipe.store.documents()}
    assert {d: docs[d]["kind"] for d in docs} == {
        "orchard.docx": "docx", "glassworks.pptx": "pptx", "lights.xlsx": "xlsx",
        "clock.epub": "epub", "choir.eml": "eml", "bakery.odt": "odt", "ferry.rtf": "rtf",
        "talk.odp": "odp", "observatory.pdf": "pdf", "canal.pdf": "pdf", "sign.png": "image"}
    assert {d: docs[d].get("pages") for d in docs if docs[d].get("pages")} == {
        "glassworks.pptx": 3, "talk.odp": 2, "observatory.pdf": 3, "canal.pdf": 2}
    assert docs["canal.pdf"]["ocr_pages"] == 2


@pytest.mark.parametrize("question,key,reply,doc,page", CASES, ids=[c[3] for c in CASES])
def test_the_answer_cites_the_right_file_and_page(pipe, question, key, reply, doc, page):
    ans = pipe.ask(question)
    assert not ans.refused, ans.to_dict()
    assert [c.doc for c in ans.citations] == [doc]
    c = ans.citations[0]
    assert c.page == page
    assert pipe.live.document_text(doc)[c.start:c.end] == c.text
    top = next(p for p in ans.retrieved if p.doc == doc)  # its page: where it starts
    assert top.page == (None if page is None else 1 + sum(
        s <= top.start for s in pipe.retriever.data.documents[doc].pages[1:]))
    d = ans.to_dict()
    assert d["citations"][0]["page"] == page
    assert d["retrieved"][ans.retrieved.index(top)]["page"] == top.page
    if page is not None:
        label = "slide" if doc.endswith((".pptx", ".odp")) else "page"
        assert f"{doc} · {label} {page}" in d["citations"][0]["provenance"]
    else:
        assert "page" not in d["citations"][0]["provenance"].split(doc)[1]


@pytest.fixture(scope="module")
def real_pipe(pipe, tmp_path_factory, real_embedder, small_generator):
    """The same folder indexed with MiniLM, answered by SmolLM2-135M."""
    p = Pipeline(Settings(corpus=pipe.settings.corpus,
                          index=tmp_path_factory.mktemp("real") / "idx"),
                 embedder=real_embedder, generator=small_generator)
    assert not p.index().errors
    return p


@pytest.mark.model
def test_real_embedder_retrieves_each_fact_from_its_file_first(real_pipe):
    for question, _, _, doc, page in CASES:
        top = real_pipe.retriever.retrieve(question, k=5)[0]
        assert top.doc == doc, question
        text = real_pipe.live.document_text(doc)
        fact = next(s for s in (top.text.split("\n")) if s and s.split()[0] in
                    {"The", "Name:", "Ansel"} and _key(question) in s)
        if page is not None:
            doc_obj = real_pipe.retriever.data.documents[doc]
            assert doc_obj.page_at(text.index(fact, top.start)) == page, question


def _key(question: str) -> str:
    return next(key for q, key, *_ in CASES if q == question)


@pytest.mark.model
def test_real_model_cites_the_slide_that_holds_the_fact(real_pipe):
    ans = real_pipe.ask("At what temperature does the glassworks kiln run?")
    assert not ans.refused and "1,320" in ans.answer
    assert [(c.doc, c.page) for c in ans.citations] == [("glassworks.pptx", 2)]
    c = ans.citations[0]
    assert real_pipe.live.document_text(c.doc)[c.start:c.end] == c.text
