"""HTML for the chat, the sources panel and the document viewer. Every piece of document
text, question and answer goes through ``html.escape`` before it reaches the page."""

from __future__ import annotations

import html
import re
from typing import Any

from rag.grounding.verify import CITE
from rag.types import page_label

MARK_ID = "cite-mark"


def esc(text: Any) -> str:
    """HTML-escape text (quotes included); carriage returns survive as ``&#13;`` so the
    browser's text equals the source text character for character."""
    return html.escape(str(text), quote=True).replace("\r", "&#13;")


def answer_html(text: str, turn: int, valid: set[int] | None = None) -> str:
    """The answer, escaped, with each ``[n]`` turned into a clickable citation link (a
    marker of several numbers, "[1, 2]", stays text)."""

    def link(m: re.Match) -> str:
        if not m.group(1).isdigit():
            return m.group(0)
        n = int(m.group(1))
        if valid is not None and n not in valid:
            return m.group(0)
        return (f'<a href="#" class="cite" role="button" data-turn="{turn}" data-kind="c" '
                f'data-n="{n}" title="Open passage [{n}]">[{n}]</a>')

    return CITE.sub(link, esc(text))


def where_text(doc: Any, page: Any) -> str:
    """A file and, for a paged document, its page or slide: ``report.pdf · page 3``."""
    label = page_label(str(doc), int(page)) if page is not None else ""
    return f"{doc} · {label}" if label else str(doc)


def _passage(p: dict, turn: int, kind: str, n: int, label: str) -> str:
    body = esc(" ".join(str(p.get("text", "")).split()))
    modified = (f'<span class="src-date"> · modified {esc(p["modified"])}</span>'
                if p.get("modified") else "")
    warning = (f'<div class="src-warning">\u26a0 {esc(p["warning"])}</div>'
               if p.get("warning") else "")
    return (f'<div class="source" role="button" data-turn="{turn}" data-kind="{kind}" '
            f'data-n="{n}"><div class="src-head"><b>{esc(label)}</b> '
            f'{esc(p.get("title") or p.get("doc", ""))} '
            f'<span class="src-file">{esc(where_text(p.get("doc", ""), p.get("page")))} '
            f'[{int(p.get("start", 0))}:{int(p.get("end", 0))}]</span>{modified}</div>'
            f'{warning}<div class="src-text">{body}</div></div>')


def set_aside_html(answer: dict) -> str:
    """The documents kept out of the evidence because they address the assistant, with
    the reason and the passage that reads so."""
    items = [f'<div class="aside-doc"><b>{esc(d.get("title") or d["doc"])}</b> '
             f'<span class="src-file">{esc(d["doc"])}</span>: {esc(d.get("reason", ""))}'
             f'<div class="src-text">{esc(" ".join(str(d.get("text", "")).split()))}</div>'
             f'</div>' for d in answer.get("set_aside") or []]
    if not items:
        return ""
    return (f'<div class="set-aside"><div class="src-title">Set aside (not used as '
            f'evidence)</div>{"".join(items)}</div>')


def sources_html(answer: dict, turn: int) -> str:
    """Every cited passage (answers) or the closest passages (refusals)."""
    if answer.get("refused"):
        items = [_passage(p, turn, "r", j, f"#{j + 1}")
                 for j, p in enumerate(answer.get("retrieved", []))]
        head = "Closest passages (check them yourself)"
    else:
        items = [_passage(c, turn, "c", int(c["n"]), f"[{c['n']}]")
                 for c in answer.get("citations", [])]
        head = "Sources"
    if not items:
        return ""
    return f'<div class="sources"><div class="src-title">{head}</div>{"".join(items)}</div>'


def retrieved_html(sources: list[dict], turn: int) -> str:
    """The retrieved passages while the answer is being written (the sources panel
    fills as soon as retrieval ends); each opens in the document viewer."""
    if not sources:
        return ""
    items = [_passage(p, turn, "s", j, f"#{j + 1}") for j, p in enumerate(sources)]
    return (f'<div class="sources retrieved"><div class="src-title">Sources found (the '
            f'answer cites the ones it uses)</div>{"".join(items)}</div>')


def caution_html(answer: dict) -> str:
    """The note over a caution answer, with its confidence and the passages it rests on
    quoted exactly; nothing for a confident answer."""
    if answer.get("grade") != "caution":
        return ""
    conf = answer.get("confidence")
    pct = "" if conf is None else f" Confidence {float(conf):.2f}."
    quotes = "".join(f'<blockquote class="caution-quote">[{int(c["n"])}] '
                     f'{esc(" ".join(str(c["text"]).split()))}</blockquote>'
                     for c in answer.get("citations", []))
    return (f'<div class="caution-note">{esc(answer.get("note", ""))}{esc(pct)}</div>'
            f'{quotes}')


def meta_html(answer: dict) -> str:
    """Model and timings under an answer, e.g. ``qwen · first token 1.2s · total 3.4s``."""
    t = answer.get("timings") or {}
    parts = [str(answer["model"])] if answer.get("model") else []
    if "first_token_s" in t:
        parts.append(f"first token {float(t['first_token_s']):.2f}s")
    if "total_s" in t:
        parts.append(f"total {float(t['total_s']):.2f}s")
    return f'<div class="meta">{esc(" · ".join(parts))}</div>' if parts else ""


def searching_html(turn: dict) -> str:
    """What a follow-up was searched as (its standalone question), when it differs."""
    ans = turn.get("answer") or {}
    text = turn.get("searching") or ans.get("standalone_question") or ""
    if not text or text == turn["question"]:
        return ""
    return f'<div class="searching">Searching for: <q>{esc(text)}</q></div>'


