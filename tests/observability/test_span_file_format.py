"""The local span file writes each span as the OpenTelemetry SDK's own ``ReadableSpan.to_json``
does (same fields, same values), one compact line per span.

The reference is the SDK's serializer, run on the same finished spans: a server span with
attributes, and a child with a link (the producer context a consumer carries), an event and an
error status - every field ``to_json`` writes.
"""

from __future__ import annotations

import json

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from edp.observability.tracing import _json_line


def _spans() -> tuple[ReadableSpan, ...]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "edp-test"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span(
        "POST /v1/events", kind=SpanKind.SERVER, attributes={"http.route": "/v1/events"}
    ) as root:
        link = Link(root.get_span_context(), {"messaging.message.id": "m-1"})
        with tracer.start_as_current_span("load batch", links=[link]) as child:
            child.add_event("retry", {"attempt": 2, "delays": [0.1, 0.2]})
            child.set_status(Status(StatusCode.ERROR, "warehouse refused the batch"))
    return exporter.get_finished_spans()


def test_each_line_holds_what_the_sdk_writes_for_the_span() -> None:
    spans = _spans()
    assert len(spans) == 2
    for span in spans:
        line = _json_line(span)
        assert line.endswith("\n") and line.count("\n") == 1
        assert json.loads(line) == json.loads(span.to_json())


def test_the_link_event_and_status_survive_as_the_sdk_names_them() -> None:
    child = next(s for s in _spans() if s.name == "load batch")
    written = json.loads(_json_line(child))
    assert written["status"] == {
        "status_code": "ERROR",
        "description": "warehouse refused the batch",
    }
    assert written["events"][0]["attributes"] == {"attempt": 2, "delays": [0.1, 0.2]}
    assert written["links"][0]["attributes"] == {"messaging.message.id": "m-1"}
    assert written["links"][0]["context"]["trace_id"] == written["context"]["trace_id"]
    assert written["resource"]["attributes"]["service.name"] == "edp-test"
