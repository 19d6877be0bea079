"""Fast tests of the HTML helpers, uploads and auth parsing: no browser, no models."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from cli.serving import parse_auth
from ui import files
from ui.render import answer_html, chat_html, document_html, esc, sources_html

EVIL = 'Title <script>alert(1)</script> & "quotes" <img src=x onerror=alert(2)>'


class _Mark(HTMLParser):
    """Collects the text inside <mark> the way a browser's textContent would."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.inside, self.text, self.tags = False, "", []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.inside = self.inside or tag == "mark"

    def handle_endtag(self, tag):
        if tag == "mark":
            self.inside = False

    def handle_data(self, data):
        if self.inside:
            self.text += data


def test_esc_escapes_markup_and_keeps_carriage_returns():
    out = esc(EVIL + "\r\n")
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert "<img" not in out and "&quot;quotes&quot;" in out
    assert html.unescape(out) == EVIL + "\r\n"


@pytest.mark.parametrize("text,start,end", [
    ("Hello <b>world</b> & friends.\nSecond line.", 6, 18),
    ("\nleading newline, then <script>alert(1)</script>", 0, 12),
    ("a\r\nb <i> c", 1, 7),
    ("unicode ‘quotes’ — and “more”", 8, 16),
])
def test_document_html_marks_the_exact_span(text, start, end):
    out = document_html(text, start, end, title="T", doc="d.txt")
    p = _Mark()
    p.feed(out)
    assert p.text == text[start:end]
    assert out.count("<mark") == 1
    assert p.tags == ["div", "b", "span", "div", "mark"]
    assert f'data-start="{start}" data-end="{end}"' in out
    # the whole text survives escaping: strip the tags and unescape
    body = out.split('<div class="doc-text">', 1)[1]
    assert html.unescape(re.sub(r"<[^>]+>", "", body)) == text


def test_document_html_clamps_bad_spans():
    out = document_html("short", 3, 99)
    p = _Mark()
    p.feed(out)
    assert p.text == "rt"


def test_answer_markers_become_links_only_for_real_citations():
    out = answer_html("A <b>bold</b> claim [1] and [7].", turn=2, valid={1})
    assert "&lt;b&gt;bold&lt;/b&gt;" in out
    assert 'data-turn="2" data-kind="c" data-n="1"' in out
    assert out.count('class="cite"') == 1 and "[7]" in out


def _answer(refused: bool) -> dict:
    passage = {"doc": "../evil.txt", "start": 3, "end": 9, "title": EVIL, "text": EVIL,
               "n": 1, "score": 0.1}
    return {"question": "q?", "answer": "Answer <script>x</script> [1].", "refused": refused,
            "refusal_reason": "retrieval (best evidence 0.10)",
            "citations": [] if refused else [passage], "retrieved": [passage]}


def test_sources_and_refusals_are_escaped_and_clickable():
    ok = chat_html([{"question": "<script>q</script>", "answer": _answer(False)}])
    assert "<script>" not in ok and "&lt;script&gt;q" in ok
    assert 'class="source" role="button" data-turn="0" data-kind="c" data-n="1"' in ok
    assert "Sources" in ok and "refusal" not in ok
    ref = chat_html([{"question": "q", "answer": _answer(True)}])
    assert 'class="msg bot refusal"' in ref and "Closest passages" in ref
    assert 'data-kind="r" data-n="0"' in ref and "<script>" not in ref
    assert sources_html({"refused": False, "citations": []}, 0) == ""


def test_meta_line_shows_model_and_timings():
    ans = {**_answer(False), "model": "m<1>", "timings": {"first_token_s": 1.234,
                                                           "total_s": 5}}
    out = chat_html([{"question": "q", "answer": ans}])
    assert '<div class="meta">m&lt;1&gt; · first token 1.23s · total 5.00s</div>' in out


def test_streaming_and_error_turns():
    out = chat_html([{"question": "q", "partial": "tok <i>", "status": "generating"},
                     {"question": "q2", "error": "bad <thing>"}])
    assert "tok &lt;i&gt;" in out and "generating" in out
    assert 'class="msg error"' in out and "bad &lt;thing&gt;" in out
    assert "Ask a question" in chat_html([])


@pytest.mark.parametrize("name", ["../../x.txt", "..\\..\\x.txt", "/etc/passwd.md",
                                  "a b<script>.html", ".hidden.pdf", "....txt"])
def test_safe_name_stays_inside_the_corpus(tmp_path, name):
    target = files.safe_name(name, tmp_path)
    assert target.parent == tmp_path.resolve()
    assert re.fullmatch(r"[A-Za-z0-9_-]+_[0-9a-f]{6}\.(txt|md|html|pdf)", target.name)


@pytest.mark.parametrize("name", ["x.exe", "x.txt.sh", "noext", "x.py"])
def test_safe_name_rejects_other_types(tmp_path, name):
    with pytest.raises(ValueError):
        files.safe_name(name, tmp_path)


