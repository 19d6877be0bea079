"""The one pipeline object that the CLI, the UI, the API and the eval all drive: the order
of an answer's steps. Each step lives in its room: the models in ``rag.answer.models``,
the index in ``rag.retrieve.live_index``, the screen in ``rag.grounding.set_aside``, what
the user sees in ``rag.answer.compose``."""

from __future__ import annotations

import copy
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from pathlib import Path

from index.builder import BuildReport
from index.chunking import ChunkerConfig
from index.embed.base import Embedder
from index.embed.embedders import make_embedder
from rag.answer import compose, conversation
from rag.answer.models import Models
from rag.config import Settings
from rag.generate import prompts
from rag.generate.base import Generator, Probe
from rag.generate.queue import (
    GenerationQueue,
    Ticket,
    call_in_line,
    generate_in_line,
    generation_slots,
)
from rag.generate.threads import passive_waiting
from rag.grounding.decision import DecisionModel, decision_note
from rag.grounding.draft import DraftRules, settle
from rag.grounding.reading import cited_texts, needs_reading, read_yes_no
from rag.grounding.screen import Screen
from rag.grounding.set_aside import Screened, screen_passages
from rag.grounding.verify import VerifyConfig
from rag.retrieve.evidence import (
    ScoredSentence,
    SentenceVectors,
    passages_as_evidence,
    select_evidence,
)
from rag.retrieve.live_index import LiveIndex
from rag.retrieve.retrievers import HybridRetriever, PgRetriever
from rag.types import Answer, Evidence, Passage, StreamEvent


