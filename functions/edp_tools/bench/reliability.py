"""Reliability benchmark: health checks while slow clients hold stalled uploads open.

The ingest function is served as Cloud Run serves it (``functions-framework --target ingest``:
gunicorn, one uvicorn worker, the async ``ingest`` entry point) and publishes to the real Pub/Sub
emulator. :func:`slowloris` opens N connections that each send complete headers with a valid
write key and ``Content-Length: 65536``, then 100 bytes of body, then nothing; the ones the
server closed are opened again every ``reopen_every_s`` (1 s; the classic slowloris tool,
gkbrk/slowloris, re-creates its dead sockets once per 15 s cycle), so N stalled uploads are
held open throughout. Meanwhile it times ``GET /healthz`` (a new connection each) and valid
``POST /v1/events``. Re-opening at once instead (``reopen_every_s=0``) is a connection flood,
not a slow-client attack: it is reported as ``reliability.slowloris.flood_*`` figures and needs
rate limiting in front.

Key: ``reliability.slowloris.healthz_p99_ms`` (bar < 100 ms with 200 stalled uploads open).
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

from edp_tools.bench import Bar, benchmark

STALLED_BODY: Final = 65_536
PROJECT: Final = "edp-bench-reliability"
WRITE_KEY: Final = "bench-reliability-key"
FUNCTIONS_MAIN: Final = Path(__file__).resolve().parents[2] / "main.py"


def _stall(port: int, key: str) -> socket.socket | None:
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        head = (
            f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Write-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {STALLED_BODY}\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"events": [' + b" " * 88)
    except OSError:
        return None
    return sock


class Stallers:
    """Keeps ``count`` stalled uploads open against ``port`` (reopening the ones closed)."""

    def __init__(self, port: int, count: int, key: str, reopen_every_s: float = 1.0) -> None:
        self.port, self.count, self.key = port, count, key
        self.reopen_every_s = reopen_every_s
        self.reopened = 0
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stallers", daemon=True)

    def __enter__(self) -> Stallers:
        for _ in range(self.count):
            sock = _stall(self.port, self.key)
            if sock is not None:
                self._socks.append(sock)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        for sock in self._socks:
            sock.close()

    @property
    def open(self) -> int:
        return len(self._socks)

    def _run(self) -> None:
        while not self._stop.wait(max(self.reopen_every_s, 0.05)):
            alive: list[socket.socket] = []
            for sock in self._socks:
                try:
                    sock.setblocking(False)
                    closed = sock.recv(65536) == b""
                    sock.setblocking(True)
                except BlockingIOError:
                    closed = False
                    sock.setblocking(True)
                except OSError:
                    closed = True
                if closed:
                    sock.close()
                else:
                    alive.append(sock)
            while len(alive) < self.count and not self._stop.is_set():
                fresh = _stall(self.port, self.key)
                if fresh is None:
                    break
                self.reopened += 1
                alive.append(fresh)
            self._socks = alive


def _timed(port: int, request: bytes) -> tuple[float, int]:
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    elapsed = (time.perf_counter() - t0) * 1000
    status = int(data.split(b" ", 2)[1]) if data else 0
    return elapsed, status


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method.

    Example:
        >>> percentile([float(i) for i in range(1, 101)], 0.99)
        99.0
    """
    ranked = sorted(values)
    index = max(0, min(len(ranked) - 1, math.ceil(q * len(ranked)) - 1))
    return ranked[index]