def test_save_uploads_checks_type_and_size(tmp_path, monkeypatch):
    corpus, up = tmp_path / "corpus", tmp_path / "up"
    up.mkdir()
    (up / "notes.md").write_text("# Notes\n\nhello")
    (up / "evil.sh").write_text("rm -rf /")
    (up / "big.txt").write_text("x" * 100)
    monkeypatch.setattr(files, "MAX_UPLOAD_BYTES", 50)
    saved, msgs = files.save_uploads([str(up / n) for n in ("notes.md", "evil.sh", "big.txt")],
                                     corpus)
    assert [p.parent for p in saved] == [corpus.resolve()]
    assert saved[0].read_text() == "# Notes\n\nhello"
    assert sum(m.startswith("Skipped") for m in msgs) == 2


def test_remove_document_only_inside_the_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("a")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    assert files.remove_document(corpus, "../outside.txt") is not None
    assert outside.exists()
    assert files.remove_document(corpus, ".") is not None
    assert files.remove_document(corpus, "missing.txt") is not None
    assert files.remove_document(corpus, "a.txt") is None
    assert not (corpus / "a.txt").exists()


def test_parse_auth():
    assert parse_auth("me:s3:cret") == ("me", "s3:cret")
    assert parse_auth(None) is None and parse_auth("") is None
    for bad in ("nopass", ":x", "x:"):
        with pytest.raises(ValueError):
            parse_auth(bad)


def test_serve_command_is_registered():
    from typer.testing import CliRunner

    from cli.main import app

    out = CliRunner().invoke(app, ["serve", "--help"])
    assert out.exit_code == 0
    for opt in ("--host", "--port", "--auth", "--index", "--corpus", "--model", "--backend"):
        assert opt in out.output




def test_serve_binds_localhost_and_reads_auth_from_env(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    import cli.common
    import ui.app
    from cli.main import app

    calls: dict = {}

    class FakeDemo:
        def launch(self, **kw):
            calls.update(kw)

    monkeypatch.setattr(cli.common, "make_pipeline", lambda s: calls.setdefault("settings", s))
    monkeypatch.setattr(ui.app, "build_app", lambda pipe: FakeDemo())
    monkeypatch.setenv("RAG_AUTH", "me:pw")
    out = CliRunner().invoke(app, ["serve", "--corpus", str(tmp_path), "--port", "7999",
                                   "--model", "smollm2-135m"])
    assert out.exit_code == 0, out.output
    assert calls["server_name"] == "127.0.0.1" and calls["server_port"] == 7999
    assert calls["auth"] == ("me", "pw")
    assert calls["settings"].corpus == tmp_path and calls["settings"].model == "smollm2-135m"
    out = CliRunner().invoke(app, ["serve", "--auth", "nocolon"])
    assert out.exit_code != 0 and "user:password" in out.output


def test_a_rewritten_follow_up_shows_what_was_searched_escaped():
    from ui.render import turn_html

    turn = {"question": "Who built it?", "searching": "Who built the <b>mill</b>?"}
    html = turn_html(turn, 1)
    assert 'class="searching"' in html and "&lt;b&gt;mill&lt;/b&gt;" in html
    done = {"question": "Who built it?", "answer": {
        "question": "Who built it?", "standalone_question": "Who built the mill?",
        "answer": "Oskar Venn built it [1].", "refused": False,
        "citations": [{"n": 1, "doc": "m.txt", "start": 0, "end": 5, "text": "Oskar"}]}}
    html = turn_html(done, 3)
    assert "Searching for: <q>Who built the mill?</q>" in html
    assert 'data-turn="3" data-kind="c" data-n="1"' in html  # the citation opens
    alone = {"question": "Who built the mill?", "answer": dict(
        done["answer"], question="Who built the mill?")}
    assert 'class="searching"' not in turn_html(alone, 0)


def test_the_page_or_slide_is_shown_beside_the_file():
    cites = [{"n": 1, "doc": "report.pdf", "page": 3, "start": 5, "end": 9, "text": "t",
              "title": "Report"},
             {"n": 2, "doc": "deck.pptx", "page": 2, "start": 0, "end": 4, "text": "u"},
             {"n": 3, "doc": "notes.txt", "page": None, "start": 0, "end": 4, "text": "v"}]
    html_out = sources_html({"refused": False, "citations": cites}, 0)
    assert "report.pdf · page 3 [5:9]" in html_out
    assert "deck.pptx · slide 2 [0:4]" in html_out
    assert "notes.txt [0:4]" in html_out and "notes.txt ·" not in html_out
    head = document_html("0123456789", 5, 9, "Report", "report.pdf", page=3)
    assert '<span class="src-file">report.pdf · page 3 [5:9]</span>' in head
