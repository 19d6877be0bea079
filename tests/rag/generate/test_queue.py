"""The line in front of the generator (rag.generate.queue) and the pipeline's streamed steps."""

from __future__ import annotations

import threading
import time

import pytest

from rag.config import Settings
from rag.errors import BusyError
from rag.generate.queue import GenerationQueue
from rag.pipeline import Pipeline, StreamEvent
from tests.fakes import ScriptedGenerator, always_answer


def _wait_until(cond, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_first_come_first_served_with_places():
    q = GenerationQueue(limit=5, heartbeat=0.05)
    a, b, c = q.admit(), q.admit(), q.admit()
    assert list(a.wait()) == []  # the model is free: no waiting
    seen: dict[str, list[int]] = {"b": [], "c": []}
    order: list[str] = []

    def run(name, ticket):
        for pos in ticket.wait():
            seen[name].append(pos)
        order.append(name)
        ticket.release_model()
        ticket.close()

    tb = threading.Thread(target=run, args=("b", b))
    tb.start()
    _wait_until(lambda: b.position() == 1)
    tc = threading.Thread(target=run, args=("c", c))
    tc.start()
    _wait_until(lambda: c.position() == 2)
    assert q.waiting == 2 and q.admitted == 3
    a.release_model()
    a.close()
    tb.join(5)
    tc.join(5)
    assert order == ["b", "c"]
    assert seen["b"][0] == 1 and set(seen["b"]) == {1}
    assert seen["c"][0] == 2 and seen["c"] == sorted(seen["c"], reverse=True)  # moved up
    assert q.admitted == 0 and q.waiting == 0


def test_a_full_line_is_busy_with_a_retry_delay():
    q = GenerationQueue(limit=1)
    a, b = q.admit(), q.admit()
    with pytest.raises(BusyError) as err:
        q.admit()
    assert err.value.retry_after >= 1 and "busy" in str(err.value)
    b.close()  # a place frees up
    q.admit().close()
    a.close()
    assert q.admitted == 0


def test_retry_after_follows_the_recent_turns():
    q = GenerationQueue(limit=3)
    t = q.admit()
    list(t.wait())
    time.sleep(0.2)
    t.release_model()
    t.close()
    assert q.stats()["turn_s"] == pytest.approx(0.2, abs=0.15)
    holders = [q.admit() for _ in range(3)]
    list(holders[0].wait())
    assert q.retry_after() == 1  # ceil(0.2 s x 1 in line)
    for h in holders:
        h.close()


def test_a_waiter_that_leaves_frees_its_place_and_heartbeats_repeat():
    q = GenerationQueue(limit=4, heartbeat=0.05)
    a, b = q.admit(), q.admit()
    list(a.wait())
    steps = b.wait()
    positions = [next(steps) for _ in range(3)]  # the same place, repeated
    assert positions == [1, 1, 1]
    steps.close()
    b.close()
    assert q.waiting == 0 and q.admitted == 1
    a.close()
    assert q.admitted == 0


class Gate(ScriptedGenerator):
    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.open = threading.Event()
        self.holding = threading.Event()

    def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
        self.holding.set()
        assert self.open.wait(10)
        yield from super().stream(messages, max_tokens, temperature, stop)


DOCS = {
    "ferry.txt": "Ferry timetable\n\nThe ferry to the island leaves at noon every day. "
                 "Tickets cost four pounds.\n",
    "bus.txt": "Night buses\n\nThe night bus was cancelled by the council in May. "
               "Drivers had asked for more staff.\n",
}
QUESTION = "When does the ferry to the island leave?"
REPLY = "The ferry to the island leaves at noon every day [1]."


def _pipe(tmp_path, embedder, generator, **kw) -> Pipeline:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    pipe = Pipeline(Settings(corpus=corpus, index=tmp_path / "idx", **kw), embedder=embedder,
                    generator=generator, decision=always_answer())
    pipe.index()
    return pipe


def test_sources_come_before_the_first_token(tmp_path, fake_embedder):
    pipe = _pipe(tmp_path, fake_embedder, ScriptedGenerator(REPLY))
    events = list(pipe.ask_stream(QUESTION))
    kinds = [e.kind for e in events]
    assert kinds.index("sources") < kinds.index("token") < kinds.index("answer")
    sources = events[kinds.index("sources")].passages
    answer = events[-1].answer
    assert [p.chunk_id for p in sources] == [p.chunk_id for p in answer.retrieved]
    wire = events[kinds.index("sources")].to_dict()
    assert wire["kind"] == "sources" and wire["sources"][0]["text"] == sources[0].text
    assert StreamEvent("queued", position=3).to_dict() == {"kind": "queued", "position": 3}


def test_a_second_question_waits_in_line_and_knows_its_place(tmp_path, fake_embedder):
    gen = Gate(REPLY)
    pipe = _pipe(tmp_path, fake_embedder, gen, queue_limit=2)
    q = QUESTION
    first = threading.Thread(target=pipe.ask, args=(q,))
    first.start()
    assert gen.holding.wait(10)
    second = pipe.ask_stream(q)
    got = []
    for ev in second:
        got.append(ev)
        if ev.kind == "queued":
            break
    assert [e.kind for e in got] == ["status", "sources", "queued"] and got[-1].position == 1
    gen.open.set()
    rest = list(second)
    first.join(10)
    assert rest[-1].kind == "answer" and not rest[-1].answer.refused
    assert rest[-1].answer.timings["queue_s"] >= 0
    assert pipe.queue.admitted == 0


def test_a_failing_generator_gives_the_model_back(tmp_path, fake_embedder):
    class Broken(ScriptedGenerator):
        def stream(self, messages, max_tokens=200, temperature=0.0, stop=None, probe=None):
            raise RuntimeError("boom")
            yield  # pragma: no cover

    pipe = _pipe(tmp_path, fake_embedder, Broken(""))
    with pytest.raises(RuntimeError):
        pipe.ask(QUESTION)
    assert pipe.queue.admitted == 0 and pipe.queue.waiting == 0


def test_history_is_checked(tmp_path, fake_embedder):
    from rag.errors import QuestionError

    pipe = _pipe(tmp_path, fake_embedder, ScriptedGenerator("NOT IN DOCUMENTS"))
    ok = [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": REPLY}]
    assert pipe.ask("And the night bus?", history=ok).question == "And the night bus?"
    with pytest.raises(QuestionError, match="history turn 1"):
        pipe.ask("And the night bus?", history=[{"role": "system", "content": "x"}])


def test_slots_answer_several_at_once():
    q = GenerationQueue(limit=1, slots=2, heartbeat=0.05)
    a, b, c = q.admit(), q.admit(), q.admit()
    assert list(a.wait()) == [] and list(b.wait()) == []  # two hold the model at once
    steps = c.wait()
    assert next(steps) == 1 and q.waiting == 1
    with pytest.raises(BusyError):
        q.admit()
    a.release_model()
    assert list(steps) == []  # c got a's slot
    for t in (a, b, c):
        t.close()
    assert q.admitted == 0


def test_only_a_served_model_takes_several_slots(tmp_path, fake_embedder):
    from rag.generate.queue import generation_slots

    assert generation_slots(Settings(generation_slots=4)) == 1
    assert generation_slots(Settings(generation_slots=4, backend="openai",
                                     llm_url="http://127.0.0.1:1/v1")) == 4
