"""A local stand-in of Slack's incoming-webhook endpoint: records what is POSTed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class SlackCapture:
    url: str
    posts: list[dict[str, Any]] = field(default_factory=list)
    status: int = 200


@pytest.fixture
def slack_capture() -> Iterator[SlackCapture]:
    capture = SlackCapture(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            capture.posts.append(json.loads(self.rfile.read(length)))
            body = b"ok" if capture.status == 200 else b"invalid_payload"
            self.send_response(capture.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    capture.url = f"http://127.0.0.1:{server.server_address[1]}/services/T000/B000/XXXX"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield capture
    finally:
        server.shutdown()
        server.server_close()
