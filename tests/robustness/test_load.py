"""Issue 8, point 3: 20 concurrent clients against the UI's ``/ask`` API. Requests queue
(one generation at a time), none fails, every citation is exact, memory stays bounded."""

from __future__ import annotations

import os
import statistics
import threading
import time

import pytest

from rag.config import Settings
from rag.pipeline import Pipeline
from tests.fakes import HashEmbedder, ScriptedGenerator

DOCS = {
    "ferry.txt": "Ferry timetable\n\nThe ferry to the island leaves at noon every day. "
                 "Tickets cost four pounds.\n",
    "bus.txt": "Night buses\n\nThe night bus was cancelled by the council in May. "
               "Drivers had asked for more staff.\n",
    "library.txt": "Library hours\n\nThe library opens at nine on Saturdays. "
                   "It closes at five.\n",
}
QUESTIONS = {  # question -> (reply the fake model gives, document it must cite)
    "When does the ferry to the island leave?":
        ("The ferry to the island leaves at noon every day [1].", "ferry.txt"),
    "Who cancelled the night bus?":
        ("The night bus was cancelled by the council in May [1].", "bus.txt"),
    "When does the library open on Saturdays?":
        ("The library opens at nine on Saturdays [1].", "library.txt"),
}


def rss_bytes() -> int:
    """This process's resident memory (Linux /proc; no psutil dependency)."""
    with open("/proc/self/statm", encoding="ascii") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class SlowCountingGenerator(ScriptedGenerator):
    """Answers the question it is asked, a few characters at a time with a pause per
    piece (like a model), and records how many generations ever ran at once."""

    def __init__(self, delay: float = 0.004) -> None:
        super().__init__("")
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self.calls = 0
        self._lock = threading.Lock()

    def stream(self, messages, max_tokens: int = 200, temperature: float = 0.0, stop=None,
               probe=None):
        prompt = messages[-1]["content"]
        reply = next(r for q, (r, _) in QUESTIONS.items() if q in prompt)
        with self._lock:
            self.active += 1
            self.calls += 1
            self.max_active = max(self.max_active, self.active)
        try:
            for i in range(0, len(reply), 4):
                time.sleep(self.delay)
                yield reply[i:i + 4]
        finally:
            with self._lock:
                self.active -= 1


def run_load(tmp_path, seconds: float, clients: int = 20) -> dict:
    from gradio_client import Client

    from tests.ui.conftest import serve

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text, encoding="utf-8")
    gen = SlowCountingGenerator()
    pipe = Pipeline(Settings(corpus=corpus, index=tmp_path / "index"),
                    embedder=HashEmbedder(), generator=gen)
    latencies: list[float] = []
    failures: list[str] = []
    lock = threading.Lock()
    with serve(pipe) as url:
        warm = Client(url, verbose=False)
        warm.predict("Who cancelled the night bus?", api_name="/ask")  # index + load
        rss_before = rss_bytes()
        deadline = time.monotonic() + seconds
        start = threading.Barrier(clients)

        def client(n: int) -> None:
            c = Client(url, verbose=False)
            qs = list(QUESTIONS)
            i = n
            start.wait(timeout=60)
            while time.monotonic() < deadline:
                q = qs[i % len(qs)]
                i += 1
                t = time.perf_counter()
                try:
                    ans = c.predict(q, api_name="/ask")
                    took = time.perf_counter() - t
                    problem = check_answer(pipe, q, ans)
                except Exception as exc:  # noqa: BLE001 - every failure is recorded
                    took, problem = time.perf_counter() - t, f"{type(exc).__name__}: {exc}"
                with lock:
                    latencies.append(took)
                    if problem:
                        failures.append(problem)

        threads = [threading.Thread(target=client, args=(n,), daemon=True)
                   for n in range(clients)]
        for t in threads:
            t.start()
        samples = []  # RSS every second while the load runs
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline + 120:
            samples.append(rss_bytes() / 2**20)
            time.sleep(1)
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads), "a client hung"
        rss_after = rss_bytes()
    lat = sorted(latencies)
    stats = {"requests": len(lat), "failures": failures, "max_active": gen.max_active,
             "p50": statistics.median(lat), "p95": lat[int(0.95 * (len(lat) - 1))],
             "max": lat[-1], "rss_before_mb": rss_before / 2**20,
             "rss_after_mb": rss_after / 2**20, "throughput": len(lat) / seconds,
             "rss_samples": samples}
    print(f"\n/ask load, {clients} clients, {seconds:.0f}s: {stats['requests']} requests "
          f"({stats['throughput']:.1f}/s), {len(failures)} failures, p50 "
          f"{stats['p50']:.2f}s, p95 {stats['p95']:.2f}s, max {stats['max']:.2f}s, "
          f"max concurrent generations {gen.max_active}, RSS {stats['rss_before_mb']:.0f}"
          f" -> {stats['rss_after_mb']:.0f} MB (at 25/50/75%: "
          f"{', '.join(f'{samples[int(f * (len(samples) - 1))]:.0f}' for f in (.25, .5, .75))})")
    return stats


