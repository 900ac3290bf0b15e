"""Prometheus totals across gunicorn workers (the GKE collector).

Each gunicorn worker is its own process with its own counters; a scrape of ``/metrics`` lands
on one of them. With ``PROMETHEUS_MULTIPROC_DIR`` set (the collector's gunicorn config sets it
before forking), the collector's instruments are ``prometheus_client`` metrics whose values live
in per-process files in that folder, and ``/metrics`` answers with
``prometheus_client.multiprocess.MultiProcessCollector``, which sums every worker's files - so
the HPA's requests-per-pod rate sees the whole pod. Names, label names and buckets are the
catalogue's (:mod:`edp.observability.catalogue`), so the series equal the OpenTelemetry ones.

Increments made on an event loop (the collector's uvicorn workers) are written behind: kept in
the worker and written to its file at most :data:`FLUSH_AFTER_S` later, when the worker serves
a scrape, and when it shuts down. Each write takes prometheus_client's process lock, checks the
pid and packs into the mmap: five instruments per single-event request cost ~9.5 µs of a
~190 µs request in-process (1.1 µs a counter add, 3 µs a histogram observation), ~0.3 µs each
when kept. A scrape therefore sees another worker's last second late; a worker killed outright
loses its unwritten second. Off a loop (threads, tools) every increment is written at once.

Example:
    >>> counter_name("events_received_total")
    'events_received'
"""

from __future__ import annotations

import asyncio
import atexit
import math
import os
import threading
from bisect import bisect_left
from collections.abc import Callable, Mapping
from typing import Any, Final

from edp.observability.catalogue import metric

ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Seconds an increment made on an event loop waits at most before it reaches the shared file.
FLUSH_AFTER_S: Final = 1.0


def enabled() -> bool:
    """True in a process whose metrics are shared through ``PROMETHEUS_MULTIPROC_DIR``."""
    return bool(os.environ.get(ENV))


def counter_name(name: str) -> str:
    """``prometheus_client`` appends ``_total`` to counters itself."""
    return name.removesuffix("_total")


class _WriteBehind:
    """The increments kept on the event loop, for every instrument of this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.instruments: list[Counter | Histogram] = []
        # the loop whose timer will write what is kept (None: no write is due)
        self.timer_loop: asyncio.AbstractEventLoop | None = None
        self.hooked = False

    def kept(self, loop: asyncio.AbstractEventLoop) -> None:
        """Called (under ``lock``) after keeping an increment: make sure a write follows.

        A write due on another loop is not trusted: that loop may have closed with its timer
        (the increments it kept are written by this loop's timer, with everything else).
        """
        if self.timer_loop is not loop:
            self.timer_loop = loop
            loop.call_later(FLUSH_AFTER_S, flush)
        if not self.hooked:
            self.hooked = True
            atexit.register(flush)  # the last loop closed before its timer fired


_behind = _WriteBehind()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def flush() -> None:
    """Write every kept increment of this process to its file (any thread)."""
    with _behind.lock:
        _behind.timer_loop = None
        writes = [instrument.take() for instrument in _behind.instruments]
    for write in writes:
        if write is not None:
            write()


class Counter:
    """A catalogue counter in multiprocess mode; ``add`` takes label values in label order."""

    def __init__(self, name: str) -> None:
        import prometheus_client

        spec = metric(name)
        self._c = prometheus_client.Counter(
            counter_name(name), spec.meaning, spec.labels, registry=None
        )
        # labels() validates and locks on every call; a series' child is reused instead
        # (a handful of label combinations per worker, a dozen µs saved per add).
        self._children: dict[tuple[str, ...], Any] = {}
        self._pending: dict[tuple[str, ...], float] = {}
        with _behind.lock:
            _behind.instruments.append(self)

    def _child(self, labels: tuple[str, ...]) -> Any:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._c.labels(*labels)
        return child

    def add(self, amount: float, labels: tuple[str, ...]) -> None:
        loop = _running_loop()
        if loop is None:
            self._child(labels).inc(amount)
            return
        with _behind.lock:
            self._pending[labels] = self._pending.get(labels, 0) + amount
            _behind.kept(loop)

    def take(self) -> Callable[[], None] | None:
        """What writes the kept increments, forgotten here (None: nothing kept); called under
        the write-behind lock, the write itself outside it."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, {}
        return lambda: self._write(pending)

    def _write(self, pending: Mapping[tuple[str, ...], float]) -> None:
        for labels, amount in pending.items():
            self._child(labels).inc(amount)


class Histogram:
    """A catalogue histogram in multiprocess mode; ``record`` takes an attribute mapping."""

    def __init__(self, name: str, buckets: tuple[float, ...]) -> None:
        import prometheus_client

        spec = metric(name)
        self._h = prometheus_client.Histogram(
            name, spec.meaning, spec.labels, registry=None, buckets=buckets
        )
        self._labels = spec.labels
        # prometheus_client's bounds: the buckets, then +Inf; an observation counts in the
        # first bucket whose bound is >= it (bisect_left), a NaN in none (only in the sum).
        self._bounds = (*buckets, math.inf) if buckets[-1] != math.inf else tuple(buckets)
        self._children: dict[tuple[str, ...], Any] = {}
        # per series: [count of bucket 0, ..., count of the +Inf bucket, sum]
        self._pending: dict[tuple[str, ...], list[float]] = {}
        with _behind.lock:
            _behind.instruments.append(self)

    def _child(self, key: tuple[str, ...]) -> Any:
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._h.labels(*key)
        return child

    def record(self, value: float, attributes: Mapping[str, Any]) -> None:
        key = tuple(str(attributes[name]) for name in self._labels)
        loop = _running_loop()
        if loop is None:
            self._child(key).observe(value)
            return
        with _behind.lock:
            kept = self._pending.get(key)
            if kept is None:
                kept = self._pending[key] = [0.0] * (len(self._bounds) + 1)
            if not math.isnan(value):
                kept[bisect_left(self._bounds, value)] += 1
            kept[-1] += value
            _behind.kept(loop)

    def take(self) -> Callable[[], None] | None:
        """What writes the kept observations, forgotten here (None: nothing kept)."""
        if not self._pending:
            return None
        pending, self._pending = self._pending, {}
        return lambda: self._write(pending)

    def _write(self, pending: Mapping[tuple[str, ...], list[float]]) -> None:
        # What observe() writes, a series at a time: its sum and each bucket's own count (the
        # multiprocess collector makes them cumulative). prometheus_client has no public call
        # for it; tests/observability/test_multiprocess.py holds it to observe()'s files.
        for key, kept in pending.items():
            child = self._child(key)
            child._sum.inc(kept[-1])
            for bucket, count in zip(child._buckets, kept[:-1], strict=True):
                if count:
                    bucket.inc(count)


def exposition() -> bytes:
    """Every worker's series, summed, in Prometheus text format (this worker's kept increments
    written first; another worker's may be up to :data:`FLUSH_AFTER_S` late)."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    flush()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return bytes(generate_latest(registry))
