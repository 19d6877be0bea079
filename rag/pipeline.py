"""The one pipeline object that the CLI, the UI, the API and the eval all drive."""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from index import store
from index.ann import FLAT_MAX, DenseSpec
from index.builder import BuildReport, build_index
from index.chunking import ChunkerConfig
from index.embedders import Embedder, make_embedder
from index.normalize import normalize_text
from rag.chat import (
    SEARCHING,
    condense_samples,
    fallback_search,
    needs_rewrite,
    rewrite_question,
)
from rag.config import Settings
from rag.conflicts import Conflict, find_conflict
from rag.decision import DecisionModel, decision_for, decision_note
from rag.draft import IDK, DraftRules, settle
from rag.errors import QuestionError, RagError
from rag.evidence import (
    ScoredSentence,
    SentenceVectors,
    passages_as_evidence,
    score_sentences,
    select_evidence,
)
from rag.generators import Generator, Probe, make_generator, served_generator
from rag.prompts import (
    CAUTION_MESSAGE,
    REFUSAL_MESSAGE,
    REFUSAL_TOKEN,
    fit_budget,
    naive_messages,
    verified_messages,
)
from rag.provenance import modified_date, with_provenance
from rag.queue import GenerationQueue, Ticket
from rag.reading import cited_texts, needs_reading, read_yes_no
from rag.retrieval import HybridRetriever, PgRetriever
from rag.screen import (
    CAUTION,
    REASON,
    WARNING,
    PhraseScreen,
    Screen,
    screen_for,
    screen_text,
)
from rag.threads import passive_waiting
from rag.types import Answer, Citation, Evidence, Passage, SentenceSupport, SetAside
from rag.verify import VerifyConfig, render, split_answer

# the system prompt (with its examples), the question and the chat template, in tokens
PROMPT_OVERHEAD_TOKENS = 700
# sentences shorter than this are not screened (headings, captions)
SCREEN_MIN_WORDS = 4
# a verified answer is one or two short sentences; more tokens only cost time
VERIFIED_MAX_TOKENS = 64


