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

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from edp.observability import tracing
from edp.settings import get_settings
from edp_tools.bench._cloud_trace import TraceStandIn


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


def test_spans_ended_on_an_event_loop_reach_cloud_trace_from_that_loop(
    cloud_trace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ingest worker's case: the span ends on the running loop, the asyncio client writes
    it from a task of that loop, and no export thread is started."""
    with TraceStandIn() as api:
        monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{api.port}")
        get_settings.cache_clear()
        before = {t.name for t in threading.enumerate()}

        async def request() -> None:
            tracing.get_tracer("test").start_span("on the loop").end()
            deadline = time.monotonic() + 10
            while not api.names and time.monotonic() < deadline:
                await asyncio.sleep(0.05)

        asyncio.run(request())
        assert api.names == ["on the loop"]
        started = {t.name for t in threading.enumerate()} - before
        assert not [name for name in started if name.startswith("OtelBatch")], started


def test_a_cloud_trace_that_never_answers_does_not_stall_the_loop(
    cloud_trace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the write waits (up to the export deadline), the loop goes on turning."""
    with TraceStandIn(hang=True) as api:
        monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{api.port}")
        get_settings.cache_clear()
        gaps: list[float] = []

        async def request() -> None:
            tracing.get_tracer("test").start_span("into the void").end()
            deadline = time.monotonic() + 10
            calls_seen_at: float | None = None
            # every gap from the span's end until 1 s after the write reached the stand-in
            while time.monotonic() < deadline:
                start = time.monotonic()
                await asyncio.sleep(0.05)
                gaps.append(time.monotonic() - start)
                if api.calls and calls_seen_at is None:
                    calls_seen_at = time.monotonic()
                if calls_seen_at is not None and time.monotonic() - calls_seen_at > 1.0:
                    break

        asyncio.run(request())
        assert api.calls >= 1
        # a loop blocked on the RPC would show one gap of seconds (the 5 s deadline)
        assert max(gaps) < 1.0, gaps


def test_drain_traces_returns_once_the_loops_writes_are_done(
    cloud_trace: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An event-loop worker's shutdown: ``drain_traces`` ships what is pending and returns once
    the write, a task of the loop, is done, while the loop still turns (a write still pending
    when it stops is cancelled, and only then written with the loop held)."""
    with TraceStandIn(delay_s=0.5) as api:
        monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{api.port}")
        get_settings.cache_clear()
        written_by_then: list[str] = []

        async def last_request() -> None:
            tracing.get_tracer("test").start_span("last request").end()
            await tracing.drain_traces()
            written_by_then.extend(api.names)

        asyncio.run(last_request())
        assert written_by_then == ["last request"]
        assert api.calls == 1  # the asyncio write, not a cancelled one and a blocking one


@pytest.mark.parametrize("in_flight", [False, True], ids=["not-started", "in-flight"])
def test_a_write_pending_when_the_loop_stops_is_written_the_blocking_way(
    cloud_trace: None, monkeypatch: pytest.MonkeyPatch, in_flight: bool
) -> None:
    """A server with no drain hook (functions-framework's app on Cloud Run): ``asyncio.run``
    cancels the write task as its loop stops, before it started or with its RPC on the wire,
    and the client writes the spans with its blocking client instead of losing them. The
    stand-in drops the cancelled RPC (its caller is gone when it answers), so the span is
    there once, from the blocking write."""
    with TraceStandIn(delay_s=0.5) as api:
        monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{api.port}")
        get_settings.cache_clear()

        async def last_request() -> None:
            tracing.get_tracer("test").start_span("last request").end()
            tracing.flush_traces()  # shipped: a write task of this loop
            if in_flight:
                deadline = time.monotonic() + 10
                while not api.calls and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                assert api.calls == 1  # the asyncio write reached the stand-in

        asyncio.run(last_request())
        assert api.names == ["last request"]
