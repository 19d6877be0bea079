"""The Gradio app: chat with streamed, cited answers; a document viewer that highlights the
cited span; a documents tab (upload, remove, re-index); settings; and the ``/ask`` API."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr

from index.errors import RagError
from rag.answer.conversation import SEARCHING, history_turns
from rag.errors import BusyError
from rag.pipeline import Pipeline
from ui import files
from ui.render import CSS, chat_html, document_html, esc

CHAT_JS = """
element.addEventListener('click', (e) => {
  const c = e.target.closest('[data-kind]');
  if (!c || !element.contains(c)) return;
  e.preventDefault();
  trigger('click', {turn: +c.dataset.turn, kind: c.dataset.kind, n: +c.dataset.n});
});
"""
VIEW_JS = """
const go = () => { const m = element.querySelector('mark');
  if (m) m.scrollIntoView({block: 'center', behavior: 'instant'}); };
watch('value', () => setTimeout(go, 30)); go();
"""
VIEW_EMPTY = '<div class="empty">Click a citation [n] or a source to open it here.</div>'


class Loader:
    """Indexes the corpus if it has no index, then loads the models, in the background."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.status = "Starting…"
        self.error = ""
        self.ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rag-loader")
        self._thread.start()

    def _run(self) -> None:
        p = self.pipeline
        try:
            if p.store.builds_on_first_use and not p.index_exists():
                self.status = f"Indexing {p.settings.corpus} (first start)…"
                p.index(p.settings.corpus, progress=self._progress)
            self.status = "Loading the embedding model, the index and the generator…"
            p.warm_up()
            self.status = "Ready."
        except (RagError, OSError) as exc:
            self.error = str(exc)
            self.status = f"Error: {exc}"
        finally:
            self.ready.set()

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.status = f"Indexing {self.pipeline.settings.corpus}: {stage} {done}/{total}…"

    def indexed(self) -> None:
        """A later (re-)index worked: clear a start-up error such as an empty corpus."""
        if self.error:
            self.error, self.status = "", "Ready."

    def wait(self, timeout: float | None = None) -> bool:
        return self.ready.wait(timeout)


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``Blocks.launch``: a theme without web fonts, CSS, limits."""
    theme = gr.themes.Default(font=["system-ui", "sans-serif"], font_mono=["monospace"])
    return {"theme": theme, "css": CSS, "max_file_size": files.MAX_UPLOAD_BYTES}


def index_notes(report) -> list[str]:
    """What an index run skipped and what it warned about, one line each."""
    return ([f"Skipped {err}" for err in report.errors]
            + [f"Warning: {w}" for w in getattr(report, "warnings", [])])


def queue_status(position: int) -> str:
    """What a waiting user reads while others' questions are answered."""
    ahead = "1 question is" if position == 1 else f"{position} questions are"
    return f"the model is busy: {ahead} ahead of yours (number {position} in line)"


def _doc_rows(pipeline: Pipeline) -> list[list]:
    try:
        docs = pipeline.store.documents()
    except RagError:
        return []
    return [[d.get("title", ""), d["id"], d.get("chunks", 0),
             time.strftime("%Y-%m-%d %H:%M", time.localtime(d.get("indexed_at") or 0))]
            for d in docs]


def _info(pipeline: Pipeline, loader: Loader) -> str:
    s = pipeline.settings
    rows = _doc_rows(pipeline)
    chunks = sum(int(r[2] or 0) for r in rows)
    return (f"**Index**: `{pipeline.store.location}` — {len(rows)} documents, {chunks} chunks  \n"
            f"**Corpus**: `{s.corpus}`  \n**Model**: `{s.model}` (backend {s.backend}), "
            f"k={s.k}, temperature={s.temperature}  \n**Status**: {loader.status}")