@dataclass
class Screened:
    """The scored sentences of the documents kept as evidence (``trusted``), of all the
    passages (``all``), the documents set aside, and each document's highest screen
    score among its sentences in the passages."""

    trusted: list[ScoredSentence]
    all: list[ScoredSentence]
    set_aside: list[SetAside]
    doc_scores: dict[str, float]


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
                 generator: Generator | None = None, decision: DecisionModel | None = None,
                 rules: DraftRules | None = None, screen: Screen | None = None,
                 queue: GenerationQueue | None = None) -> None:
        passive_waiting()  # before torch or llama.cpp loads (rag.threads)
        self.settings = settings or Settings()
        self.chunker = ChunkerConfig(self.settings.chunk_words, self.settings.overlap_words)
        self.embedder = embedder or make_embedder(
            self.settings.embedding_model, self.settings.embedding_backend)
        self._generator = generator
        if generator is None and self.settings.backend == "openai":
            self._generator = served_generator(self.settings)  # checks the URL up front
        self._decision = decision
        self.rules = rules or DraftRules()
        self.verify_config = VerifyConfig()
        self._retriever: HybridRetriever | PgRetriever | None = None
        self._version: str | None = None  # the index version the retriever holds
        self._lock = threading.RLock()
        self._gen_lock = threading.Lock()
        self._screen = screen
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

    @property
    def decision(self) -> DecisionModel:
        """The graded decision fitted for this generator on its backend (rag.decision),
        at the ``answer_threshold`` and ``caution_threshold`` settings when they are set."""
        model = self._decision or decision_for(self.generator.name, self.backend)
        s = self.settings
        if s.answer_threshold is None and s.caution_threshold is None:
            return model
        high = model.threshold if s.answer_threshold is None else s.answer_threshold
        low = model.caution_at if s.caution_threshold is None else s.caution_threshold
        return replace(model, threshold=high, yes_no_threshold=model.yes_no_threshold
                       if s.answer_threshold is None else s.answer_threshold,
                       low=low if model.coverage is not None else min(low, high))

    @property
    def backend(self) -> str:
        """How the generator runs: "llama", "transformers" or "openai" (a decision is
        fitted for one); "" for a generator that does not say."""
        return getattr(self.generator, "backend", "")

    @property
    def screen(self) -> Screen | None:
        """The screen for passages that address the assistant (rag.screen): the one given,
        else the one fitted for this embedding model, else the phrase screen (an embedder
        the learned screen was not fitted for)."""
        if self.settings.screen == "off":
            return None
        if self.settings.screen == "phrases":
            return PhraseScreen()
        if self._screen is not None:
            return self._screen
        return screen_for(self.embedder.name) or PhraseScreen()

    def with_decision(self, decision: DecisionModel) -> Pipeline:
        """A pipeline that shares this one's models and index but decides with
        ``decision`` (the eval's out-of-fold runs)."""
        other = copy.copy(self)
        other._decision = decision
        return other

    def variant(self, **overrides) -> Pipeline:
        """A pipeline that shares this one's models and index, with some settings changed
        (the eval's side-by-side runs, e.g. ``conflicts=False``)."""
        other = copy.copy(self)
        other.settings = self.settings.with_overrides(**overrides)
        return other

    def set_model(self, model: str, backend: str = "auto") -> None:
        """Switch the generator (UI settings); the new model loads on next use."""
        with self._lock, self._gen_lock:
            self.settings = self.settings.with_overrides(model=model, backend=backend)
            self._generator = None

    @property
    def retriever(self) -> HybridRetriever | PgRetriever:
        with self._lock:
            if self._retriever is None:
                if self.settings.uses_pgvector:
                    self._retriever = PgRetriever(self.pg_index, self.embedder,
                                                  mode=self.settings.retrieval)
                    return self._retriever
                version = store.current_version(self.index_path).name
                data = store.load(self.index_path, embedding_model=self.embedder.name,
                                  mmap=True)
                self._retriever = HybridRetriever(data, self.embedder,
                                                  mode=self.settings.retrieval)
                self._version = version
            return self._retriever

    @property
    def pg_index(self):
        """The index in PostgreSQL (``settings.pg_url``), shared by the pipelines of this
        process."""
        from index.pgvector import shared_index

        s = self.settings
        return shared_index(s.pg_url.get_secret_value(), s.pg_schema, s.pg_pool_size)

    def index_exists(self) -> bool:
        """Whether the index is there (False too while its PostgreSQL is unreachable)."""
        if not self.settings.uses_pgvector:
            return store.exists(self.index_path)
        try:
            return self.pg_index.exists()
        except RagError:
            return False

    @property
    def index_location(self) -> str:
        """The index folder, or the PostgreSQL server and schema (no password)."""
        return self.settings.index_location

    def refresh(self) -> bool:
        """Drop the loaded index if another process has replaced it since (``rag index``
        while a server or the worker runs); the next question loads the new one."""
        with self._lock:
            if self._retriever is None or self.settings.uses_pgvector:
                return False  # PostgreSQL answers from its committed index
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
        if mode == "condense":  # the rewrite of a follow-up question (rag.chat)
            return condense_samples()
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
        for mode in ("verified", "naive", "condense"):
            if messages[:1] == self.prompt_samples(mode)[0][:1]:
                self.prime(generator, mode)

    # ---- indexing ---------------------------------------------------------------
    def index(self, corpus: Path | None = None, rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        with self._lock:
            if self.settings.uses_pgvector:
                from index.pg_builder import build_pg_index

                report = build_pg_index(corpus or self.settings.corpus, self.pg_index,
                                        self.embedder, self.chunker, rebuild=rebuild,
                                        progress=progress)
            else:
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
        if self.settings.uses_pgvector:
            return self.pg_index.documents()
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
        are checked here). A follow-up that leans on them is first rewritten into a
        standalone question (rag.chat), announced by a status event "Searching for: …";
        retrieval and the answer use that question, and the answer is verified against
        the documents alone, whatever the history says. A full line raises
        ``BusyError`` at the first step."""
        q = self.check_question(question)
        turns = self.check_history(history)
        k = k or self.settings.k
        mode = mode or self.settings.answer_mode
        if mode not in ("verified", "naive"):
            raise ValueError(f"answer mode must be verified or naive; got {mode!r}")
        ticket = self.queue.admit()
        try:
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            standalone = search = q
            if needs_rewrite(q, turns):
                yield StreamEvent("status", "reading the question in the conversation")
                rewrite = yield from self._condense(q, turns, timings, ticket)
                # no usable rewrite: answer the question as asked, retrieve with the
                # conversation's last question beside it
                standalone, search = ((rewrite, rewrite) if rewrite is not None else
                                      (q, fallback_search(q, turns)))
                yield StreamEvent("status", SEARCHING + search)
            yield StreamEvent("status", "retrieving")
            t = time.perf_counter()
            pool = self.retriever.retrieve(search,
                                           k if mode == "naive" else self.pool_size(k))
            timings["retrieve_s"] = time.perf_counter() - t
            yield StreamEvent("sources", passages=pool[:k])
            steps = (self._naive(standalone, pool, timings, t0, ticket) if mode == "naive"
                     else self._verified(standalone, pool, k, timings, t0, ticket))
            for event in steps:
                if event.answer is not None:
                    event.answer.question = q
                    event.answer.standalone_question = standalone
                yield event
        finally:
            ticket.close()

    def _condense(self, q: str, turns: list[dict[str, str]], timings: dict,
                  ticket: Ticket) -> Iterator[StreamEvent | str]:
        """Rewrite the follow-up ``q`` into a standalone question with the generator
        (its place in the line first, given back after); returns the question, or None
        when the model's reply is no usable rewrite (``rag.chat.parse_rewrite``)."""
        for position in ticket.wait():
            yield StreamEvent("queued", position=position)
        t = time.perf_counter()
        try:
            generator = self.generator
            self.prime(generator, "condense")
            rewrite = rewrite_question(generator, q, turns)
        finally:
            ticket.release_model()
        timings["rewrite_s"] = time.perf_counter() - t
        return rewrite

    def pool_size(self, k: int) -> int:
        """Passages whose sentences compete to be evidence: ``evidence_pool``, at least k."""
        return max(k, self.settings.evidence_pool)

    def verified_request(self, q: str, evidence: list[Evidence]) -> dict:
        """The generator arguments of a verified answer (the eval replays them)."""
        return {"messages": verified_messages(q, evidence),
                "max_tokens": min(self.settings.max_tokens, VERIFIED_MAX_TOKENS),
                "temperature": self.settings.temperature}

    def _generate(self, request: dict, timings: dict, t0: float, ticket: Ticket,
                  probe: Probe | None = None) -> Iterator[StreamEvent | str]:
        for position in ticket.wait():
            yield StreamEvent("queued", position=position)
        if ticket.waited_s:
            timings["queue_s"] = ticket.waited_s
        t = time.perf_counter()
        text, n = "", 0
        kwargs = {"probe": probe} if probe is not None else {}
        try:
            generator = self.generator
            self._prime_for(generator, request["messages"])
            for piece in generator.stream(**request, **kwargs):
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

    def _read(self, q: str, texts: list[str], timings: dict, ticket: Ticket
              ) -> Iterator[StreamEvent | float | None]:
        """The model's reading of a yes/no draft's sentences (rag.reading), in line for
        the model like a generation; the last item is P(Yes) or None."""
        for position in ticket.wait():
            yield StreamEvent("queued", position=position)
        t = time.perf_counter()
        try:
            p_yes = read_yes_no(self.generator, q, texts)
        finally:
            ticket.release_model()
        timings["reading_s"] = time.perf_counter() - t
        yield p_yes

    def _finish(self, answer: Answer, timings: dict, t0: float,
                notes: Sequence[str] = ()) -> StreamEvent:
        timings["total_s"] = time.perf_counter() - t0
        answer.notes = list(notes)
        answer.tokens_generated = int(timings.pop("tokens", 0))
        answer.timings = timings
        answer.model = self.settings.model
        return StreamEvent("answer", answer=answer)

    def _naive(self, q: str, passages: list[Passage], timings: dict, t0: float,
               ticket: Ticket):
        sources = fit_budget(passages_as_evidence(passages), self.evidence_budget(),
                             self.token_counter())
        text = ""
        request = {"messages": naive_messages(q, sources),
                   "max_tokens": self.settings.max_tokens,
                   "temperature": self.settings.temperature}
        for ev in self._generate(request, timings, t0, ticket):
            if isinstance(ev, str):
                text = ev
            else:
                yield ev
        refused = bool(IDK.search(text)) or not passages
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
        the verified prompt shows. Documents that address the assistant are set aside
        (``screened``): shown to the user, never given to the model as evidence."""
        trusted = self.screened(q, passages).trusted
        return trusted, self.select(trusted)

    def select(self, scored: list[ScoredSentence]) -> list[Evidence]:
        return fit_budget(select_evidence(scored, self.settings.evidence_sentences),
                          self.evidence_budget(), self.token_counter())

    def screened(self, q: str, passages: list[Passage]) -> Screened:
        """Score the passages' sentences and screen their documents. A document is set
        aside when one of its sentences in the passages reads as addressed to the
        assistant (rag.screen)."""
        scored = score_sentences(q, passages, self.embedder, cache=self.sentence_vectors)
        screen = self.screen
        if screen is None or not scored:
            return Screened(scored, scored, [], {})
        # every sentence of the passages, also those too short to be evidence
        spans = [(p, a, b) for p in passages for a, b in (p.sentences or ((p.start, p.end),))]
        texts = [screen_text(normalize_text(p.text[a - p.start:b - p.start]))
                 for p, a, b in spans]
        keep = [i for i, t in enumerate(texts) if len(t.split()) >= SCREEN_MIN_WORDS]
        if not keep:
            return Screened(scored, scored, [], {})
        probs = screen.scores([texts[i] for i in keep],
                              self.sentence_vectors.embed([texts[i] for i in keep]))
        flagged: dict[str, SetAside] = {}
        doc_scores: dict[str, float] = {}
        docs = self.retriever.data.documents
        for i, prob in zip(keep, probs, strict=True):
            p, a, b = spans[i]
            doc_scores[p.doc] = max(doc_scores.get(p.doc, 0.0), float(prob))
            if prob < screen.threshold or (p.doc in flagged and flagged[p.doc].score >= prob):
                continue
            doc = docs.get(p.doc)
            flagged[p.doc] = SetAside(p.doc, p.title, modified_date(getattr(doc, "mtime", 0)),
                                      REASON, a, b, p.text[a - p.start:b - p.start],
                                      float(prob))
        trusted = [s for s in scored if s.doc not in flagged]
        return Screened(trusted, scored, list(flagged.values()), doc_scores)

    def _verified(self, q: str, pool: list[Passage], k: int, timings: dict, t0: float,
                  ticket: Ticket):
        t = time.perf_counter()
        screened = self.screened(q, pool)
        scored, everything, set_aside = screened.trusted, screened.all, screened.set_aside
        evidence = self.select(scored)
        passages = pool[:k]
        timings["evidence_s"] = time.perf_counter() - t
        if not evidence:
            ans = self._refusal(q, passages, "retrieval")
            ans.set_aside = set_aside
            yield self._finish(ans, timings, t0)
            return
        text = ""
        probe = Probe(REFUSAL_TOKEN)
        for ev in self._generate(self.verified_request(q, evidence), timings, t0, ticket,
                                 probe):
            if isinstance(ev, str):
                text = ev
            else:
                yield ev
        t = time.perf_counter()
        decision = self.decision
        dense = [p.dense_score for p in passages]
        out = settle(q, scored, evidence, text, probe, decision, self.verify_config,
                     self.rules, dense)
        if needs_reading(q, out.draft, evidence):  # a yes/no draft: the model's reading
            p_yes = None
            for ev in self._read(q, cited_texts(out.draft, evidence), timings, ticket):
                if isinstance(ev, StreamEvent):
                    yield ev
                else:
                    p_yes = ev
            out = settle(q, scored, evidence, text, probe, decision, self.verify_config,
                         self.rules, dense, math.nan if p_yes is None else p_yes)
        notes = [n for n in (decision_note(decision, self.generator.name, self.backend,
                                           out.features), probe.note) if n]
        answer_text, citations, kept = render(out.draft.sentences, evidence)
        flagged = [s for s in out.draft.sentences if not s.supported]
        if not out.answered or not citations:
            timings["verify_s"] = time.perf_counter() - t
            why = ("unsupported" if not out.draft.shown else
                   f"not covered (coverage {out.coverage:.2f} < {decision.caution_at:.2f})"
                   if out.coverage is not None else
                   f"decision (confidence {out.confidence:.2f} < {decision.caution_at:.2f})")
            ans = self._refusal(q, passages, why, text)
            ans.confidence, ans.evidence, ans.withheld = out.confidence, evidence, answer_text
            ans.coverage = out.coverage
            ans.set_aside = set_aside
            yield self._finish(ans, timings, t0, notes)
            return
        ans = Answer(q, answer_text, False, self._provenance(citations), passages,
                     kept + flagged, mode="verified", raw_answer=text, set_aside=set_aside)
        # a disagreement is shown on what the decision lets through, never instead of it
        conflict = self._conflict(q, answer_text, scored, everything, citations)
        if conflict is not None:
            self._show_conflict(ans, conflict, screened)
        timings["verify_s"] = time.perf_counter() - t
        ans.confidence, ans.evidence, ans.grade = out.confidence, evidence, out.grade
        ans.coverage = out.coverage
        if out.grade == "caution":
            ans.note = CAUTION_MESSAGE
        yield self._finish(ans, timings, t0, notes)

    def token_counter(self):
        """The generator's own token count (llama.cpp's tokenizer), when it has one."""
        count = getattr(self.generator, "count_tokens", None)
        return count if callable(count) else None

    def _conflict(self, q: str, answer: str, scored: list[ScoredSentence],
                  everything: list[ScoredSentence], citations: list[Citation]
                  ) -> Conflict | None:
        """Another document that answers ``q`` otherwise than ``answer``, which rests on
        the sentences it cites (rag.conflicts)."""
        if not self.settings.conflicts or not scored:
            return None
        by_span = {(s.doc, s.start): s for s in everything}
        anchors = [by_span[(c.doc, c.start)] for c in citations if (c.doc, c.start) in by_span]
        return find_conflict(q, answer, anchors, everything, self.sentence_vectors.embed)

    def _show_conflict(self, ans: Answer, c: Conflict, screened: Screened) -> None:
        """Add the rival side to ``ans``: "… The sources disagree: “B” [n]." with B cited.
        A side from a document set aside carries its warning; a side whose document the
        screen finds more likely than not addressed to the assistant (below the set-aside
        threshold) carries a caution."""
        aside = {d.doc for d in screened.set_aside}
        n = len(ans.citations) + 1
        body = " ".join(c.b.text.split()).strip("\"\u201c\u201d").rstrip(".!?;:,")
        warn = (WARNING if c.b.doc in aside else
                CAUTION if screened.doc_scores.get(c.b.doc, 0.0) >= 0.5 else "")
        rival = Citation(n, c.b.doc, c.b.start, c.b.end, c.b.text, c.b.title, warning=warn)
        ans.answer += f" The sources disagree: \u201c{body}\u201d [{n}]."
        ans.citations = ans.citations + self._provenance([rival])
        ans.sentences = ans.sentences + [SentenceSupport(" ".join(c.b.text.split()), [n],
                                                         True, 1.0, quote=True)]
        a_n = next((x.n for x in ans.citations if (x.doc, x.start) == (c.a.doc, c.a.start)), 1)
        ans.conflict = True
        ans.sides = [{"n": m, "doc": s.doc, "start": s.start, "end": s.end,
                      "set_aside": s.doc in aside, "differs": c.kind, "detail": c.detail}
                     for m, s in ((a_n, c.a), (n, c.b))]

    def _provenance(self, citations: list[Citation]) -> list[Citation]:
        return with_provenance(citations, self.retriever.data.documents)

    def evidence_budget(self) -> int:
        """Tokens of evidence a prompt may hold: ``context_tokens``, and never more than
        the context window leaves after the answer, instructions and question."""
        s = self.settings
        return max(64, min(s.context_tokens, s.n_ctx - s.max_tokens - PROMPT_OVERHEAD_TOKENS))

    def _refusal(self, q: str, passages: list[Passage], reason: str, raw: str = ""
                 ) -> Answer:
        docs = list(dict.fromkeys((p.title, p.doc) for p in passages[:3]))  # distinct
        closest = "; ".join(f"{title} ({doc})" for title, doc in docs)
        msg = REFUSAL_MESSAGE + (f" Closest passages: {closest}." if closest else "")
        return Answer(q, msg, True, [], passages, [], mode="verified",
                      raw_answer=raw, refusal_reason=reason)
