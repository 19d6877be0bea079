"""The one pipeline object that the CLI, the UI, the API and the eval all drive."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from index import store
from index.ann import FLAT_MAX, DenseSpec
from index.builder import BuildReport, build_index
from index.chunking import ChunkerConfig
from index.embedders import Embedder, make_embedder
from index.loaders import instruction_like
from rag.config import Settings
from rag.errors import QuestionError, RagError
from rag.evidence import (
    ScoredSentence,
    SentenceVectors,
    is_yes_no,
    passages_as_evidence,
    score_sentences,
    select_evidence,
)
from rag.generators import Generator, make_generator, served_generator
from rag.prompts import (
    REFUSAL_MESSAGE,
    REFUSAL_TOKEN,
    fit_budget,
    naive_messages,
    verified_messages,
)
from rag.queue import GenerationQueue, Ticket
from rag.retrieval import HybridRetriever
from rag.threads import passive_waiting
from rag.types import Answer, Citation, Evidence, Passage, SentenceSupport
from rag.verify import (
    CITE,
    VerifyConfig,
    extractive,
    on_topic,
    render,
    split_answer,
    verify_answer,
    when_refused,
)

# the system prompt (with its examples), the question and the chat template, in tokens
PROMPT_OVERHEAD_TOKENS = 700
# a verified answer is one or two short sentences; more tokens only cost time
VERIFIED_MAX_TOKENS = 64
_IDK = re.compile(r"\b(i don'?t know|not in (the )?documents|cannot (be )?(answer|determine)"
                  r"|no (relevant )?information|not (mentioned|provided|stated))\b", re.I)


def declined(text: str) -> bool:
    """Whether a verified-mode reply says the evidence does not answer."""
    return REFUSAL_TOKEN.lower() in text.lower() or bool(_IDK.search(text) and
                                                         not CITE.search(text))


@dataclass(frozen=True)
class Thresholds:
    """Refusal and support thresholds. ``refuse_below`` is fitted on the NHS and SQuAD
    gold sets by ``python -m eval.calibrate`` (largest value with at most 2% of answerable
    questions refused: 0.4233 over 131 answerable / 124 unanswerable questions)."""

    refuse_below: float = 0.42  # best evidence score under which the answer is refused
    # When the model says "not in the documents" or its answer fails verification, the
    # best evidence sentence is quoted instead if it holds at least this idf-weighted share
    # of the question's content words (``quote_typed`` when the question asks for a name,
    # number, date or duration and the sentence holds one) and passes the relevance
    # checks (rag.relevance) and names all the question names; a yes/no question is then
    # answered from it. ``quote_refused`` replaces ``quote_typed`` when the model said
    # "not in the documents". ``python -m eval.quote_gate`` fitted it on the questions the
    # model declines in the NHS gold set and in a SQuAD sample held out from the reported
    # one (seed 1): the lowest value that quotes no sentence for an unanswerable question
    # there that 0.5 did not (0.35 quoted one more for SQuAD, 0.3 one for NHS). After an
    # answer that failed verification, 0.4 quoted a wrong sentence for an NHS question,
    # so 0.5 stays there.
    quote_when_refused: float = 0.8
    quote_typed: float = 0.5
    quote_refused: float = 0.4
    support: float = 0.6  # share of a sentence's content words its evidence must hold


@dataclass
class StreamEvent:
    """One step of an answer as it happens, in this order: ``status`` (text), ``sources``
    (the retrieved passages, as soon as retrieval ends), ``queued`` (``position`` in the
    line for the model: 1 = next; repeated while it waits), ``token`` (raw model text),
    and last ``answer`` (the verified ``Answer``)."""

    kind: str
    text: str = ""
    answer: Answer | None = None
    passages: list[Passage] | None = None
    position: int = 0

    def to_dict(self) -> dict:
        """A JSON-ready form (the worker's and the API's wire format)."""
        out: dict = {"kind": self.kind}
        if self.text:
            out["text"] = self.text
        if self.kind == "queued":
            out["position"] = self.position
        if self.passages is not None:
            out["sources"] = [p.brief() for p in self.passages]
        if self.answer is not None:
            out["answer"] = self.answer.to_dict()
        return out


def generation_slots(settings: Settings) -> int:
    """Answers generated at once: ``generation_slots`` for a served model, else one (a
    model in this process generates one answer at a time)."""
    return settings.generation_slots if settings.backend == "openai" else 1


def prompt_cache_folder(settings: Settings) -> Path | None:
    """Where the generator saves its fixed prompt states (None: not saved)."""
    if not settings.prompt_cache:
        return None
    from rag.prompt_cache import default_folder

    return default_folder()


class Pipeline:
    """retrieve -> select evidence -> generate -> verify. Models load lazily."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 generator: Generator | None = None, thresholds: Thresholds | None = None,
                 queue: GenerationQueue | None = None) -> None:
        passive_waiting()  # before torch or llama.cpp loads (rag.threads)
        self.settings = settings or Settings()
        self.chunker = ChunkerConfig(self.settings.chunk_words, self.settings.overlap_words)
        self.embedder = embedder or make_embedder(
            self.settings.embedding_model, self.settings.embedding_backend)
        self._generator = generator
        if generator is None and self.settings.backend == "openai":
            self._generator = served_generator(self.settings)  # checks the URL up front
        self.thresholds = thresholds or Thresholds()
        self._retriever: HybridRetriever | None = None
        self._version: str | None = None  # the index version the retriever holds
        self._lock = threading.RLock()
        self._gen_lock = threading.Lock()
        self._suspicious: dict[tuple[str, str], bool] = {}
        self.sentence_vectors = SentenceVectors(self.embedder)
        # pipelines that share a generator share its queue (the worker passes one)
        self.queue = queue or GenerationQueue(self.settings.queue_limit,
                                              slots=generation_slots(self.settings))
        self._primed: set[tuple[int, str]] = set()

    # ---- components -------------------------------------------------------------
    @property
    def index_path(self) -> Path:
        return self.settings.index_path

    @property
    def generator(self) -> Generator:
        with self._gen_lock:
            if self._generator is None:
                s = self.settings
                self._generator = (served_generator(s) if s.backend == "openai" else
                                   make_generator(s.model, s.backend, seed=s.seed,
                                                  n_ctx=s.n_ctx, n_threads=s.threads,
                                                  prompt_cache=prompt_cache_folder(s)))
            return self._generator

    def set_model(self, model: str, backend: str = "auto") -> None:
        """Switch the generator (UI settings); the new model loads on next use."""
        with self._lock, self._gen_lock:
            self.settings = self.settings.with_overrides(model=model, backend=backend)
            self._generator = None

    @property
    def retriever(self) -> HybridRetriever:
        with self._lock:
            if self._retriever is None:
                version = store.current_version(self.index_path).name
                data = store.load(self.index_path, embedding_model=self.embedder.name,
                                  mmap=True)
                self._retriever = HybridRetriever(data, self.embedder,
                                                  mode=self.settings.retrieval)
                self._version = version
            return self._retriever

    def refresh(self) -> bool:
        """Drop the loaded index if another process has replaced it since (``rag index``
        while a server or the worker runs); the next question loads the new one."""
        with self._lock:
            if self._retriever is None:
                return False
            try:
                now = store.current_version(self.index_path).name
            except RagError:
                now = None  # gone or damaged: the next load says so
            if now == self._version:
                return False
            self._retriever = None
            return True

    def warm_up(self) -> None:
        """Load the embedder, the index and the generator, the generator in a second
        thread meanwhile (its file is mostly read from disk), then prime its prompt
        cache."""
        loader = self.warm_generator_in_background()
        if hasattr(self.embedder, "warm_up"):
            self.embedder.warm_up()
        _ = self.retriever
        loader.join()
        self.generator.warm_up()  # raises what the background load hit
        self.prime(self.generator, self.settings.answer_mode)

    def warm_generator_in_background(self) -> threading.Thread:
        """Start loading the generator (and priming its prompt cache) in a daemon
        thread; errors are left for the next use of the generator to raise."""
        def load() -> None:
            try:
                gen = self.generator
                gen.warm_up()
                self.prime(gen, self.settings.answer_mode)
            except Exception:  # noqa: BLE001 - raised again where the generator is used
                pass

        thread = threading.Thread(target=load, daemon=True, name="rag-generator-load")
        thread.start()
        return thread

    # ---- the generator's prompt cache ---------------------------------------------
    @staticmethod
    def prompt_samples(mode: str) -> list[list[dict[str, str]]]:
        """Two prompts of ``mode`` on made-up evidence: what they share is the fixed part
        of every prompt of that mode (instructions, template, evidence header)."""
        def ev(n: int, text: str) -> Evidence:
            return Evidence(n, "sample.txt", "", 0, len(text), text, 1.0)

        a = [ev(1, "The ferry leaves the harbour at noon."), ev(2, "Tickets cost four pounds.")]
        b = [ev(1, "Night buses stopped running in May."), ev(2, "Drivers asked for staff.")]
        make = naive_messages if mode == "naive" else verified_messages
        return [make("When does the ferry leave?", a), make("Who stopped the buses?", b)]

    def prime(self, generator: Generator, mode: str) -> None:
        """Have the generator keep the fixed part of ``mode``'s prompts in its prompt
        cache (loaded from disk when saved before), so a question only pays for its own
        tokens. Generators without a prompt cache are left alone."""
        warm = getattr(generator, "warm_prefix", None)
        key = (id(generator), mode)
        if warm is None or key in self._primed:
            return
        warm(self.prompt_samples(mode))
        self._primed.add(key)

    def _prime_for(self, generator: Generator, messages: list[dict[str, str]]) -> None:
        for mode in ("verified", "naive"):
            if messages[:1] == self.prompt_samples(mode)[0][:1]:
                self.prime(generator, mode)

    # ---- indexing ---------------------------------------------------------------
    def index(self, corpus: Path | None = None, rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        with self._lock:
            report = build_index(corpus or self.settings.corpus, self.index_path,
                                 self.embedder, self.chunker, rebuild=rebuild,
                                 progress=progress, dense=self.dense_spec())
            if report.written:
                self._retriever = None
            return report

    def dense_spec(self) -> DenseSpec | None:
        """The FAISS index type asked for, if any (else the index keeps its own)."""
        s = self.settings
        if s.dense_index is None and s.dense_flat_max == FLAT_MAX:
            return None
        return DenseSpec(s.dense_index or "auto", flat_max=s.dense_flat_max)

    def documents(self) -> list[dict]:
        manifest = store.read_manifest(self.index_path)
        return [{"id": doc_id, **meta} for doc_id, meta in manifest["documents"].items()]

    def document_text(self, doc_id: str) -> str:
        return self.retriever.data.documents[doc_id].text

    def document_texts(self) -> dict[str, str]:
        """Every indexed document's text (the one its spans index), by id."""
        return {d: doc.text for d, doc in self.retriever.data.documents.items()}

    # ---- answering --------------------------------------------------------------
    def check_question(self, question: str) -> str:
        q = (question or "").strip()
        if not q:
            raise QuestionError("the question is empty; type a question about your documents")
        if len(q) > self.settings.max_question_chars:
            raise QuestionError(
                f"the question has {len(q)} characters; the limit is "
                f"{self.settings.max_question_chars} (set RAG_MAX_QUESTION_CHARS to change it)")
        return q

    def check_history(self, history: Sequence[dict] | None) -> list[dict[str, str]]:
        """Earlier turns of a conversation, oldest first: ``{"role": "user" or
        "assistant", "content": text}`` each."""
        turns = []
        for i, turn in enumerate(history or []):
            role = turn.get("role") if isinstance(turn, dict) else None
            content = turn.get("content") if isinstance(turn, dict) else None
            if role not in ("user", "assistant") or not isinstance(content, str):
                raise QuestionError(f"history turn {i + 1} must be {{'role': 'user' or "
                                    f"'assistant', 'content': text}}")
            turns.append({"role": role, "content": content})
        return turns

    def ask(self, question: str, k: int | None = None, mode: str | None = None,
            history: Sequence[dict] | None = None) -> Answer:
        answer = None
        for event in self.ask_stream(question, k=k, mode=mode, history=history):
            if event.kind == "answer":
                answer = event.answer
        assert answer is not None
        return answer

    def ask_stream(self, question: str, k: int | None = None, mode: str | None = None,
                   history: Sequence[dict] | None = None) -> Iterator[StreamEvent]:
        """Stream the answer's steps (``StreamEvent``): status, the retrieved sources as
        soon as retrieval ends, the place in the line while the model is busy, raw model
        tokens, then the verified ``Answer``.

        ``history`` holds a conversation's earlier turns (a chat shell sends them; they
        are checked here). The answer is verified against the documents alone, whatever
        the history says. A full line raises ``BusyError`` at the first step."""
        q = self.check_question(question)
        self.check_history(history)
        k = k or self.settings.k
        mode = mode or self.settings.answer_mode
        if mode not in ("verified", "naive"):
            raise ValueError(f"answer mode must be verified or naive; got {mode!r}")
        ticket = self.queue.admit()
        try:
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            yield StreamEvent("status", "retrieving")
            passages = self.retriever.retrieve(q, k)
            timings["retrieve_s"] = time.perf_counter() - t0
            yield StreamEvent("sources", passages=passages)
            if mode == "naive":
                yield from self._naive(q, passages, timings, t0, ticket)
            else:
                yield from self._verified(q, passages, timings, t0, ticket)
        finally:
            ticket.close()

    def _generate(self, messages, timings: dict, t0: float, ticket: Ticket,
                  max_tokens: int | None = None) -> Iterator[StreamEvent | str]:
        for position in ticket.wait():
            yield StreamEvent("queued", position=position)
        if ticket.waited_s:
            timings["queue_s"] = ticket.waited_s
        t = time.perf_counter()
        text, n = "", 0
        try:
            generator = self.generator
            self._prime_for(generator, messages)
            for piece in generator.stream(messages,
                                          max_tokens=max_tokens or self.settings.max_tokens,
                                          temperature=self.settings.temperature):
                if n == 0:
                    timings["first_token_s"] = time.perf_counter() - t0
                n += 1
                text += piece
                yield StreamEvent("token", piece)
        finally:
            ticket.release_model()
        timings["generate_s"] = time.perf_counter() - t
        timings["tokens"] = n
        yield text

    def _finish(self, answer: Answer, timings: dict, t0: float) -> StreamEvent:
        timings["total_s"] = time.perf_counter() - t0
        answer.tokens_generated = int(timings.pop("tokens", 0))
        answer.timings = timings
        answer.model = self.settings.model
        return StreamEvent("answer", answer=answer)

    def _naive(self, q: str, passages: list[Passage], timings: dict, t0: float,
               ticket: Ticket):
        sources = fit_budget(passages_as_evidence(passages), self.evidence_budget())
        text = ""
        for ev in self._generate(naive_messages(q, sources), timings, t0, ticket):
            if isinstance(ev, str):
                text = ev
            else:
                yield ev
        refused = bool(_IDK.search(text)) or not passages
        by_n = {e.n: e for e in sources}
        used = sorted({n for _, ns in split_answer(text) for n in ns if n in by_n})
        citations = [Citation(n, by_n[n].doc, by_n[n].start, by_n[n].end, by_n[n].text,
                              by_n[n].title) for n in used]
        sentences = [SentenceSupport(s, [n for n in ns if n in by_n], True, 1.0)
                     for s, ns in split_answer(text)]
        ans = Answer(q, text.strip(), refused, [] if refused else citations, passages,
                     sentences, mode="naive", raw_answer=text,
                     refusal_reason="model" if refused else "")
        yield self._finish(ans, timings, t0)

    def evidence_for(self, q: str, passages: list[Passage]
                     ) -> tuple[list[ScoredSentence], list[Evidence]]:
        """The scored sentences of the passages, best first, and the numbered evidence
        the verified prompt shows. Documents that address the model (prompt injection)
        are shown to the user, never used as evidence."""
        trusted = [p for p in passages if not self._addresses_model(p.doc)]
        scored = score_sentences(q, trusted, self.embedder, cache=self.sentence_vectors)
        return scored, fit_budget(select_evidence(scored, self.settings.evidence_sentences),
                                  self.evidence_budget())

    def _verified(self, q: str, passages: list[Passage], timings: dict, t0: float,
                  ticket: Ticket):
        t = time.perf_counter()
        scored, evidence = self.evidence_for(q, passages)
        timings["evidence_s"] = time.perf_counter() - t
        best = scored[0].score if scored else 0.0
        if best < self.thresholds.refuse_below:
            yield self._finish(self._refusal(q, passages, "retrieval", best), timings, t0)
            return
        text = ""
        limit = min(self.settings.max_tokens, VERIFIED_MAX_TOKENS)
        for ev in self._generate(verified_messages(q, evidence), timings, t0, ticket, limit):
            if isinstance(ev, str):
                text = ev
            else:
                yield ev
        t = time.perf_counter()
        yes_no = is_yes_no(q)
        cfg = VerifyConfig(self.thresholds.support, quote_typed=self.thresholds.quote_typed,
                           quote_untyped=self.thresholds.quote_when_refused,
                           quote_refused=self.thresholds.quote_refused)
        if declined(text):
            checked = when_refused(q, evidence, yes_no, cfg)
            if not checked:
                yield self._finish(self._refusal(q, passages, "model", best, text), timings, t0)
                return
        else:
            checked = verify_answer(text, q, evidence, cfg, yes_no=yes_no)
            if not yes_no:
                checked = on_topic(checked, q, evidence)
            if not any(s.supported for s in checked):
                checked = extractive(q, evidence, checked, yes_no, cfg) + checked
        answer_text, citations, kept = render(checked, evidence)
        flagged = [s for s in checked if not s.supported]
        timings["verify_s"] = time.perf_counter() - t
        if not citations:
            yield self._finish(self._refusal(q, passages, "unsupported", best, text),
                               timings, t0)
            return
        ans = Answer(q, answer_text, False, citations, passages, kept + flagged,
                     mode="verified", raw_answer=text)
        yield self._finish(ans, timings, t0)

    def evidence_budget(self) -> int:
        """Tokens of evidence a prompt may hold: ``context_tokens``, and never more than
        the context window leaves after the answer, instructions and question."""
        s = self.settings
        return max(64, min(s.context_tokens, s.n_ctx - s.max_tokens - PROMPT_OVERHEAD_TOKENS))

    def _addresses_model(self, doc_id: str) -> bool:
        doc = self.retriever.data.documents.get(doc_id)
        if doc is None:
            return False
        key = (doc_id, doc.hash)
        if key not in self._suspicious:
            self._suspicious[key] = instruction_like(doc.text) is not None
        return self._suspicious[key]

    def _refusal(self, q: str, passages: list[Passage], reason: str, best: float,
                 raw: str = "") -> Answer:
        docs = list(dict.fromkeys((p.title, p.doc) for p in passages[:3]))  # distinct
        closest = "; ".join(f"{title} ({doc})" for title, doc in docs)
        msg = REFUSAL_MESSAGE + (f" Closest passages: {closest}." if closest else "")
        return Answer(q, msg, True, [], passages, [], mode="verified",
                      raw_answer=raw, refusal_reason=f"{reason} (best evidence {best:.2f})")
