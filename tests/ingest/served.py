"""The ingest function as Cloud Run serves it: ``functions-framework --target ingest`` (its
gunicorn, one uvicorn worker: ``ingest`` is an async function) on loopback, and a raw-socket HTTP
client for bytes that no polite client library would send.

Half-closing: uvicorn closes a connection as soon as the client shuts its write side (asyncio
closes the transport when the protocol's ``eof_received`` returns nothing, and uvicorn's does),
so a client that half-closes gets no answer at all. Behind Cloud Run's front end or Google's
load balancer the container never sees a client's half-close; the tests send whole requests on
an open connection (``Connection: close`` ends it after the answer) and half-close only where
that closing is what they check.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edp_tools.local.processes import ManagedProcess, free_port, port_open

from .conftest import WRITE_KEY, Bus

FUNCTIONS_MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"


def bus_env(bus: Bus, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": bus.emulator.host,
        "GOOGLE_CLOUD_PROJECT": bus.emulator.project,
        "EDP_TOPIC_EVENTS": bus.events_topic,
        "EDP_TOPIC_BAD_EVENTS": bus.bad_topic,
        "EDP_WRITE_KEYS": WRITE_KEY,
        "EDP_ENVIRONMENT": "local",
        **extra,
    }


@contextmanager
def functions_framework(bus: Bus, log: Path, **extra: str) -> Iterator[int]:
    """Serve ``functions/main.py:ingest`` with functions-framework; yield its port."""
    port = free_port()
    proc = ManagedProcess(
        "test:ingest-ff",
        [sys.executable, "-m", "functions_framework", "--target", "ingest",
         "--source", str(FUNCTIONS_MAIN), "--host", "127.0.0.1", "--port", str(port)],
        env=bus_env(bus, **extra),
        log_path=log,
    ).start()  # fmt: skip
    try:
        proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
        yield port
    finally:
        proc.stop()


def raw_exchange(port: int, data: bytes, *, half_close: bool = False, timeout: float = 15) -> int:
    """Send ``data`` as is, optionally close our write side, and return the response status."""
    return raw_response(port, data, half_close=half_close, timeout=timeout)[0]


def raw_response(
    port: int, data: bytes, *, half_close: bool = False, timeout: float = 15
) -> tuple[int, bytes]:
    """Like :func:`raw_exchange`, plus the response body (read until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        response = b""
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    if not response:
        return 0, b""  # the server closed without answering
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def request_bytes(
    path: str, body: bytes, headers: dict[str, str], *, content_length: int | None = None
) -> bytes:
    """An HTTP/1.1 request; ``content_length`` overrides the real length (or None: as is)."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body
