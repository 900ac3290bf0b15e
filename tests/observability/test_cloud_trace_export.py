"""Spans to Cloud Trace through the real exporter, against a loopback stand-in of the API.

The stand-in serves ``google.devtools.cloudtrace.v2.TraceService/BatchWriteSpans`` (the one RPC
``CloudTraceSpanExporter.export`` makes; opentelemetry-exporter-gcp-trace
``CloudTraceSpanExporter.export``) with a generic gRPC handler, as tests/observability/gcmfake.py
does for Cloud Monitoring. The platform's ``EDP_TRACES_API_ENDPOINT`` points the exporter at it.

The second test is the bug it pins: the SDK's batch processor exports in the thread that
flushes, and functions flush before answering, so the client's default policy (retry for 120 s)
held a response for two minutes when Cloud Trace did not answer (the deployed cdc_flush test
took 112 s, nearly all of it here).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc  # type: ignore[import-untyped]
import pytest
from google.cloud.trace_v2 import BatchWriteSpansRequest
from google.protobuf.empty_pb2 import Empty

from edp.observability import tracing
from edp.settings import get_settings

SERVICE = "google.devtools.cloudtrace.v2.TraceService"


class TraceStandIn:
    """BatchWriteSpans on loopback: records span names, or (``hang``) never answers."""

    def __init__(self, *, hang: bool = False) -> None:
        self.names: list[str] = []
        self.calls = 0
        self.hang = hang
        self.release = threading.Event()
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "BatchWriteSpans": grpc.unary_unary_rpc_method_handler(
                    self._write,
                    request_deserializer=BatchWriteSpansRequest.deserialize,
                    response_serializer=Empty.SerializeToString,
                )
            },
        )
        self._executor = ThreadPoolExecutor(4)
        self._server = grpc.server(self._executor, handlers=[handler])
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def _write(self, request: Any, context: Any) -> Empty:
        self.calls += 1
        if self.hang:
            self.release.wait(300)  # longer than any client deadline; freed at teardown
        self.names += [span.display_name.value for span in request.spans]
        return Empty()

    def __enter__(self) -> TraceStandIn:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.stop(None)
        self._executor.shutdown(wait=True)


@pytest.fixture
def cloud_trace(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("EDP_TRACES_EXPORTER", "cloud_trace")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "edp-trace-test")
    get_settings.cache_clear()
    tracing.reset_for_tests()
    yield
    tracing.reset_for_tests()
    get_settings.cache_clear()


def _span_then_flush() -> threading.Thread:
    tracing.get_tracer("test").start_span("one request").end()
    flusher = threading.Thread(target=tracing.flush_traces, daemon=True)
    flusher.start()
    return flusher


def test_spans_reach_cloud_trace(cloud_trace: None, monkeypatch: pytest.MonkeyPatch) -> None:
    with TraceStandIn() as api:
        monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{api.port}")
        get_settings.cache_clear()
        _span_then_flush().join(30)
        assert api.names == ["one request"]


def test_a_cloud_trace_that_never_answers_does_not_hold_the_flush(
    cloud_trace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with TraceStandIn(hang=True) as api:
        monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{api.port}")
        get_settings.cache_clear()
        flusher = _span_then_flush()
        # The bound is the export deadline (5 s); the client's own default was 120 s.
        flusher.join(6 * tracing.TRACE_EXPORT_DEADLINE_S)
        assert not flusher.is_alive(), "flush_traces still waiting on Cloud Trace"
        assert api.calls >= 1  # it did try; the span batch was dropped, not the request
