"""Ingest's spans: the request is the root of its events' trace; the publish span's
``traceparent`` rides in every Pub/Sub message it sends (:mod:`edp.observability.tracing`).

Both wrappers return what they were given when tracing is off, so the hot path pays nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from flask import Request, Response
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from edp.ingest.publisher import OutboundMessage, Publisher
from edp.observability import tracing


class TracedPublisher:
    """Publish inside a producer span and carry its context in each message's attributes."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        if tracing.unrecorded_request() or _inside_unsampled_span():
            # Inside an unsampled request (most of them at the deployed ratio): its producer span
            # would be unsampled too (parent-based) and never exported, so none is made. The
            # messages still carry the request's traceparent with the sampled flag off, as they
            # would the producer's; consumers only link to it. (No request span at all: a
            # producer span is the root, sampled at the ratio, as before.)
            self.inner.publish(topic, _carrying_context(messages))
            return
        tracer = tracing.get_tracer("edp.ingest")
        with tracer.start_as_current_span(f"{topic} publish", kind=SpanKind.PRODUCER) as span:
            span.set_attribute("messaging.system", "gcp_pubsub")
            span.set_attribute("messaging.destination.name", topic)
            span.set_attribute("messaging.batch.message_count", len(messages))
            self.inner.publish(topic, _carrying_context(messages))

    def check(self, topic: str) -> None:
        self.inner.check(topic)

    def close(self) -> None:
        self.inner.close()


def _inside_unsampled_span() -> bool:
    current = trace.get_current_span()
    return current.get_span_context().is_valid and not current.is_recording()


def _carrying_context(messages: Sequence[OutboundMessage]) -> list[OutboundMessage]:
    """The messages with the current span's ``traceparent`` added to their attributes."""
    # built directly: dataclasses.replace inspects the fields on every call
    return [OutboundMessage(m.data, tracing.inject(dict(m.attributes))) for m in messages]


def traced_publisher(publisher: Publisher) -> Publisher:
    """``publisher`` with producer spans when tracing is on, else itself."""
    return TracedPublisher(publisher) if tracing.enabled() else publisher


def traced_handler(
    handle: Callable[[str, Request], Response],
) -> Callable[[str, Request], Response]:
    """``handle(route, request)`` inside a server span when tracing is on, else itself."""
    if not tracing.enabled():
        return handle

    def traced(route: str, req: Request) -> Response:
        with tracing.request_root("edp.ingest", f"POST /v1/{route}") as span:
            response = handle(route, req)
            if span is not None:
                span.set_attribute("http.route", f"/v1/{route}")
                span.set_attribute("http.response.status_code", response.status_code)
            return response

    return traced