def turn_html(turn: dict, i: int) -> str:
    """One question and its answer: streaming text, a final answer, a refusal or an error."""
    q = (f'<div class="msg user"><span class="who">You</span> {esc(turn["question"])}</div>'
         + searching_html(turn))
    ans = turn.get("answer")
    if turn.get("error"):
        body = f'<div class="msg error">{esc(turn["error"])}</div>'
    elif ans is None:
        text = turn.get("partial", "")
        status = esc(turn.get("status", "thinking…"))
        waiting = "waiting" if turn.get("position") else ""
        body = (f'<div class="msg bot streaming {waiting}"><span class="who">Assistant</span> '
                f'<span class="partial">{esc(text)}</span>'
                f'<span class="status"> ({status})</span></div>'
                + retrieved_html(turn.get("sources") or [], i))
    elif ans.get("refused"):
        body = (f'<div class="msg bot refusal"><span class="who">Refused</span> '
                f'<span class="answer">{esc(ans["answer"])}</span>'
                f'<div class="reason">{esc(ans.get("refusal_reason", ""))}</div>'
                f'{meta_html(ans)}</div>' + sources_html(ans, i))
    else:
        valid = {int(c["n"]) for c in ans.get("citations", [])}
        conflict = ans.get("conflict")
        badge = ('<div class="conflict-note">The sources disagree: each side is cited; '
                 'check their dates and origin.</div>' if conflict else "")
        caution = ans.get("grade") == "caution"
        who = "Unsure" if caution else "Assistant"
        classes = "msg bot final" + (" conflict" if conflict else "") + \
            (" caution" if caution else "")
        body = (f'<div class="{classes}">{caution_html(ans)}'
                f'<span class="who">{who}</span> '
                f'<span class="answer">{answer_html(ans["answer"], i, valid)}</span>'
                f'{badge}{meta_html(ans)}</div>' + sources_html(ans, i))
    if ans is not None and not turn.get("error"):
        body += set_aside_html(ans)
    return f'<div class="turn" data-turn="{i}">{q}{body}</div>'


def chat_html(turns: list[dict]) -> str:
    if not turns:
        return '<div class="empty">Ask a question about your documents.</div>'
    return "".join(turn_html(t, i) for i, t in enumerate(turns))


def document_html(text: str, start: int, end: int, title: str = "", doc: str = "",
                  page: int | None = None) -> str:
    """The whole document, escaped, with ``text[start:end]`` wrapped in ``<mark>``; the
    head names the file and the page (or slide) the passage is on."""
    start, end = max(0, min(start, len(text))), max(0, min(end, len(text)))
    end = max(start, end)
    head = (f'<div class="doc-head"><b>{esc(title or doc)}</b> '
            f'<span class="src-file">{esc(where_text(doc, page))} [{start}:{end}]</span></div>')
    body = (f'{esc(text[:start])}<mark id="{MARK_ID}" data-doc="{esc(doc)}" '
            f'data-start="{start}" data-end="{end}">'
            f'{esc(text[start:end])}</mark>{esc(text[end:])}')
    return f'{head}<div class="doc-text">{body}</div>'


CSS = """
.turn { margin: 0 0 1em 0; }
.msg { padding: .5em .75em; border-radius: 8px; margin: .25em 0; white-space: pre-wrap; }
.msg.user { background: #eef2ff; }
.msg.bot { background: #f6f6f6; }
.msg.refusal { background: #fff4e5; border-left: 4px solid #e67e22; }
.msg.error { background: #fdecea; border-left: 4px solid #c0392b; }
.who { font-weight: 600; margin-right: .4em; }
.refusal .who { color: #b35900; }
.reason, .meta { font-size: .8em; color: #777; }
.status { color: #888; font-style: italic; }
.searching { font-size: .85em; color: #555; margin: 0 0 .25em .75em; }
.waiting .status { color: #b35900; font-style: normal; font-weight: 600; }
a.cite { font-weight: 600; text-decoration: none; color: #1d4ed8; cursor: pointer; }
.sources { margin: .25em 0 .5em 1em; font-size: .9em; }
.src-title { font-weight: 600; color: #555; }
.source { border: 1px solid #ddd; border-radius: 6px; padding: .35em .5em; margin: .25em 0;
          cursor: pointer; }
.source:hover { background: #f0f7ff; }
.src-file { color: #777; font-family: monospace; font-size: .85em; }
.doc-text { white-space: pre-wrap; max-height: 520px; overflow-y: auto;
            border: 1px solid #ddd; padding: .5em; border-radius: 6px; }
mark { background: #ffe066; }
.msg.conflict { border-left: 4px solid #7c3aed; }
.msg.caution { border-left: 4px solid #d97706; background: #fffbeb; }
.caution-note { font-size: .9em; color: #92400e; font-weight: 600; margin-bottom: .3em; }
.caution-quote { margin: .2em 0 .4em 0; padding-left: .6em; border-left: 2px solid #f59e0b;
                 font-size: .9em; color: #444; }
.conflict-note { font-size: .85em; color: #5b21b6; font-weight: 600; margin-top: .25em; }
.src-date { color: #777; font-size: .85em; }
.src-warning { color: #b91c1c; font-size: .85em; font-weight: 600; }
.set-aside { margin: .25em 0 .5em 1em; font-size: .85em; color: #7a5b00; }
"""
