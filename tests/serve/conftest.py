"""Servers on loopback for the serving tests: a real llama.cpp server (smollm2) started
once per session, and tiny stub HTTP servers that misbehave on purpose."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f}s")


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory) -> Iterator[str]:
    """``python -m llama_cpp.server`` with the packaged SmolLM2-135M on a free loopback
    port; yields its base URL (``http://127.0.0.1:PORT/v1``) and kills it at the end."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from rag.generate.models import packaged_model_path

    model = packaged_model_path("smollm2-135m")
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
             "--n_threads", str(max(1, os.cpu_count() or 1)), "--seed", "0"],
            stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for(f"{url}/models", proc)
    except (RuntimeError, TimeoutError) as exc:
        proc.kill()
        proc.wait(10)
        pytest.fail(f"llama.cpp server did not start ({exc}): "
                    f"{log.read_text(errors='replace')[-2000:]}")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class StubServer:
    """A loopback HTTP server whose POST answers come from ``handler(path, body)``, which
    returns (status, headers, body bytes or a list of SSE data strings)."""

    def __init__(self, handler: Callable[[str, dict], tuple[int, dict, object]]) -> None:
        self.handler = handler
        self.requests: list[tuple[str, str]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _answer(self, method: str, body: dict) -> None:
                stub.requests.append((method, self.path))
                status, headers, payload = stub.handler(self.path, body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if isinstance(payload, list):  # SSE events
                    self.send_header("Content-Type", "text/event-stream")
                    self.end_headers()
                    for data in payload:
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                    return
                raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                self._answer("GET", {})

            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                self._answer("POST", json.loads(self.rfile.read(n) or b"{}"))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub_server():
    servers: list[StubServer] = []

    def start(handler) -> StubServer:
        servers.append(StubServer(handler))
        return servers[-1]

    yield start
    for s in servers:
        s.close()