def build_app(pipeline: Pipeline, loader: Loader | None = None) -> gr.Blocks:
    """The whole UI over one pipeline; models and index load once, in the background."""
    from rag.generate.models import installed_models

    loader = loader or Loader(pipeline)
    corpus = Path(pipeline.settings.corpus)

    def chat_turn(question: str, turns: list[dict]):
        q = (question or "").strip()
        turns = list(turns or [])
        if not q:
            yield gr.skip(), turns, gr.skip()
            return
        # the conversation so far: this browser session's answered turns
        history = [m for t in turns if t.get("answer") for m in history_turns(t["answer"])]
        turn: dict[str, Any] = {"question": q, "partial": "", "status": "loading models…"}
        turns.append(turn)
        yield "", turns, chat_html(turns)
        loader.wait()
        if loader.error:
            turn["error"] = f"The index or the models could not be loaded: {loader.error}"
            yield "", turns, chat_html(turns)
            return
        steps = pipeline.ask_stream(q, history=history)
        try:
            for ev in steps:
                if ev.kind == "status" and ev.text.startswith(SEARCHING):
                    turn["searching"] = ev.text[len(SEARCHING):]
                    turn["status"] = "retrieving"
                elif ev.kind == "status":
                    turn["status"] = ev.text
                elif ev.kind == "sources":
                    turn["sources"] = [p.brief() for p in ev.passages or []]
                    turn["status"] = "sources found; the model is writing the answer"
                elif ev.kind == "queued":
                    turn["position"] = ev.position
                    turn["status"] = queue_status(ev.position)
                elif ev.kind == "token":
                    turn.pop("position", None)
                    turn["partial"] += ev.text
                    turn["status"] = "generating; checking citations next"
                elif ev.kind == "answer" and ev.answer is not None:
                    turn["answer"] = ev.answer.to_dict()
                yield "", turns, chat_html(turns)
        except BusyError as exc:
            turn["error"] = (f"The model is busy: {exc.waiting} questions are waiting. "
                             f"Please ask again in {exc.retry_after} s.")
            yield "", turns, chat_html(turns)
        except RagError as exc:
            turn["error"] = str(exc)
            yield "", turns, chat_html(turns)
        finally:
            steps.close()  # a page that went away gives its place in the line back

    def open_passage(turns: list[dict], evt: gr.EventData) -> str:
        d = evt._data or {}
        try:
            turn = turns[int(d["turn"])]
            n = int(d["n"])
            if d.get("kind") == "s":  # a source shown before the answer
                p = turn["sources"][n]
            elif d.get("kind") == "r":
                p = turn["answer"]["retrieved"][n]
            else:
                p = next(c for c in turn["answer"]["citations"] if int(c["n"]) == n)
            text = pipeline.live.document_text(p["doc"])
        except (KeyError, IndexError, TypeError, ValueError, StopIteration, RagError):
            return '<div class="msg error">That passage is no longer available.</div>'
        return document_html(text, int(p["start"]), int(p["end"]), p.get("title", ""),
                             p["doc"], p.get("page"))

    def refresh():
        rows = _doc_rows(pipeline)
        choices = [r[1] for r in rows]
        return rows, gr.Dropdown(choices=choices, value=None), _info(pipeline, loader)

    def tick():
        done = loader.ready.is_set()
        return (f"**Status:** {esc(loader.status)}", gr.Timer(active=not done),
                *refresh())

    def add_files(paths: list[str] | None, progress=gr.Progress()):  # noqa: B008
        if not paths:
            return "No file uploaded.", *refresh()
        loader.wait()
        saved, msgs = files.save_uploads(paths, corpus)
        if saved:
            try:
                report = pipeline.index(corpus, progress=files.progress_adapter(progress))
                msgs.append(f"Indexed: {report.summary()}")
                msgs.extend(index_notes(report))
                loader.indexed()
            except RagError as exc:
                msgs.append(f"Indexing failed: {exc}")
        return "  \n".join(esc(m) for m in msgs), *refresh()

    def remove(doc_id: str | None, progress=gr.Progress()):  # noqa: B008
        if not doc_id:
            return "Choose a document to remove.", *refresh()
        msg = files.remove_document(corpus, doc_id)
        if msg is None:
            try:
                pipeline.index(corpus, progress=files.progress_adapter(progress))
                msg = f"Removed {doc_id} and re-indexed."
                loader.indexed()
            except RagError as exc:
                msg = f"Removed {doc_id}; re-indexing failed: {exc}"
        return esc(msg), *refresh()

    def apply_settings(k: float, model: str, backend: str, temperature: float) -> str:
        pipeline.update(model=model, backend=backend, k=int(k), temperature=float(temperature))
        return _info(pipeline, loader)

    def ask_api(question: str, history: list[dict] | None = None) -> dict:
        """Answer a question; returns the same object as `rag ask --json`. ``history``:
        the conversation's earlier turns, ``[{"role": "user" or "assistant", "content"}]``
        oldest first; a follow-up is answered as ``standalone_question``."""
        loader.wait()
        if loader.error:
            raise gr.Error(loader.error)
        try:
            return pipeline.ask(question, history=history or None).to_dict()
        except BusyError as exc:
            raise gr.Error(f"The model is busy: {exc.waiting} questions are waiting; "
                           f"ask again in {exc.retry_after} s.") from exc
        except RagError as exc:
            raise gr.Error(str(exc)) from exc

    s = pipeline.settings
    models = list(dict.fromkeys([s.model, *installed_models()]))
    with gr.Blocks(title="cited-rag") as demo:
        gr.Markdown("## Ask your documents — answers with verified citations")
        status = gr.Markdown(f"**Status:** {esc(loader.status)}", elem_id="status")
        timer = gr.Timer(0.5)
        turns = gr.State([])
        with gr.Tab("Chat", id="chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.HTML(chat_html([]), js_on_load=CHAT_JS, elem_id="chat",
                                   css_template=CSS)
                    question = gr.Textbox(label="Question", elem_id="question", lines=1,
                                          max_lines=4, placeholder="Type and press Enter")
                    with gr.Row():
                        send = gr.Button("Ask", variant="primary", elem_id="send")
                        clear = gr.Button("New conversation", elem_id="reset")
                with gr.Column(scale=2):
                    viewer = gr.HTML(VIEW_EMPTY, js_on_load=VIEW_JS, elem_id="doc-view",
                                     css_template=CSS, label="Document")
        with gr.Tab("Documents", id="docs"):
            table = gr.Dataframe(headers=["Title", "File", "Chunks", "Indexed"],
                                 value=_doc_rows(pipeline), interactive=False,
                                 elem_id="doc-table")
            upload = gr.File(label="Add documents (text, Markdown, HTML, PDF, Word, "
                                   "PowerPoint, Excel, CSV, OpenDocument, EPUB, e-mail, "
                                   "RTF, scans and images; max "
                                   f"{files.MAX_UPLOAD_BYTES // 2**20} MB each)",
                             file_count="multiple", file_types=list(files.ALLOWED),
                             type="filepath", elem_id="upload")
            with gr.Row():
                to_remove = gr.Dropdown(label="Remove a document", choices=[],
                                        elem_id="remove-choice")
                remove_btn = gr.Button("Remove and re-index", variant="stop",
                                       elem_id="remove")
            doc_msg = gr.Markdown(elem_id="doc-msg")
        with gr.Tab("Settings", id="settings"):
            k = gr.Slider(1, 20, value=s.k, step=1, label="Passages to retrieve (top-k)",
                          elem_id="top-k")
            model = gr.Dropdown(models, value=s.model, label="Model (installed)")
            backends = list(dict.fromkeys([s.backend, "auto", "llama", "transformers"]))
            backend = gr.Dropdown(backends, value=s.backend,
                                  label="Backend")
            temp = gr.Slider(0.0, 1.5, value=s.temperature, step=0.05, label="Temperature",
                             elem_id="temperature")
            apply = gr.Button("Apply", elem_id="apply")
            info = gr.Markdown(_info(pipeline, loader), elem_id="info")

        # questions run side by side up to the generator, whose queue (Pipeline.queue)
        # lets one generate at a time and tells the others their place
        chat_io = {"inputs": [question, turns], "outputs": [question, turns, chat],
                   "concurrency_limit": None, "api_visibility": "private"}
        question.submit(chat_turn, **chat_io)
        send.click(chat_turn, **chat_io)
        clear.click(lambda: ([], chat_html([]), VIEW_EMPTY), None, [turns, chat, viewer],
                    api_visibility="private")
        chat.click(open_passage, [turns], [viewer], api_visibility="private")
        listing = [table, to_remove, info]
        timer.tick(tick, None, [status, timer, *listing], api_visibility="private")
        upload.upload(add_files, [upload], [doc_msg, *listing], concurrency_id="model",
                      api_visibility="private")
        remove_btn.click(remove, [to_remove], [doc_msg, *listing], concurrency_id="model",
                         api_visibility="private")
        apply.click(apply_settings, [k, model, backend, temp], [info],
                    api_visibility="private")
        gr.api(ask_api, api_name="ask", concurrency_limit=None)
    return demo
