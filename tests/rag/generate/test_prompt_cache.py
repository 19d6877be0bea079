"""The saved prompt prefix (rag.generate.prompt_cache) on a real model: SmolLM2-135M in
llama.cpp."""

from __future__ import annotations

import pytest

from rag.answer.models import prompt_samples
from rag.generate.local import LlamaCppGenerator
from rag.generate.prompt_cache import PromptCache, common_prefix
from rag.generate.prompts import naive_messages, verified_messages
from rag.types import Evidence

pytestmark = pytest.mark.model

EVIDENCE = [Evidence(1, "museum.txt", "", 0, 36, "The museum opens at ten on Sundays.", 1.0)]
MESSAGES = verified_messages("When does the museum open on Sundays?", EVIDENCE)


def _gen(folder=None) -> LlamaCppGenerator:
    gen = LlamaCppGenerator("smollm2-135m", n_ctx=2048, prompt_cache=folder)
    gen.warm_up()
    return gen


def _count_evals(gen: LlamaCppGenerator) -> list[int]:
    """Record how many tokens each llama.cpp eval call processes."""
    calls: list[int] = []
    real = gen._llm.eval

    def spy(tokens):
        calls.append(len(tokens))
        return real(tokens)

    gen._llm.eval = spy
    return calls


def test_common_prefix():
    assert common_prefix([[1, 2, 3], [1, 2, 4], [1, 2]]) == [1, 2]
    assert common_prefix([[5], [6]]) == [] and common_prefix([]) == []


def test_prompt_tokens_are_what_llama_cpp_evaluates():
    gen = _gen()
    tokens = gen.prompt_tokens(MESSAGES)
    "".join(gen.stream(MESSAGES, max_tokens=4))
    assert list(gen._llm.input_ids[:len(tokens)]) == tokens


def test_a_new_process_loads_the_prefix_instead_of_processing_it(tmp_path):
    samples = prompt_samples("verified")
    first = _gen(tmp_path)
    n = first.warm_prefix(samples)
    assert n > 100  # instructions, examples, template and the evidence header
    assert len(list(tmp_path.glob("*.llstate"))) == 1
    reference = "".join(_gen().stream(MESSAGES, max_tokens=24))  # no cache at all
    second = _gen(tmp_path)  # a fresh llama.cpp context, as in a new process
    evals = _count_evals(second)
    assert second.warm_prefix(samples) == n
    assert evals == []  # loaded, not processed
    assert second._llm.n_tokens == n
    assert "".join(second.stream(MESSAGES, max_tokens=24)) == reference


def test_a_prefix_lost_to_another_kind_of_prompt_comes_back_from_disk(tmp_path):
    gen = _gen(tmp_path)
    verified = gen.warm_prefix(prompt_samples("verified"))
    gen.warm_prefix(prompt_samples("naive"))  # now the KV cache holds this one
    naive = naive_messages("When does the museum open on Sundays?", EVIDENCE)
    "".join(gen.stream(naive, max_tokens=2))
    evals = _count_evals(gen)
    "".join(gen.stream(MESSAGES, max_tokens=2))
    # the verified prefix was loaded: the first thing processed is the rest of the prompt
    assert evals and evals[0] == len(gen.prompt_tokens(MESSAGES)) - verified
    assert list(gen._llm.input_ids[:verified]) == gen.prompt_tokens(MESSAGES)[:verified]


def test_a_damaged_or_foreign_file_is_ignored_and_written_again(tmp_path):
    samples = prompt_samples("verified")
    gen = _gen(tmp_path)
    gen.warm_prefix(samples)
    (path,) = tmp_path.glob("*.llstate")
    path.write_bytes(b"not a llama.cpp state")
    fresh = _gen(tmp_path)
    evals = _count_evals(fresh)
    n = fresh.warm_prefix(samples)
    assert evals == [n]  # processed again
    assert path.stat().st_size > 1000  # and saved again
    cache = PromptCache(tmp_path, fresh._cache.key)
    other = [1, 2, 3]
    assert not cache.load(fresh._llm, other)  # no file for these tokens
