"""OpenTelemetry traces: one trace context per event, carried across Pub/Sub.

The ingest request span is the root; its publish span writes the W3C ``traceparent`` into the
Pub/Sub message attributes (:func:`inject`); consumers (the stream loader, cdc_flush) read it
back (:func:`link_from`) and link their batch span to it - a batch holds messages of many
traces, so the producer contexts are span *links* (OpenTelemetry messaging conventions), and
the warehouse write is a child of the batch span. Where spans go is a setting:

* ``EDP_TRACES_EXPORTER=none`` (default): no provider, no cost on the hot path;
* ``console`` / ``file`` (``EDP_TRACES_FILE``, one JSON span per line): local development;
* ``cloud_trace``: Cloud Trace in GCP (``opentelemetry-exporter-gcp-trace``, batched).

``EDP_TRACES_SAMPLE_RATIO`` (default 1) is the share of *new* traces recorded. Only ingest, the
high-rate root, is deployed with less (Terraform's ``ingest_trace_sample_ratio``, 0.01: a sampled
request's two spans cost it 0.1 ms of CPU here and about 0.2 ms more in Cloud Trace's exporter,
and Cloud Trace bills per span); the traceparent still travels with every event, and the
consumers (ratio 1) record every batch, so a sampled event is followed end to end.

Example:
    >>> attributes = {"event_count": "1"}
    >>> inject(attributes)  # tracing off: nothing is added
    {'event_count': '1'}
    >>> link = link_from({"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
    >>> f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}"
    ('0af7651916cd43dd8448eb211c80319c', 'b7ad6b7169203331')
    >>> link_from({}) is None
    True
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

import orjson
from opentelemetry import trace
from opentelemetry.propagators.textmap import default_setter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import TraceIdRatioBased
from opentelemetry.sdk.util import ns_to_iso_str
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from edp.observability.span_shipping import LoopSpanProcessor, LoopTraceClient
from edp.settings import Settings, get_settings

TRACEPARENT = "traceparent"
#: One export to Cloud Trace, retries included, gives up after this long (see BoundedTraceClient).
TRACE_EXPORT_DEADLINE_S = 5.0
_PROPAGATOR = TraceContextTextMapPropagator()
_IDS = RandomIdGenerator()
log = logging.getLogger(__name__)
_lock = threading.Lock()
_provider: Any = None
# The Cloud Trace exporter's client, whose writes on an event loop drain_traces waits for.
_loop_client: LoopTraceClient | None = None
_enabled: bool | None = None
_tracers: dict[str, Tracer] = {}
# The provider's root sampler, whose rule request_root applies itself (None: no SDK provider).
_root_sampler: TraceIdRatioBased | None = None
# The trace id a request root drew before asking the SDK for its span (see request_root).
_preset_trace_id: ContextVar[int | None] = ContextVar("edp_preset_trace_id", default=None)
# The traceparent of the current request root when it is not recorded (see request_root).
_unrecorded: ContextVar[str | None] = ContextVar("edp_unrecorded_traceparent", default=None)


class _PresetIdGenerator(RandomIdGenerator):
    """Random ids, except a root's trace id drawn beforehand by :func:`request_root`."""

    def generate_trace_id(self) -> int:
        preset = _preset_trace_id.get()
        return preset if preset is not None else super().generate_trace_id()


def _exporter(settings: Settings) -> tuple[Any, bool]:
    """The span exporter of the settings and whether it wants batching."""
    if settings.traces_exporter == "cloud_trace":
        from google.api_core.retry_async import AsyncRetry
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        client = LoopTraceClient(
            _trace_client(settings),
            lambda: _async_trace_client(settings),
            retry=_bounded_retry(AsyncRetry),
            deadline_s=TRACE_EXPORT_DEADLINE_S,
        )
        global _loop_client  # noqa: PLW0603 - built with the provider, under get_tracer's lock
        _loop_client = client
        exporter = CloudTraceSpanExporter(  # type: ignore[no-untyped-call]
            project_id=settings.project, client=client
        )
        return exporter, True
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter

    if settings.traces_exporter == "file":
        path = settings.traces_file or settings.state_dir / "traces.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        out = path.open("a", encoding="utf-8", buffering=1)  # line-buffered: one span per write
        # Batched like Cloud Trace's exporter, which it stands in for: formatting a span as JSON
        # on the request thread cost ~0.5 ms (ingest measured 1.55 ms CPU per request against
        # 0.40 without tracing); readers call flush_traces() first.
        return ConsoleSpanExporter(out=out, formatter=_json_line), True
    return ConsoleSpanExporter(), False


