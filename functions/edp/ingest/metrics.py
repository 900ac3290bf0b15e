"""Ingest metrics: OpenTelemetry instruments with hot-path-cheap counters.

An OTel synchronous ``Counter.add`` with attributes costs ~15 µs (attribute cleaning and
hashing); ingest increments three counters per request, which measured ~20 % of the CPU of a
single-event request. The counters here are plain dicts behind a lock (~0.3 µs per add),
exported through OTel *observable* counters whose callbacks read the totals at collection time
(a Prometheus scrape or the Cloud Monitoring export), so the exported series are the same.
Histograms (latency) stay synchronous OTel instruments.

Example:
    >>> c = LabelledCounter(("route", "code"))
    >>> c.add(2, ("/v1/events", "200"))
    >>> [(o.value, o.attributes) for o in c.observe(None)]
    [(2, {'route': '/v1/events', 'code': '200'})]
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from opentelemetry.metrics import CallbackOptions, Observation

from edp.observability import multiprocess
from edp.observability.catalogue import instrument, metric
from edp.observability.metrics import LATENCY_BUCKETS_S, get_meter


class LabelledCounter:
    """A monotonic counter keyed by a fixed tuple of label values."""

    def __init__(self, label_names: Sequence[str]) -> None:
        self._names = tuple(label_names)
        self._values: dict[tuple[str, ...], int] = {}
        self._lock = threading.Lock()

    def add(self, amount: int, labels: tuple[str, ...]) -> None:
        """Add ``amount`` to the series ``labels`` (values in ``label_names`` order)."""
        with self._lock:
            self._values[labels] = self._values.get(labels, 0) + amount

    def value(self, labels: tuple[str, ...]) -> int:
        """Current total of one series (0 if never incremented)."""
        with self._lock:
            return self._values.get(labels, 0)

    def observe(self, options: CallbackOptions | None) -> Iterable[Observation]:
        """OTel observable-counter callback: every series' total."""
        with self._lock:
            snapshot = list(self._values.items())
        return [Observation(v, dict(zip(self._names, k, strict=True))) for k, v in snapshot]


class Counter(Protocol):
    """What ingest needs of a counter: add to the series of these label values."""

    def add(self, amount: int, labels: tuple[str, ...]) -> None: ...


@dataclass(frozen=True)
class IngestMetrics:
    """The ingest instruments (process-wide: one set however many apps are built)."""

    events_received: Counter  # event_type, device_type, result
    http_requests: Counter  # route, code
    published: Counter  # topic, result
    request_latency: Any  # OTel histogram, attributes route, code
    publish_latency: Any  # OTel histogram, attribute topic
    # Requests refused before authentication (nothing of them is stored anywhere else).
    unauthenticated: Counter  # route, reason


_lock = threading.Lock()
_instruments: IngestMetrics | None = None


def ingest_metrics() -> IngestMetrics:
    """Create (once per process) and return the ingest instruments.

    Under the collector's gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) they are
    ``prometheus_client`` multiprocess metrics, so a scrape sums every worker; elsewhere
    OpenTelemetry instruments (Prometheus locally, Cloud Monitoring in Cloud Run).

    Creation holds a lock: concurrent first requests on a cold instance build the app twice,
    and a second set of observable counters of the same names would be ignored by the SDK (its
    callbacks never run), so the counts of whichever app served would never be exported. Called
    once per app, never per request.
    """
    global _instruments  # noqa: PLW0603 - process-wide instruments
    with _lock:
        if _instruments is None:
            _instruments = _create()
        return _instruments


def reset_ingest_metrics() -> None:
    """Forget the instruments (tests, after :func:`edp.observability.metrics.reset_for_tests`)."""
    global _instruments  # noqa: PLW0603 - process-wide instruments
    with _lock:
        _instruments = None


def _create() -> IngestMetrics:
    if multiprocess.enabled():
        return IngestMetrics(
            events_received=multiprocess.Counter("events_received_total"),
            http_requests=multiprocess.Counter("http_requests_total"),
            published=multiprocess.Counter("pubsub_messages_published_total"),
            unauthenticated=multiprocess.Counter("ingest_unauthenticated_requests_total"),
            request_latency=multiprocess.Histogram("request_latency_seconds", LATENCY_BUCKETS_S),
            publish_latency=multiprocess.Histogram(
                "pubsub_publish_latency_seconds", LATENCY_BUCKETS_S
            ),
        )
    meter = get_meter("edp.ingest")
    events = LabelledCounter(metric("events_received_total").labels)
    http = LabelledCounter(metric("http_requests_total").labels)
    published = LabelledCounter(metric("pubsub_messages_published_total").labels)
    unauthenticated = LabelledCounter(metric("ingest_unauthenticated_requests_total").labels)
    instrument(meter, "events_received_total", [events.observe])
    instrument(meter, "http_requests_total", [http.observe])
    instrument(meter, "pubsub_messages_published_total", [published.observe])
    instrument(meter, "ingest_unauthenticated_requests_total", [unauthenticated.observe])
    return IngestMetrics(
        events_received=events,
        http_requests=http,
        published=published,
        unauthenticated=unauthenticated,
        request_latency=instrument(meter, "request_latency_seconds"),
        publish_latency=instrument(meter, "pubsub_publish_latency_seconds"),
    )
