"""Prometheus totals across gunicorn workers (the GKE collector).

Each gunicorn worker is its own process with its own counters; a scrape of ``/metrics`` lands
on one of them. With ``PROMETHEUS_MULTIPROC_DIR`` set (the collector's gunicorn config sets it
before forking), the collector's instruments are ``prometheus_client`` metrics whose values live
in per-process files in that folder, and ``/metrics`` answers with
``prometheus_client.multiprocess.MultiProcessCollector``, which sums every worker's files - so
the HPA's requests-per-pod rate sees the whole pod. Names, label names and buckets are the
catalogue's (:mod:`edp.observability.catalogue`), so the series equal the OpenTelemetry ones.

Example:
    >>> counter_name("events_received_total")
    'events_received'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from edp.observability.catalogue import metric

ENV = "PROMETHEUS_MULTIPROC_DIR"


def enabled() -> bool:
    """True in a process whose metrics are shared through ``PROMETHEUS_MULTIPROC_DIR``."""
    return bool(os.environ.get(ENV))


def counter_name(name: str) -> str:
    """``prometheus_client`` appends ``_total`` to counters itself."""
    return name.removesuffix("_total")


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

    def add(self, amount: int, labels: tuple[str, ...]) -> None:
        child = self._children.get(labels)
        if child is None:
            child = self._children[labels] = self._c.labels(*labels)
        child.inc(amount)


class Histogram:
    """A catalogue histogram in multiprocess mode; ``record`` takes an attribute mapping."""

    def __init__(self, name: str, buckets: tuple[float, ...]) -> None:
        import prometheus_client

        spec = metric(name)
        self._h = prometheus_client.Histogram(
            name, spec.meaning, spec.labels, registry=None, buckets=buckets
        )
        self._labels = spec.labels
        self._children: dict[tuple[str, ...], Any] = {}

    def record(self, value: float, attributes: Mapping[str, Any]) -> None:
        key = tuple(str(attributes[name]) for name in self._labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._h.labels(*key)
        child.observe(value)


def exposition() -> bytes:
    """Every worker's series, summed, in Prometheus text format."""
    from prometheus_client import CollectorRegistry, generate_latest, multiprocess

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return bytes(generate_latest(registry))
