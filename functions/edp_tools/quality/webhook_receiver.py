"""A local stand-in of Slack's incoming webhooks: records every message, answers ``ok``.

``edp dev`` runs it (component ``slack-receiver``) and points the quality agent's
``EDP_SLACK_WEBHOOK_CRITICAL`` / ``EDP_SLACK_WEBHOOK_WARNING`` at ``/critical`` and ``/warning``;
each POSTed message is appended as one JSON line (channel, received time, payload) to
``<state>/slack/messages.jsonl``, where the demo report and a developer can read it::

    python -m edp_tools.quality.webhook_receiver --port 8099 --out .edp/slack/messages.jsonl
"""

from __future__ import annotations

import argparse
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_lock = threading.Lock()


def make_server(host: str, port: int, out: Path) -> ThreadingHTTPServer:
    """A server appending each POST body (JSON) to ``out`` with its channel (the path)."""
    out.parent.mkdir(parents=True, exist_ok=True)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            try:
                payload = json.loads(raw)
            except json.JSONDecodeError:
                self._answer(400, b"invalid_payload")
                return
            record = {
                "channel": self.path.strip("/") or "default",
                "received_at": datetime.now(UTC).isoformat(),
                "payload": payload,
            }
            with _lock, out.open("a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            self._answer(200, b"ok")

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    server = make_server(args.host, args.port, args.out)
    print(f"slack receiver ready on {args.host}:{args.port} -> {args.out}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