def _trace_client(settings: Settings) -> Any:
    """The exporter's TraceServiceClient, with every export bounded by
    :data:`TRACE_EXPORT_DEADLINE_S`: ADC against cloudtrace.googleapis.com, or a loopback
    stand-in when ``traces_api_endpoint`` is set (tests)."""
    from google.cloud.trace_v2 import TraceServiceClient

    if settings.traces_api_endpoint is None:
        return BoundedTraceClient(TraceServiceClient())
    import grpc
    from google.cloud.trace_v2.services.trace_service.transports import TraceServiceGrpcTransport

    channel = grpc.insecure_channel(settings.traces_api_endpoint)
    return BoundedTraceClient(
        TraceServiceClient(transport=TraceServiceGrpcTransport(channel=channel))
    )


def _async_trace_client(settings: Settings) -> Any:
    """The asyncio TraceServiceAsyncClient of the same endpoint (built on the loop that uses
    it; see :class:`~edp.observability.span_shipping.LoopTraceClient`)."""
    from google.cloud.trace_v2 import TraceServiceAsyncClient

    if settings.traces_api_endpoint is None:
        return TraceServiceAsyncClient()
    import grpc
    from google.cloud.trace_v2.services.trace_service.transports import (
        TraceServiceGrpcAsyncIOTransport,
    )

    channel = grpc.aio.insecure_channel(settings.traces_api_endpoint)
    return TraceServiceAsyncClient(transport=TraceServiceGrpcAsyncIOTransport(channel=channel))


def _bounded_retry(policy: Any) -> Any:
    """``policy`` (api_core's ``Retry`` or ``AsyncRetry``) on transient errors, 0.1 s doubling
    to 1 s, giving up after :data:`TRACE_EXPORT_DEADLINE_S`: one budget for both clients."""
    from google.api_core.retry import if_transient_error

    return policy(
        predicate=if_transient_error,
        initial=0.1,
        maximum=1.0,
        multiplier=2.0,
        timeout=TRACE_EXPORT_DEADLINE_S,
    )


class BoundedTraceClient:
    """The one call CloudTraceSpanExporter makes, with a short retry budget.

    The SDK's batch processor exports in the *flushing* thread, and functions flush before they
    answer (:func:`flush_traces`); with the client's default policy (retry for 120 s) a Cloud
    Trace that did not answer held every response for two minutes. Spans are telemetry: after
    :data:`TRACE_EXPORT_DEADLINE_S` the batch is dropped (the exporter logs it) and the request
    goes on.
    """

    def __init__(self, client: Any) -> None:
        from google.api_core.retry import Retry

        self.client = client
        self._retry = _bounded_retry(Retry)

    def batch_write_spans(self, request: Any = None, **_: Any) -> None:
        self.client.batch_write_spans(
            request=request, retry=self._retry, timeout=TRACE_EXPORT_DEADLINE_S
        )