def check_answer(pipe: Pipeline, question: str, ans: dict) -> str:
    """'' if the answer is right and every citation quotes its document exactly."""
    doc = QUESTIONS[question][1]
    if ans.get("refused") or not ans.get("citations"):
        return f"{question!r}: refused or uncited: {ans.get('answer')!r}"
    for c in ans["citations"]:
        text = (pipe.settings.corpus / c["doc"]).read_text(encoding="utf-8")
        if text[c["start"]:c["end"]] != c["text"]:
            return f"{question!r}: citation {c} does not match {c['doc']}"
    if {c["doc"] for c in ans["citations"]} != {doc}:
        return f"{question!r}: cited {[c['doc'] for c in ans['citations']]}, not {doc}"
    return ""


def _assert_healthy(stats: dict) -> None:
    assert stats["failures"] == [], stats["failures"][:5]
    assert stats["requests"] >= 20
    assert stats["max_active"] == 1, "generations must queue, one at a time"
    assert stats["rss_after_mb"] - stats["rss_before_mb"] < 300


def test_bad_questions_and_auth_over_the_api(tmp_path):
    """A 1 MB or empty question is one clear error and the server keeps answering; with
    auth set, an anonymous client gets nothing."""
    from gradio_client import Client

    from tests.ui.conftest import free_port
    from ui.app import build_app, launch_options

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text(DOCS["ferry.txt"], encoding="utf-8")
    pipe = Pipeline(Settings(corpus=corpus, index=tmp_path / "index"),
                    embedder=HashEmbedder(), generator=SlowCountingGenerator(0))
    demo = build_app(pipe)
    port = free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port,
                quiet=True, auth=("alice", "s3cret"), **launch_options())
    url = f"http://127.0.0.1:{port}/"
    try:
        with pytest.raises(Exception) as anon:  # noqa: B017 - any refusal will do
            Client(url, verbose=False).predict("When does the ferry to the island leave?",
                                               api_name="/ask")
        assert "s3cret" not in str(anon.value)
        assert type(anon.value).__name__ == "AuthenticationError", repr(anon.value)
        c = Client(url, auth=("alice", "s3cret"), verbose=False)
        for q, needle in (("x" * 1_000_000, "the limit is"), ("   ", "question is empty")):
            with pytest.raises(Exception, match=needle) as exc:
                c.predict(q, api_name="/ask")
            assert "Traceback" not in str(exc.value) and len(str(exc.value)) < 400
        ans = c.predict("When does the ferry to the island leave?", api_name="/ask")
        assert check_answer(pipe, "When does the ferry to the island leave?", ans) == ""
    finally:
        demo.close()


def test_twenty_clients_for_twenty_seconds(tmp_path):
    _assert_healthy(run_load(tmp_path, seconds=20))


@pytest.mark.slow
def test_twenty_clients_for_two_minutes(tmp_path):
    stats = run_load(tmp_path, seconds=120)
    _assert_healthy(stats)
    rss = stats["rss_samples"]
    assert rss[-1] - rss[len(rss) // 2] < 100, "memory keeps growing under load"