def slowloris(
    port: int,
    key: str,
    *,
    stalled: int = 200,
    probes: int = 300,
    reopen_every_s: float = 1.0,
    prefix: str = "reliability.slowloris.",
) -> dict[str, float]:
    """Health-check and valid-request latency with ``stalled`` uploads held open."""
    health = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    body = (
        b'{"event_type":"page_view","anonymous_id":"a","client_timestamp":'
        b'"2026-11-26T10:00:00Z","page_location":"https://shop.example/"}'
    )
    post = (
        f"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
        f"X-Write-Key: {key}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with Stallers(port, stalled, key, reopen_every_s) as stallers:
        time.sleep(1.0)  # let every stalled upload reach the server
        held = stallers.open
        health_ms: list[float] = []
        post_ms: list[float] = []
        post_status: list[int] = []
        for i in range(probes):
            ms, status = _timed(port, health)
            if status != 200:
                raise RuntimeError(f"/healthz answered {status} under stalled uploads")
            health_ms.append(ms)
            if i % 3 == 0:
                ms, status = _timed(port, post)
                post_ms.append(ms)
                post_status.append(status)
            time.sleep(0.01)
        reopened = stallers.reopened
    figures = {
        "stalled_open": float(held),
        "reopened": float(reopened),
        "healthz_p50_ms": round(statistics.median(health_ms), 2),
        "healthz_p99_ms": round(percentile(health_ms, 0.99), 2),
        "post_p99_ms": round(percentile(post_ms, 0.99), 2),
        "post_accepted_ratio": round(sum(s == 200 for s in post_status) / len(post_status), 3),
        "post_5xx_other_than_busy": float(sum(s >= 500 and s != 503 for s in post_status)),
    }
    return {prefix + name: value for name, value in figures.items()}


@contextlib.contextmanager
def served_ingest(
    workdir: Path, key: str = WRITE_KEY, *, server: str = "functions-framework"
) -> Iterator[int]:
    """``main.py:ingest`` under functions-framework (or, with ``server="gunicorn"``, the GKE
    collector: ``gunicorn -c python:edp.ingest.gunicorn_conf edp.ingest.asgi:app``) on loopback,
    publishing to a fresh emulator."""
    from edp.bus.clients import build_publisher
    from edp_tools.local.processes import ManagedProcess, free_port, port_open
    from edp_tools.local.pubsub_emulator import PubSubEmulator

    emulator = PubSubEmulator(PROJECT, log_path=workdir / "emulator.log").start()
    try:
        admin = build_publisher(emulator_host=emulator.host)
        for topic in ("events", "events-bad"):
            admin.create_topic(name=f"projects/{PROJECT}/topics/{topic}")
        port = free_port()
        env = {
            **os.environ,
            "PUBSUB_EMULATOR_HOST": emulator.host,
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "EDP_WRITE_KEYS": key,
            "EDP_ENVIRONMENT": "local",
        }
        argv = [
            sys.executable,
            "-m",
            "functions_framework",
            "--target",
            "ingest",
            "--source",
            str(FUNCTIONS_MAIN),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        if server == "gunicorn":
            argv = [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                "python:edp.ingest.gunicorn_conf",
                "-b",
                f"127.0.0.1:{port}",
                "edp.ingest.asgi:app",
            ]
        proc = ManagedProcess(
            f"bench:ingest-{server}", argv, env=env, log_path=workdir / f"{server}.log"
        ).start()  # fmt: skip
        try:
            proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
            yield port
        finally:
            proc.stop()
    finally:
        emulator.stop()


@benchmark(
    "reliability.slowloris",
    bars=[Bar("reliability.slowloris.healthz_p99_ms", "<", 100, unit="ms")],
    units={
        "reliability.slowloris.healthz_p50_ms": "ms",
        "reliability.slowloris.post_p99_ms": "ms",
        "reliability.slowloris.flood_healthz_p50_ms": "ms",
        "reliability.slowloris.flood_healthz_p99_ms": "ms",
        "reliability.slowloris.flood_post_p99_ms": "ms",
    },
)
def bench_slowloris() -> dict[str, float]:
    """200 stalled uploads held open against functions-framework; /healthz p99."""
    with tempfile.TemporaryDirectory() as tmp, served_ingest(Path(tmp)) as port:
        figures = slowloris(port, WRITE_KEY, stalled=200, probes=300)
        flood = slowloris(
            port,
            WRITE_KEY,
            stalled=200,
            probes=100,
            reopen_every_s=0,
            prefix="reliability.slowloris.flood_",
        )
        return {**figures, **flood}