def _json_line(span: Any) -> str:
    """One span as a JSON line: the fields and format of the SDK's ``ReadableSpan.to_json``.

    Built directly and written with orjson: the SDK's own (indented ``json.dumps``, the resource
    serialised and parsed back per span) plus compacting it cost ~1 ms per sampled request,
    more than the rest of the request's telemetry.
    """
    context = span.context
    parent = span.parent
    status = {"status_code": span.status.status_code.name}
    if span.status.description:
        status["description"] = span.status.description
    line = {
        "name": span.name,
        "context": _format_context(context) if context else None,
        "kind": str(span.kind),
        "parent_id": f"0x{parent.span_id:016x}" if parent is not None else None,
        "start_time": ns_to_iso_str(span.start_time) if span.start_time else None,
        "end_time": ns_to_iso_str(span.end_time) if span.end_time else None,
        "status": status,
        "attributes": dict(span.attributes) if span.attributes is not None else None,
        "events": [
            {
                "name": event.name,
                "timestamp": ns_to_iso_str(event.timestamp),
                "attributes": dict(event.attributes) if event.attributes is not None else None,
            }
            for event in span.events
        ],
        "links": [
            {
                "context": _format_context(link.context),
                "attributes": dict(link.attributes) if link.attributes is not None else None,
            }
            for link in span.links
        ],
        "resource": _resource_json(span.resource),
    }
    return orjson.dumps(line, default=str, option=orjson.OPT_APPEND_NEWLINE).decode()


def _format_context(context: Any) -> dict[str, str]:
    return {
        "trace_id": f"0x{context.trace_id:032x}",
        "span_id": f"0x{context.span_id:016x}",
        "trace_state": repr(context.trace_state),
    }


_resources: dict[int, tuple[Any, Any]] = {}


def _resource_json(resource: Any) -> Any:
    """The resource as the SDK writes it (one per process: parsed once, then reused)."""
    cached = _resources.get(id(resource))
    if cached is None or cached[0] is not resource:
        cached = _resources[id(resource)] = (resource, json.loads(resource.to_json()))
    return cached[1]


def _build() -> Any:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased

    from edp.observability.metrics import process_resource

    settings = get_settings()
    exporter, batched = _exporter(settings)
    # A root span is recorded by trace id at the configured ratio; a child follows its parent.
    root = TraceIdRatioBased(settings.traces_sample_ratio)
    sampler = ParentBased(root)
    provider = TracerProvider(
        resource=process_resource(settings), sampler=sampler, id_generator=_PresetIdGenerator()
    )
    processor: Any = SimpleSpanProcessor(exporter)
    if batched:
        # Exported from the event loop a span ends on (the ingest worker), else batched by the
        # SDK's thread (see edp.observability.span_shipping).
        processor = LoopSpanProcessor(exporter, lambda: BatchSpanProcessor(exporter))
    provider.add_span_processor(processor)
    global _root_sampler  # noqa: PLW0603 - set with the provider, under get_tracer's lock
    _root_sampler = root
    return provider


def enabled() -> bool:
    """True when spans are recorded (read once per process)."""
    global _enabled  # noqa: PLW0603 - lazy process-wide singleton
    if _enabled is None:
        _enabled = get_settings().traces_exporter != "none"
    return _enabled


def get_tracer(name: str) -> Tracer:
    """A tracer from the process-wide provider; a no-op tracer when tracing is off."""
    global _provider  # noqa: PLW0603 - lazy process-wide singleton
    if not enabled():
        return trace.NoOpTracer()
    # One tracer per name: the SDK builds a new one on every get_tracer call (scope checks,
    # a warnings filter), which cost ingest ~20 us per request when asked for per span.
    tracer = _tracers.get(name)
    if tracer is not None:
        return tracer
    with _lock:
        if _provider is None:
            try:
                _provider = _build()
            except Exception as exc:
                log.error("tracing disabled: the span exporter cannot start: %s", exc)
                _provider = trace.NoOpTracerProvider()
        tracer = _tracers.setdefault(name, _provider.get_tracer(name))
    return tracer


def request_root(tracer_name: str, name: str) -> _RequestRoot:
    """A request's root SERVER span, as a context manager: the span, or None (tracing off, or
    this request not sampled).

    The root's trace id is drawn first and decided by the rule of the provider's root sampler
    (``TraceIdRatioBased``: sampled when the id's low 64 bits are below the sampler's ``bound``,
    the decision the SDK's ParentBased sampler takes for a span without a parent). A sampled
    root is started by the SDK with that trace id. An unsampled one (99 % of ingest requests at
    the deployed ratio) never enters the SDK: a non-recording span, its context attached and
    detached and the producer span's checks cost ingest ~20 us per request (in-process, 283 ->
    262-269 us at ratio 0); it only keeps its ``traceparent`` (flags ``00``) for
    :func:`inject`, so its messages still carry one. A class, not a generator: entering and
    leaving it is most of what an unsampled request pays for tracing.
    """
    return _RequestRoot(tracer_name, name)


