"""The live half of the demo: one generated day replayed over HTTP on a compressed timeline.

The day's events go out in arrival order, in requests of ``batch_size`` consecutive events (as
SDKs flush), each request when its last event's original arrival time comes round on the
compressed clock (24 h -> ``replay_seconds``). So the traffic keeps the day's shape (the 17x
night-to-peak swing) at a higher rate. The clock is a :class:`~edp_tools.demo.pacing.Pacer`:
given a view of what the loader has landed, it slows down while the pipeline lags behind what
ingest acknowledged (backpressure), and the report states the speed-up the replay really had.

Timestamps: ingest corrects clock skew with ``event_timestamp = received_at - (sent_at -
client_timestamp)``. Replayed as generated, every event would land *now*; so each event's
``sent_at`` is shifted by the replay offset (``sent_at = now - (original received_at -
original sent_at)``), and ingest restores the original event time while ``received_at`` and
``ingested_at`` are the real ones. The difference keeps each client's clock skew (``sent_at``
and ``client_timestamp`` are by the client's clock), so a device whose clock is a day ahead
still sends a ``sent_at`` a day ahead and ingest still corrects it.

A small share of events is deliberately malformed (unknown event name, missing
``client_timestamp``, a number sent as a string) so the refusal path shows in the accounting.

Accounting, per event, from the replies (``200``: all accepted; ``207``/``400``: ``results``
lists the refused indices): ``sent = accepted + refused + unanswered`` (``unanswered`` =
requests that never got an answer after every retry; zero in a healthy run), and the set of
accepted ``event_id`` s, which the demo compares with what landed in ``raw.user_events``.

Example:
    >>> plan = plan_requests([0.0, 1_000.0, 2_000.0, 86_000.0], batch_size=2, replay_seconds=86.4)
    >>> [(round(at, 3), list(idx)) for at, idx in plan]
    [(1.0, [0, 1]), (86.0, [2, 3])]
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from edp_tools.demo.pacing import Pacer
from edp_tools.generator.sinks import client_events

#: How the deliberately malformed events are broken (cycled through), with the refusal
#: ingest is expected to give them.
MALFORMATIONS: tuple[str, ...] = ("unknown_event_type", "missing_client_timestamp", "value_as_text")

_DAY_S = 86_400.0


def plan_requests(
    offsets_s: Sequence[float], *, batch_size: int, replay_seconds: float
) -> list[tuple[float, range]]:
    """Requests of ``batch_size`` consecutive events and when to send each.

    Args:
        offsets_s: Each event's original arrival, in seconds since the day's start (sorted).
        batch_size: Events per request.
        replay_seconds: Wall seconds the 24 h day is compressed into.

    Returns:
        ``(send at, in seconds after the replay starts; event indexes)`` per request: a request
        goes when its last event arrived on the compressed clock.
    """
    ratio = replay_seconds / _DAY_S
    out: list[tuple[float, range]] = []
    for lo in range(0, len(offsets_s), batch_size):
        idx = range(lo, min(lo + batch_size, len(offsets_s)))
        out.append((offsets_s[idx[-1]] * ratio, idx))
    return out


def malform(event: dict[str, Any], kind: str) -> dict[str, Any]:
    """A copy of ``event`` broken the way ``kind`` says (see :data:`MALFORMATIONS`).

    Example:
        >>> malform({"event_type": "page_view", "client_timestamp": "x"}, "unknown_event_type")
        {'event_type': 'checkout_v2_beta', 'client_timestamp': 'x'}
    """
    bad = dict(event)
    if kind == "unknown_event_type":
        bad["event_type"] = "checkout_v2_beta"
    elif kind == "missing_client_timestamp":
        bad.pop("client_timestamp", None)
    elif kind == "value_as_text":
        bad["value"] = str(bad.get("value", 12.5))
    else:
        raise ValueError(f"unknown malformation {kind!r}")
    return bad


@dataclass
class ReplayStats:
    """What the replay did, counted per event from the ingest replies."""

    planned: int = 0
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    unanswered: int = 0
    malformed: int = 0
    requests: int = 0
    retries: int = 0
    status_counts: Counter[int] = field(default_factory=Counter)
    refusal_types: Counter[str] = field(default_factory=Counter)
    accepted_ids: set[str] = field(default_factory=set)
    #: events answered per wall second since the start (for the throughput chart)
    sent_per_second: Counter[int] = field(default_factory=Counter)
    request_ms: list[float] = field(default_factory=list)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    seconds: float = 0.0

    @property
    def duplicates_accepted(self) -> int:
        """Accepted events whose event_id had been accepted before (client re-sends)."""
        return self.accepted - len(self.accepted_ids)


class Replayer:
    """Replays one generated day to ``{url}/v1/events`` (see the module docstring).

    Args:
        table: The day's rows (generator output, arrival order).
        day_start: 00:00 UTC of that day.
        url: Base URL of the ingest function.
        replay_seconds: Wall seconds for the whole day.
        write_key: Sent as ``X-Write-Key``.
        batch_size: Events per request.
        concurrency: Requests in flight at most.
        bad_fraction: Share of events deliberately malformed.
        seed: Chooses the malformed events.
        pacer: The replay's clock (default: the nominal schedule, no backpressure).
    """

    def __init__(
        self,
        table: pa.Table,
        day_start: datetime,
        url: str,
        *,
        replay_seconds: float,
        write_key: str | None = None,
        batch_size: int = 100,
        concurrency: int = 8,
        bad_fraction: float = 0.0,
        seed: int = 0,
        max_retries: int = 6,
        timeout_s: float = 15.0,
        pacer: Pacer | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.pacer = pacer or Pacer()
        self.write_key = write_key
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.stop_event = threading.Event()
        self.stats = ReplayStats()
        self._lock = threading.Lock()

        epoch_us = int(day_start.timestamp() * 1_000_000)
        received = pc.cast(table.column("received_at"), pa.int64()).to_numpy()
        sent = pc.cast(table.column("sent_at"), pa.int64()).to_numpy()
        offsets = ((received - epoch_us) / 1e6).clip(0.0, _DAY_S).tolist()
        # received - sent = latency - client clock skew (sent_at is by the client's clock);
        # keeping it makes ingest's skew correction give back the original event_timestamp.
        self._received_minus_sent_s = ((received - sent) / 1e6).tolist()
        self.events: list[dict[str, Any]] = list(client_events(table))
        rng = random.Random(seed)  # noqa: S311 - picks demo rows, not a secret
        n_bad = round(len(self.events) * bad_fraction)
        for k, i in enumerate(sorted(rng.sample(range(len(self.events)), n_bad))):
            self.events[i] = malform(self.events[i], MALFORMATIONS[k % len(MALFORMATIONS)])
        self.stats.malformed = n_bad
        self.stats.planned = len(self.events)
        self.plan = plan_requests(offsets, batch_size=batch_size, replay_seconds=replay_seconds)

    # --- running ------------------------------------------------------------------------------
    def run(self) -> ReplayStats:
        """Send every request on schedule (blocking); returns the stats."""
        asyncio.run(self._run())
        return self.stats

    def stop(self) -> None:
        """Stop sending (requests in flight finish)."""
        self.stop_event.set()

    async def _run(self) -> None:
        import httpx

        headers = {"Content-Type": "application/json"}
        if self.write_key:
            headers["X-Write-Key"] = self.write_key
        queue: asyncio.Queue[range | None] = asyncio.Queue(maxsize=self.concurrency * 4)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=16)
        self.stats.started_at = datetime.now(UTC)
        self._t0 = time.monotonic()
        self.pacer.start(self._t0)
        async with httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=self.timeout_s, limits=limits
        ) as client:
            workers = [
                asyncio.create_task(self._worker(client, queue)) for _ in range(self.concurrency)
            ]
            for at, idx in self.plan:
                if self.stop_event.is_set():
                    break
                # short sleeps: the pacer may slow the clock while we wait
                while (wait := self.pacer.wall_wait(at, now=time.monotonic())) > 0:
                    await asyncio.sleep(min(wait, self.pacer.tick_s))
                await queue.put(idx)
            for _ in workers:
                await queue.put(None)
            await asyncio.gather(*workers)
        self.stats.finished_at = datetime.now(UTC)
        self.stats.seconds = time.monotonic() - self._t0

    async def _worker(self, client: Any, queue: asyncio.Queue[range | None]) -> None:
        while (idx := await queue.get()) is not None:
            if self.stop_event.is_set():
                continue  # drain the queue without sending
            await self._post(client, idx)

    def _body(self, idx: range) -> bytes:
        now = time.time()
        events = []
        for i in idx:
            event = self.events[i]
            event["sent_at"] = _iso(now - self._received_minus_sent_s[i])
            events.append(event)
        return orjson.dumps({"events": events})

    async def _post(self, client: Any, idx: range) -> None:
        import httpx

        status, reply, elapsed_ms = 0, b"", 0.0
        for attempt in range(self.max_retries + 1):
            payload = self._body(idx)  # fresh sent_at on every attempt, as an SDK would
            started = time.perf_counter()
            try:
                response = await client.post("/v1/events", content=payload)
                status, reply = response.status_code, response.content
            except httpx.TransportError:
                status = 0
            elapsed_ms = (time.perf_counter() - started) * 1000
            if not _retryable(status):
                break
            if attempt < self.max_retries and not self.stop_event.is_set():
                with self._lock:
                    self.stats.retries += 1
                    self.stats.status_counts[status] += 1
                await asyncio.sleep(min(2.0, 0.1 * 2**attempt))
        self._account(idx, status, reply, elapsed_ms)

    def _account(self, idx: range, status: int, reply: bytes, elapsed_ms: float) -> None:
        """Count one request's events from its final answer."""
        n = len(idx)
        with self._lock:
            s = self.stats
            s.requests += 1
            s.status_counts[status] += 1
            s.sent += n
            now = time.monotonic()
            s.sent_per_second[int(now - self._t0)] += n
            if _retryable(status):
                s.unanswered += n
                self.pacer.observe(0, elapsed_ms=elapsed_ms, now=now)
                return
            s.request_ms.append(elapsed_ms)
            refused = refused_indexes(status, reply, n)
            for kind in refused.values():
                s.refusal_types[kind] += 1
            for pos, i in enumerate(idx):
                event_id = self.events[i].get("event_id")
                if pos not in refused and isinstance(event_id, str):
                    s.accepted_ids.add(event_id)
            s.accepted += n - len(refused)
            s.refused += len(refused)
            self.pacer.observe(n - len(refused), elapsed_ms=elapsed_ms, now=now)

    # --- progress -----------------------------------------------------------------------------
    def progress(self) -> tuple[int, int]:
        """(events answered so far, events planned)."""
        with self._lock:
            return self.stats.sent, self.stats.planned


def _retryable(status: int) -> bool:
    """No answer, throttled or a server error: the request is retried (nothing accepted)."""
    return status in {0, 429} or status >= 500


def refused_indexes(status: int, reply: bytes, n: int) -> dict[int, str]:
    """Which of a request's ``n`` events ingest refused, and why, from its answer.

    Example:
        >>> refused_indexes(207, b'{"results": [{"index": 1, "error": "schema_violation"}]}', 3)
        {1: 'schema_violation'}
        >>> refused_indexes(401, b"{}", 2)
        {0: 'http_401', 1: 'http_401'}
    """
    if status == 200:
        return {}
    try:
        results = orjson.loads(reply).get("results")
    except (orjson.JSONDecodeError, AttributeError):
        results = None
    if status not in (207, 400, 413) or not isinstance(results, list):
        return dict.fromkeys(range(n), f"http_{status}")
    out: dict[int, str] = {}
    for result in results:
        kind = str(result.get("error"))
        if result.get("index") is None:  # the whole request was refused
            return dict.fromkeys(range(n), kind)
        out[int(result["index"])] = kind
    return out


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat().replace("+00:00", "Z")
