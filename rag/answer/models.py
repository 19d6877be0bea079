"""The models a pipeline answers with, and their lifecycle: the embedder, the generator
(loaded on first use, or in the background while the embedder loads), the decision
fitted for that generator on its backend, the screen fitted for that embedder, and the
generator's prompt cache primed with the fixed part of each kind of prompt."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace

from index.embed.base import Embedder
from rag.answer.conversation import condense_samples
from rag.config import Settings
from rag.generate.backends import generator_for, served_generator
from rag.generate.base import Generator
from rag.generate.prompts import naive_messages, verified_messages
from rag.grounding.decision import DecisionModel, decision_for
from rag.grounding.screen import PhraseScreen, Screen, screen_for
from rag.types import Evidence

Messages = list[dict[str, str]]


def prompt_samples(mode: str) -> list[Messages]:
    """Two prompts of ``mode`` on made-up evidence: what they share is the fixed part of
    every prompt of that mode (instructions, template, evidence header)."""
    def ev(n: int, text: str) -> Evidence:
        return Evidence(n, "sample.txt", "", 0, len(text), text, 1.0)

    a = [ev(1, "The ferry leaves the harbour at noon."), ev(2, "Tickets cost four pounds.")]
    b = [ev(1, "Night buses stopped running in May."), ev(2, "Drivers asked for staff.")]
    if mode == "condense":  # the rewrite of a follow-up question (rag.answer.conversation)
        return condense_samples()
    make = naive_messages if mode == "naive" else verified_messages
    return [make("When does the ferry leave?", a), make("Who stopped the buses?", b)]


class Models:
    """What one pipeline answers with, shared by its copies (``Pipeline.variant``). The
    settings are passed in on each call: a copy may have other settings."""

    def __init__(self, settings: Settings, embedder: Embedder,
                 generator: Generator | None = None, screen: Screen | None = None) -> None:
        self.embedder = embedder
        self._generator = generator
        if generator is None and settings.backend == "openai":
            self._generator = served_generator(settings)  # checks the URL up front
        self._screen = screen
        self._lock = threading.Lock()
        self._primed: set[tuple[int, str]] = set()
        self._warm_lock = threading.Lock()
        self.warming = False  # start_warming has run

    # ---- the generator ------------------------------------------------------------
    def generator(self, settings: Settings) -> Generator:
        """The generator, loaded on first use (``rag.generate.backends.generator_for``)."""
        with self._lock:
            if self._generator is None:
                self._generator = generator_for(settings)
            return self._generator

    @property
    def loaded_generator(self) -> Generator | None:
        """The generator if it is loaded (None: not yet), without loading it."""
        return self._generator

    def drop_generator(self) -> None:
        """Forget the generator (another model was chosen); the next use loads one."""
        with self._lock:
            self._generator = None

    def with_generator(self, generator: Generator) -> Models:
        """Models like these, answering with ``generator``."""
        other = Models.__new__(Models)
        other.__dict__.update(self.__dict__)
        other._generator, other._lock = generator, threading.Lock()
        return other

    @staticmethod
    def backend(generator: Generator) -> str:
        """How ``generator`` runs: "llama", "transformers" or "openai" (a decision is
        fitted for one); "" for a generator that does not say."""
        return getattr(generator, "backend", "")

    def token_counter(self, settings: Settings) -> Callable[[str], int] | None:
        """The generator's own token count (llama.cpp's tokenizer), when it has one."""
        count = getattr(self.generator(settings), "count_tokens", None)
        return count if callable(count) else None

    # ---- the decision and the screen ----------------------------------------------
    def decision(self, settings: Settings, given: DecisionModel | None = None
                 ) -> DecisionModel:
        """``given``, else the graded decision fitted for the generator on its backend
        (rag.grounding.decision), at the ``answer_threshold`` and ``caution_threshold``
        settings when they are set."""
        if given is None:
            generator = self.generator(settings)
            given = decision_for(generator.name, self.backend(generator))
        model, s = given, settings
        if s.answer_threshold is None and s.caution_threshold is None:
            return model
        high = model.threshold if s.answer_threshold is None else s.answer_threshold
        low = model.caution_at if s.caution_threshold is None else s.caution_threshold
        return replace(model, threshold=high, yes_no_threshold=model.yes_no_threshold
                       if s.answer_threshold is None else s.answer_threshold,
                       low=low if model.coverage is not None else min(low, high))

    def screen(self, settings: Settings) -> Screen | None:
        """The screen for passages that address the assistant (rag.grounding.screen): the
        one given, else the one fitted for this embedding model, else the phrase screen
        (an embedder the learned screen was not fitted for)."""
        if settings.screen == "off":
            return None
        if settings.screen == "phrases":
            return PhraseScreen()
        if self._screen is not None:
            return self._screen
        return screen_for(self.embedder.name) or PhraseScreen()

    # ---- loading and the prompt cache ---------------------------------------------
    def prime(self, generator: Generator, mode: str) -> None:
        """Have the generator keep the fixed part of ``mode``'s prompts in its prompt
        cache (loaded from disk when saved before), so a question only pays for its own
        tokens. Generators without a prompt cache are left alone."""
        warm = getattr(generator, "warm_prefix", None)
        key = (id(generator), mode)
        if warm is None or key in self._primed:
            return
        warm(prompt_samples(mode))
        self._primed.add(key)

    def prime_for(self, generator: Generator, messages: Messages) -> None:
        """Prime the generator for the kind of prompt ``messages`` is."""
        for mode in ("verified", "naive", "condense"):
            if messages[:1] == prompt_samples(mode)[0][:1]:
                self.prime(generator, mode)

    def primed(self, settings: Settings, messages: Messages) -> Generator:
        """The generator, loaded, its prompt cache primed for ``messages``' kind."""
        generator = self.generator(settings)
        self.prime_for(generator, messages)
        return generator

    def warm_up(self, settings: Settings, load_index: Callable[[], object]) -> None:
        """Load the embedder, the index (``load_index``) and the generator, the generator
        in a second thread meanwhile (its file is mostly read from disk), then prime its
        prompt cache."""
        loader = self.warm_in_background(settings)
        if hasattr(self.embedder, "warm_up"):
            self.embedder.warm_up()
        load_index()
        loader.join()
        generator = self.generator(settings)
        generator.warm_up()  # raises what the background load hit
        self.prime(generator, settings.answer_mode)

    def warm_in_background(self, settings: Settings) -> threading.Thread:
        """Start loading the generator (and priming its prompt cache) in a daemon
        thread; errors are left for the next use of the generator to raise."""
        def load() -> None:
            try:
                gen = self.generator(settings)
                gen.warm_up()
                self.prime(gen, settings.answer_mode)
            except Exception:  # noqa: BLE001 - raised again where the generator is used
                pass

        thread = threading.Thread(target=load, daemon=True, name="rag-generator-load")
        thread.start()
        return thread

    def start_warming(self, settings: Settings) -> None:
        """Once: load the embedder now while the generator loads in the background (the
        first question waits for this; later ones find it done)."""
        with self._warm_lock:
            if not self.warming:
                self.warm_in_background(settings)
                if hasattr(self.embedder, "warm_up"):
                    self.embedder.warm_up()
                self.warming = True