class _RequestRoot:
    __slots__ = ("_name", "_scope", "_token", "_tracer_name")

    def __init__(self, tracer_name: str, name: str) -> None:
        self._tracer_name = tracer_name
        self._name = name
        self._token: Token[str | None] | None = None
        self._scope: AbstractContextManager[Span] | None = None

    def __enter__(self) -> Span | None:
        if not enabled():
            return None
        tracer = get_tracer(self._tracer_name)
        root = _root_sampler
        if root is None or trace.get_current_span().get_span_context().is_valid:
            # The no-op provider (the exporter could not start), or already inside a trace: the
            # SDK's own path (a child follows its parent's decision).
            self._scope = tracer.start_as_current_span(self._name, kind=SpanKind.SERVER)
            span = self._scope.__enter__()
            return span if span.is_recording() else None
        trace_id = _IDS.generate_trace_id()
        if trace_id & root.TRACE_ID_LIMIT >= root.bound:
            self._token = _unrecorded.set(f"00-{trace_id:032x}-{_IDS.generate_span_id():016x}-00")
            return None
        preset = _preset_trace_id.set(trace_id)
        try:
            span = tracer.start_span(self._name, kind=SpanKind.SERVER)
        finally:
            _preset_trace_id.reset(preset)
        self._scope = trace.use_span(span, end_on_exit=True)
        self._scope.__enter__()
        return span

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._token is not None:
            _unrecorded.reset(self._token)
            self._token = None
        elif self._scope is not None:
            scope, self._scope = self._scope, None
            return scope.__exit__(exc_type, exc, tb)
        return None


def unrecorded_request() -> bool:
    """True inside a :func:`request_root` that is not sampled."""
    return _unrecorded.get() is not None


def inject(attributes: dict[str, str]) -> dict[str, str]:
    """Add the current span's ``traceparent`` to message ``attributes`` (returned)."""
    if enabled():
        unrecorded = _unrecorded.get()
        if unrecorded is not None and not trace.get_current_span().get_span_context().is_valid:
            attributes[TRACEPARENT] = unrecorded
        else:
            _PROPAGATOR.inject(attributes, setter=default_setter)
    return attributes


def link_from(attributes: Mapping[str, str]) -> Link | None:
    """A span link to the producer span named by ``attributes``' traceparent, if any."""
    if TRACEPARENT not in attributes:
        return None
    context = _PROPAGATOR.extract({TRACEPARENT: attributes[TRACEPARENT]})
    span_context = trace.get_current_span(context).get_span_context()
    return Link(span_context) if span_context.is_valid else None


def flush_traces(timeout_s: float = 10.0) -> None:
    """Export pending spans now (Cloud Run functions, before answering)."""
    with _lock:
        provider = _provider
    if provider is not None:
        provider.force_flush(int(timeout_s * 1000))


async def drain_traces(timeout_s: float = TRACE_EXPORT_DEADLINE_S) -> None:
    """Export pending spans and wait for the Cloud Trace writes in flight on the running loop.

    An event-loop worker's shutdown, while its loop still turns: spans shipped from the loop
    are written by tasks of it (:class:`~edp.observability.span_shipping.LoopTraceClient`),
    and a task still pending when the loop stops is cancelled, then written the blocking way
    with the loop held; waiting here lets them finish as they started. At most ``timeout_s``
    for the flush and as long again for the writes.
    """
    flush_traces(timeout_s)
    client = _loop_client
    if client is not None:
        await client.drain(timeout_s)


def reset_for_tests() -> None:
    """Forget the provider and the setting (the next call reads the environment again)."""
    global _provider, _enabled, _root_sampler, _loop_client  # noqa: PLW0603 - test reset
    with _lock:
        provider, _provider, _enabled, _root_sampler = _provider, None, None, None
        _loop_client = None
        _tracers.clear()
    if provider is not None:
        provider.shutdown()
