"""The generators that run in this process: llama.cpp (GGUF models) and transformers.
``rag.generate.backends`` picks one (or the served one, ``rag.generate.served``); the
``Generator`` protocol and ``Probe`` are in ``rag.generate.base``, which every backend
imports.

Both stream text pieces. Models load lazily on first use or on ``warm_up()``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

from rag.errors import GenerationError, ModelError
from rag.generate.base import (
    AVOID_BIAS,
    Messages,
    Probe,
    avoid_forms,
    refusal_starts,
)
from rag.generate.logits import ProbeRecorder, llama_sampling
from rag.generate.models import resolve_model
from rag.generate.threads import passive_waiting

log = logging.getLogger(__name__)

def llama_available() -> bool:
    """Whether llama-cpp-python is installed."""
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppGenerator:
    """GGUF models through llama-cpp-python. llama.cpp keeps the KV cache of the longest
    common prompt prefix between calls, so a fixed system prompt is processed once.

    ``warm_prefix`` names such fixed prefixes (from sample prompts); their states are
    saved to ``prompt_cache`` (a folder; None: none) so that a new process loads them
    instead of processing them, and a prompt whose prefix is not in the KV cache any
    more (another kind of prompt came between) gets it back from there."""

    backend = "llama"

    def __init__(self, model: str, n_ctx: int = 4096, n_threads: int | None = None,
                 seed: int = 0, prompt_cache: str | os.PathLike | None = None,
                 llama_options: dict | None = None) -> None:
        if n_ctx < 256:
            raise ValueError(f"n_ctx must be at least 256, got {n_ctx}")
        self.name = model
        self.n_ctx = n_ctx
        self.n_threads = n_threads or max(1, os.cpu_count() or 1)
        self.seed = seed
        self.prompt_cache_dir = prompt_cache
        self.llama_options = dict(llama_options or {})  # more llama_cpp.Llama arguments
        self._llm = None
        self._lock = threading.Lock()
        self._load_lock = threading.Lock()
        self.path: str | None = None
        self._formatter = None
        self._cache = None
        self._prefixes: list[list[int]] = []  # longest first

    def warm_up(self) -> None:
        if self._llm is not None:
            return
        with self._load_lock:  # one load, whichever thread asks first
            if self._llm is None:
                self._load()

    def _load(self) -> None:
        kind, path = resolve_model(self.name)
        if kind != "gguf":
            raise ModelError(f"the llama backend needs a GGUF model; {self.name!r} is a "
                             f"Hugging Face model: use --backend transformers")
        if not llama_available():
            raise ModelError("the llama backend needs llama-cpp-python; install it with: "
                             "pip install 'cited-rag[llama]'")
        passive_waiting()  # before llama.cpp's OpenMP loads (rag.generate.threads)
        from llama_cpp import Llama

        try:
            llm = Llama(**{"model_path": path, "n_ctx": self.n_ctx,
                           "n_threads": self.n_threads, "n_threads_batch": self.n_threads,
                           "seed": self.seed, "verbose": False, **self.llama_options})
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load {path} with llama.cpp ({exc})") from exc
        self.path = path
        self._formatter = _template_formatter(llm)
        if self.prompt_cache_dir is not None and self._formatter is not None:
            from rag.generate.prompt_cache import PromptCache, model_key

            self._cache = PromptCache(Path(self.prompt_cache_dir),
                                      model_key(path, self.n_ctx))
        self._llm = llm  # last: other threads take a set _llm as fully loaded

    # ---- fixed prompt prefixes ----------------------------------------------------
    def prompt_tokens(self, messages: Messages) -> list[int] | None:
        """The tokens ``create_chat_completion`` evaluates for ``messages`` (the model's
        own chat template), or None for a model without one."""
        self.warm_up()
        if self._formatter is None:
            return None
        result = self._formatter(messages=messages)
        return self._llm.tokenize(result.prompt.encode("utf-8"),
                                  add_bos=not result.added_special, special=True)

    def warm_prefix(self, samples: list[Messages]) -> int:
        """Put the tokens every one of ``samples`` starts with into the KV cache, from
        the prompt cache when saved before (else processed, then saved). Returns how
        many tokens that prefix has (0: none worth keeping)."""
        from rag.generate.prompt_cache import common_prefix

        seqs = [self.prompt_tokens(m) for m in samples]
        if not seqs or any(t is None for t in seqs):
            return 0
        prefix = common_prefix(seqs)
        if len(prefix) < 8:
            return 0
        with self._lock:
            if prefix not in self._prefixes:
                self._prefixes.append(prefix)
                self._prefixes.sort(key=len, reverse=True)
            self._restore(prefix)
        return len(prefix)

    def _cached_tokens(self, tokens: list[int]) -> int:
        """How many leading ``tokens`` the KV cache holds now."""
        have = self._llm.input_ids[:self._llm.n_tokens]
        n = 0
        for a, b in zip(have, tokens, strict=False):
            if a != b:
                break
            n += 1
        return n

    def _restore(self, prefix: list[int]) -> None:
        """Make the KV cache start with ``prefix`` (caller holds the lock)."""
        if self._cached_tokens(prefix) >= len(prefix):
            return
        if self._cache is not None and self._cache.load(self._llm, prefix):
            return
        self._llm.reset()
        self._llm.eval(prefix)
        if self._cache is not None:
            self._cache.save(self._llm, prefix)

    def _before(self, messages: Messages) -> None:
        """Bring back a known prefix of this prompt that the KV cache lost."""
        if not self._prefixes:
            return
        tokens = self.prompt_tokens(messages) or []
        for prefix in self._prefixes:
            if tokens[:len(prefix)] == prefix:
                if self._cached_tokens(tokens) < len(prefix):
                    self._restore(prefix)
                return

    def count_tokens(self, text: str) -> int:
        self.warm_up()
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False))

    def refusal_ids(self, refusal: str) -> set[int]:
        """First token ids of the refusal's first word, in each letter case."""
        self.warm_up()
        return {self._llm.tokenize(w.encode("utf-8"), add_bos=False, special=False)[0]
                for w in refusal_starts(refusal)}

    def avoid_ids(self, words: Sequence[str]) -> dict[int, float]:
        """Logit biases that keep ``words`` (as whole tokens, with or without a leading
        space, lower-case or capitalised) out of a reply."""
        self.warm_up()
        bias: dict[int, float] = {}
        for text in avoid_forms(words):
            toks = self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if len(toks) == 1:
                bias[toks[0]] = AVOID_BIAS
        return bias

    def stream(self, messages: Messages, max_tokens: int = 200, temperature: float = 0.0,
               stop: list[str] | None = None, probe: Probe | None = None,
               avoid: Sequence[str] | None = None) -> Iterator[str]:
        self.warm_up()
        bias = self.avoid_ids(avoid) if avoid else None
        processors = None
        if probe is not None:
            from llama_cpp import LogitsProcessorList

            processors = LogitsProcessorList([ProbeRecorder(probe,
                                                            self.refusal_ids(probe.refusal))])
        with self._lock:  # one generation at a time on this model
            try:
                self._before(messages)
                for part in self._llm.create_chat_completion(
                        messages=messages, max_tokens=max_tokens, temperature=temperature,
                        top_k=1 if temperature == 0 else 40, stop=stop or [], stream=True,
                        seed=self.seed, **llama_sampling(processors, bias)):
                    piece = part["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as exc:
                raise GenerationError(f"generation failed ({exc})") from exc


class TransformersGenerator:
    """Any Hugging Face causal LM (hub id in the local cache, or a folder), or a GGUF file
    through transformers' gguf loader (de-quantised to fp32; slow on CPU)."""

    backend = "transformers"

    def __init__(self, model: str, seed: int = 0, gguf_file: str | None = None) -> None:
        self.name = model
        self.seed = seed
        self.gguf_file = gguf_file
        self._model = None
        self._tok = None
        self._lock = threading.Lock()

    def warm_up(self) -> None:
        if self._model is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        kind, loc = resolve_model(self.name)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        kwargs = {}
        if kind == "gguf":
            folder, fname = os.path.split(loc)
            loc, kwargs = folder, {"gguf_file": fname}
        try:
            self._tok = AutoTokenizer.from_pretrained(loc, **kwargs)
            self._model = AutoModelForCausalLM.from_pretrained(loc, **kwargs)
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot load {self.name!r} with transformers offline "
                             f"({str(exc).splitlines()[0]}); give a local folder, a .gguf "
                             f"file or a model already in the Hugging Face cache") from exc
        self._model.eval()

    def stream(self, messages: Messages, max_tokens: int = 200, temperature: float = 0.0,
               stop: list[str] | None = None, probe: Probe | None = None,
               avoid: Sequence[str] | None = None) -> Iterator[str]:
        self.warm_up()
        import torch
        from transformers import LogitsProcessorList, TextIteratorStreamer

        inputs = self._tok.apply_chat_template(messages, add_generation_prompt=True,
                                               return_tensors="pt", return_dict=True)
        streamer = TextIteratorStreamer(self._tok, skip_prompt=True, skip_special_tokens=True)
        gen_kwargs = dict(**inputs, max_new_tokens=max_tokens, streamer=streamer,
                          do_sample=temperature > 0,
                          pad_token_id=self._tok.pad_token_id or self._tok.eos_token_id)
        if temperature > 0:
            gen_kwargs["temperature"] = temperature
        if avoid:
            banned = [ids for text in avoid_forms(avoid)
                      if len(ids := self._tok.encode(text, add_special_tokens=False)) == 1]
            if banned:
                gen_kwargs["bad_words_ids"] = banned
        if probe is not None:
            ids = {self._tok.encode(w, add_special_tokens=False)[0]
                   for w in refusal_starts(probe.refusal)}
            recorder = ProbeRecorder(probe, ids)

            def on_scores(input_ids, scores):  # one sequence: numpy in, torch out
                out = recorder(input_ids[0].tolist(), scores[0].float().numpy().copy())
                return torch.from_numpy(out).to(scores.dtype).unsqueeze(0)

            gen_kwargs["logits_processor"] = LogitsProcessorList([on_scores])
        errors: list[BaseException] = []

        def run() -> None:
            try:
                torch.manual_seed(self.seed)
                with torch.inference_mode():
                    self._model.generate(**gen_kwargs)
            except BaseException as exc:  # surfaced in the caller's thread
                errors.append(exc)
                streamer.end()

        with self._lock:
            thread = threading.Thread(target=run, daemon=True)
            thread.start()
            text = ""
            for piece in streamer:
                text += piece
                if stop and any(s in text for s in stop):
                    break
                yield piece
            thread.join()
        if errors:
            raise GenerationError(f"generation failed ({errors[0]})")


def _template_formatter(llm):
    """The chat formatter llama-cpp-python uses for ``llm`` when that is the model's own
    template (``chat_template.default``), else None."""
    template = (llm.metadata or {}).get("tokenizer.chat_template")
    if llm.chat_format != "chat_template.default" or not template or llm.chat_handler:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    eos, bos = llm.token_eos(), llm.token_bos()
    return Jinja2ChatFormatter(
        template=template,
        eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
        bos_token=llm._model.token_get_text(bos) if bos != -1 else "",
        stop_token_ids=[eos])