class Pipeline:
    """retrieve -> select evidence -> generate -> verify. Models load lazily."""

    def __init__(self, settings: Settings | None = None, embedder: Embedder | None = None,
                 generator: Generator | None = None, decision: DecisionModel | None = None,
                 rules: DraftRules | None = None, screen: Screen | None = None,
                 queue: GenerationQueue | None = None) -> None:
        passive_waiting()  # before torch or llama.cpp loads (rag.generate.threads)
        self.settings = s = settings or Settings()
        self.chunker = ChunkerConfig(s.chunk_words, s.overlap_words)
        self.embedder = embedder or make_embedder(s.embedding_model, s.embedding_backend)
        self.models = Models(s, self.embedder, generator, screen)
        self._decision = decision
        self.rules = rules or DraftRules()
        self.verify_config = VerifyConfig()
        self.store = s.vector_store()
        self.live = LiveIndex(self.store, self.embedder, s.retrieval)
        self._lock = threading.RLock()
        self.sentence_vectors = SentenceVectors(self.embedder)
        # pipelines that share a generator share its queue (the worker passes one)
        self.queue = queue or GenerationQueue(s.queue_limit, slots=generation_slots(s))

    # ---- what it answers with, and from -------------------------------------------
    @property
    def generator(self) -> Generator:
        return self.models.generator(self.settings)

    @property
    def decision(self) -> DecisionModel:
        return self.models.decision(self.settings, self._decision)

    @property
    def retriever(self) -> HybridRetriever | PgRetriever:
        return self.live.retriever

    def variant(self, decision: DecisionModel | None = None,
                generator: Generator | None = None, **overrides) -> Pipeline:
        """A pipeline that shares this one's models and index, with some settings changed
        (the eval's side-by-side runs, e.g. ``conflicts=False``), or another decision (its
        out-of-fold runs) or generator (rag bench)."""
        other = copy.copy(self)
        other.settings = self.settings.with_overrides(**overrides)
        other._decision = decision or self._decision
        if generator is not None:
            other.models = self.models.with_generator(generator)
        return other

    def update(self, **overrides) -> None:
        """Change settings (the UI's); another model or backend loads on next use."""
        with self._lock:
            old = self.settings
            self.settings = old.with_overrides(**overrides)
            if (self.settings.model, self.settings.backend) != (old.model, old.backend):
                self.models.drop_generator()

    def warm_up(self) -> None:
        """Load the embedder, the index and the generator (rag.answer.models)."""
        self.models.warm_up(self.settings, lambda: self.retriever)

    def start_warming(self) -> None:
        """Once per pipeline: load the embedder while the generator loads in the
        background (the worker's first question for these settings)."""
        self.models.start_warming(self.settings)

    # ---- the index (rag.retrieve.live_index, index.stores) ------------------------
    def index(self, corpus: Path | None = None, rebuild: bool = False,
              progress: Callable[[str, int, int], None] | None = None) -> BuildReport:
        return self.live.build(corpus or self.settings.corpus, self.chunker, rebuild=rebuild,
                               progress=progress)

    def index_exists(self) -> bool:
        """Whether the index is there (False too while its server is unreachable)."""
        return self.store.exists()

    def document_texts(self) -> dict[str, str]:
        """Every indexed document's text (the one its spans index), by id."""
        return self.live.document_texts()

    # ---- answering ------------------------------------------------------------------
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
        """The answer's steps as they happen (``StreamEvent``: status, sources, queued,
        token, answer). The question and ``history`` (earlier turns) are checked here, the
        one check; a follow-up is first rewritten into a standalone question
        (rag.answer.conversation), which retrieval and the answer use. A full line raises
        ``BusyError``."""
        q = conversation.check_question(question, self.settings.max_question_chars)
        turns = conversation.check_history(history)
        k = k or self.settings.k
        mode = mode or self.settings.answer_mode
        if mode not in ("verified", "naive"):
            raise ValueError(f"answer mode must be verified or naive; got {mode!r}")
        ticket = self.queue.admit()
        try:
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            standalone = search = q
            if conversation.needs_rewrite(q, turns):
                yield StreamEvent("status", "reading the question in the conversation")
                rewrite = yield from self._condense(q, turns, timings, ticket)
                # no usable rewrite: answer the question as asked, retrieve with the
                # conversation's last question beside it
                standalone, search = ((rewrite, rewrite) if rewrite is not None else
                                      (q, conversation.fallback_search(q, turns)))
                yield StreamEvent("status", conversation.SEARCHING + search)
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
        """Rewrite the follow-up ``q`` with the generator (its place in the line first);
        returns the question, or None when the reply is no usable rewrite."""
        for position in ticket.wait():
            yield StreamEvent("queued", position=position)
        t = time.perf_counter()
        try:
            generator = self.generator
            self.models.prime(generator, "condense")
            rewrite = conversation.rewrite_question(generator, q, turns)
        finally:
            ticket.release_model()
        timings["rewrite_s"] = time.perf_counter() - t
        return rewrite

    def _in_line(self, request: dict, timings: dict, t0: float, ticket: Ticket,
                 probe: Probe | None = None) -> Iterator[StreamEvent | str]:
        """The generation step (rag.generate.queue): the model loads when its turn comes."""
        ready = partial(self.models.primed, self.settings, request["messages"])
        return generate_in_line(ticket, ready, request, timings, t0, probe)

    def _answer(self, ans: Answer, timings: dict, t0: float, notes: Sequence[str] = ()
                ) -> StreamEvent:
        return StreamEvent("answer", answer=compose.finish(ans, timings, t0,
                                                           self.settings.model, notes))

    def _naive(self, q: str, passages: list[Passage], timings: dict, t0: float,
               ticket: Ticket) -> Iterator[StreamEvent]:
        sources = prompts.fit_evidence(passages_as_evidence(passages), self.settings,
                                       self.models.token_counter(self.settings))
        text = ""
        request = prompts.naive_request(q, sources, self.settings)
        for ev in self._in_line(request, timings, t0, ticket):
            if isinstance(ev, str):
                text = ev
            else:
                yield ev
        yield self._answer(compose.naive_answer(q, text, passages, sources), timings, t0)

    def _verified(self, q: str, pool: list[Passage], k: int, timings: dict, t0: float,
                  ticket: Ticket) -> Iterator[StreamEvent]:
        t = time.perf_counter()
        screened = self.screened(q, pool)
        evidence = self.select(screened.trusted)
        passages = pool[:k]
        timings["evidence_s"] = time.perf_counter() - t
        if not evidence:
            ans = compose.refusal(q, passages, "retrieval")
            ans.set_aside = screened.set_aside
            yield self._answer(ans, timings, t0)
            return
        text = ""
        probe = Probe(prompts.REFUSAL_TOKEN)
        request = prompts.verified_request(q, evidence, self.settings)
        for ev in self._in_line(request, timings, t0, ticket, probe):
            if isinstance(ev, str):
                text = ev
            else:
                yield ev
        t = time.perf_counter()
        decision = self.decision
        dense = [p.dense_score for p in passages]
        out = settle(q, screened.trusted, evidence, text, probe, decision,
                     self.verify_config, self.rules, dense)
        if needs_reading(q, out.draft, evidence):  # a yes/no draft: the model's reading
            p_yes = None
            texts = cited_texts(out.draft, evidence)
            for ev in call_in_line(ticket, lambda: read_yes_no(self.generator, q, texts),
                                   timings, "reading_s"):
                if isinstance(ev, StreamEvent):
                    yield ev
                else:
                    p_yes = ev
            out = settle(q, screened.trusted, evidence, text, probe, decision,
                         self.verify_config, self.rules, dense,
                         math.nan if p_yes is None else p_yes)
        notes = [n for n in (decision_note(decision, self.generator.name,
                                           self.models.backend(self.generator),
                                           out.features), probe.note) if n]
        documents = self.retriever.data.documents
        ans = compose.verified_answer(q, out, evidence, passages, text, decision, screened,
                                      documents)
        if not ans.refused:
            # a disagreement is shown on what the decision lets through, never instead
            conflict = (compose.rival(q, ans, screened, self.sentence_vectors.embed)
                        if self.settings.conflicts else None)
            if conflict is not None:
                compose.add_conflict(ans, conflict, screened, documents)
            ans = compose.graded(ans, out, evidence)
        timings["verify_s"] = time.perf_counter() - t
        yield self._answer(ans, timings, t0, notes)

    # ---- the evidence step's parts (the eval calls them too) -------------------------
    def pool_size(self, k: int) -> int:
        """Passages whose sentences compete to be evidence: ``evidence_pool``, at least k."""
        return max(k, self.settings.evidence_pool)

    def screened(self, q: str, passages: list[Passage]) -> Screened:
        """The passages' sentences scored, their documents screened (set aside)."""
        return screen_passages(q, passages, self.embedder, self.sentence_vectors,
                               self.models.screen(self.settings),
                               self.retriever.data.documents)

    def select(self, scored: list[ScoredSentence]) -> list[Evidence]:
        return prompts.fit_evidence(select_evidence(scored, self.settings.evidence_sentences),
                                    self.settings, self.models.token_counter(self.settings))

    def evidence_for(self, q: str, passages: list[Passage]
                     ) -> tuple[list[ScoredSentence], list[Evidence]]:
        """The trusted scored sentences, best first, and the numbered evidence the
        verified prompt shows."""
        trusted = self.screened(q, passages).trusted
        return trusted, self.select(trusted)
