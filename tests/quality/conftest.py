"""Fixtures of the quality tests: a loopback HTTP server that records requests and answers
from a script (the stand-in of Vertex AI's generateContent and of Slack's incoming webhook)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CaptureServer:
    """Records every request; answers with ``answers`` in turn (the last one repeats)."""

    url: str
    requests: list[Recorded] = field(default_factory=list)
    answers: list[Answer | Callable[[Recorded], Answer]] = field(default_factory=list)


@pytest.fixture
def capture_server() -> Iterator[CaptureServer]:
    server_state = CaptureServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            rec = Recorded(
                "POST", self.path, dict(self.headers), self.rfile.read(length), time.time()
            )
            server_state.requests.append(rec)
            answers = server_state.answers or [(200, {}, b"ok")]
            answer = answers[min(len(server_state.requests) - 1, len(answers) - 1)]
            status, headers, body = answer(rec) if callable(answer) else answer
            try:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client timed out first (the timeout test)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    server_state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
