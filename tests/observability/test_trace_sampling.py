"""Trace sampling: a share of new traces is recorded, and a hop follows the traceparent it got.

Expected values by hand: W3C Trace Context's ``trace-flags`` byte ``01`` means sampled, ``00``
not (https://www.w3.org/TR/trace-context/#trace-flags); OpenTelemetry's ParentBased sampler
follows that flag for a child, and TraceIdRatioBased records a root when its trace id falls in
the lowest ``ratio`` share of the id space, so over 4,000 random roots at 0.25 the recorded
count is binomial (mean 1,000, sd 27): 850-1,150 is beyond 5 sd either way.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import context as otel_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from tests.spans import read_spans

from edp.observability import tracing
from edp.settings import Settings, get_settings

SAMPLED = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
NOT_SAMPLED = "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203332-00"


@pytest.fixture
def traced(spans_file: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EDP_TRACES_SAMPLE_RATIO", "0.25")
    get_settings.cache_clear()
    tracing.reset_for_tests()
    return spans_file


def _names(path: Path) -> list[str]:
    return [span["name"] for span in read_spans(path)]


def test_a_quarter_of_new_traces_are_recorded(traced: Path) -> None:
    tracer = tracing.get_tracer("test")
    for _ in range(4000):
        tracer.start_span("root").end()
    assert 850 <= _names(traced).count("root") <= 1150


def test_a_hop_follows_the_sampled_flag_it_received(traced: Path) -> None:
    tracer = tracing.get_tracer("test")
    for name, parent in (("under-sampled", SAMPLED), ("under-unsampled", NOT_SAMPLED)):
        ctx = TraceContextTextMapPropagator().extract({"traceparent": parent})
        token = otel_context.attach(ctx)
        try:
            for _ in range(50):
                tracer.start_span(name).end()  # a child of the attached remote parent
        finally:
            otel_context.detach(token)
    names = _names(traced)
    assert names.count("under-sampled") == 50
    assert names.count("under-unsampled") == 0


def test_the_traceparent_travels_even_when_not_recorded(traced: Path) -> None:
    tracer = tracing.get_tracer("test")
    sampled_bits = set()
    for _ in range(400):
        with tracer.start_as_current_span("publish"):
            carried = tracing.inject({})
            # the low bit of trace-flags is "sampled" (level 2 adds 0x02, "random trace id")
            sampled_bits.add(int(carried["traceparent"][-2:], 16) & 0x01)
    assert sampled_bits == {0, 1}  # every message carries one, recorded or not


def test_ingest_at_a_ratio_every_message_names_its_request_and_sampled_ones_their_spans(
    traced: Path,
) -> None:
    # Through the real ingest app: every published message carries a traceparent. A sampled
    # one (flags' low bit set) names a recorded producer span, child of a recorded server span
    # of the same trace; of an unsampled one's trace (low bit clear) no span is recorded.
    from edp.ingest.app import create_app
    from edp.ingest.publisher import RecordingPublisher

    settings = Settings(_env_file=None, project="p", write_keys="k", metrics_exporter="none")
    publisher = RecordingPublisher()
    client = create_app(settings, publisher).test_client()
    event = {"event_type": "page_view", "anonymous_id": "a1",
             "client_timestamp": "2026-11-26T10:00:00Z"}  # fmt: skip
    for _ in range(400):
        response = client.post("/v1/events", json=event, headers={"X-Write-Key": "k"})
        assert response.status_code == 200, response.data
    carried = [m.attributes["traceparent"] for m in publisher.messages["events"]]
    assert len(carried) == 400
    spans = read_spans(traced)
    by_id = {s["context"]["span_id"]: s for s in spans}
    recorded_traces = {s["context"]["trace_id"] for s in spans}
    sampled = [tp for tp in carried if int(tp[-2:], 16) & 0x01]
    assert 50 <= len(sampled) <= 150  # binomial(400, 0.25): mean 100, sd 8.7
    for traceparent in carried:
        _, trace_id, span_id, flags = traceparent.split("-")
        if int(flags, 16) & 0x01:
            producer = by_id["0x" + span_id]
            assert producer["kind"] == "SpanKind.PRODUCER"
            server = by_id[producer["parent_id"]]
            assert server["kind"] == "SpanKind.SERVER"
            assert (
                server["context"]["trace_id"] == producer["context"]["trace_id"] == "0x" + trace_id
            )
        else:
            assert "0x" + trace_id not in recorded_traces
    assert len(spans) == 2 * len(sampled)


def test_a_publish_outside_any_request_is_its_own_traced_root(traced: Path) -> None:
    # No request span to name: the producer span is the root (sampled at the ratio), and the
    # message carries its traceparent either way.
    from edp.ingest.publisher import OutboundMessage, RecordingPublisher
    from edp.ingest.traced import TracedPublisher

    inner = RecordingPublisher()
    publisher = TracedPublisher(inner)
    for _ in range(200):
        publisher.publish("events", [OutboundMessage(b"{}", {"event_count": "1"})])
    carried = [m.attributes.get("traceparent", "") for m in inner.messages["events"]]
    assert all(len(tp.split("-")) == 4 for tp in carried)
    recorded = [s for s in read_spans(traced) if s["name"] == "events publish"]
    sampled = [tp for tp in carried if int(tp[-2:], 16) & 0x01]
    assert len(recorded) == len(sampled) and 0 < len(sampled) < 200
    assert all(s["parent_id"] is None for s in recorded)


def test_an_unrecorded_request_root_still_gives_its_messages_a_traceparent(
    spans_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ratio 0: no root is recorded, and request_root never asks the SDK for a span; what it
    # injects is still a well-formed W3C traceparent (version 00, 32 + 16 hex, flags 00), a new
    # trace per request, and nothing once the request is over.
    monkeypatch.setenv("EDP_TRACES_SAMPLE_RATIO", "0")
    get_settings.cache_clear()
    tracing.reset_for_tests()
    carried = []
    for _ in range(50):
        with tracing.request_root("test", "POST /v1/events") as span:
            assert span is None
            carried.append(tracing.inject({})["traceparent"])
    assert tracing.inject({}) == {}
    for traceparent in carried:
        version, trace_id, span_id, flags = traceparent.split("-")
        assert (version, flags) == ("00", "00")
        assert len(trace_id) == 32 and int(trace_id, 16) != 0
        assert len(span_id) == 16 and int(span_id, 16) != 0
    assert len({tp.split("-")[1] for tp in carried}) == 50
    tracing.flush_traces()
    assert read_spans(spans_file) == []


def test_a_request_root_under_a_remote_parent_follows_its_decision(traced: Path) -> None:
    recorded_ids = []
    for parent in (SAMPLED, NOT_SAMPLED):
        ctx = TraceContextTextMapPropagator().extract({"traceparent": parent})
        token = otel_context.attach(ctx)
        try:
            for _ in range(20):
                with tracing.request_root("test", "child") as span:
                    carried = tracing.inject({})["traceparent"]
                    # the parent's trace, the parent's sampled flag
                    assert carried.split("-")[1] == parent.split("-")[1]
                    assert carried.endswith(parent[-2:])
                    if span is not None:
                        recorded_ids.append(f"{span.get_span_context().trace_id:032x}")
        finally:
            otel_context.detach(token)
    assert recorded_ids == [SAMPLED.split("-")[1]] * 20
    assert _names(traced).count("child") == 20


def test_a_sampled_root_keeps_its_drawn_trace_id_and_no_other_span_does(traced: Path) -> None:
    # The trace id drawn for the sampling decision is the recorded span's; it is not reused by
    # the spans that follow (each root its own trace).
    trace_ids = []
    while len(trace_ids) < 10:
        with tracing.request_root("test", "root") as span:
            if span is not None:
                carried = tracing.inject({})["traceparent"]
                trace_id = span.get_span_context().trace_id
                assert carried.split("-")[1] == f"{trace_id:032x}"
                trace_ids.append(trace_id)
                tracer = tracing.get_tracer("test")
                other = tracer.start_span("other", context=otel_context.Context())
                assert other.get_span_context().trace_id != trace_id
                other.end()
    assert len(set(trace_ids)) == 10


def test_a_request_root_is_recorded_exactly_when_the_sdk_s_sampler_would_record_it(
    traced: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """request_root applies TraceIdRatioBased's rule itself; the SDK's sampler is the referee.

    At 0.25 the SDK records a root whose trace id's low 64 bits are below
    round(0.25 * 2**64) = 2**62 (opentelemetry-sdk ``TraceIdRatioBased.should_sample``), so ids
    just below and at that bound, with high bits set or not, fall on both sides of it.
    """
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    bound = 1 << 62
    ids = [bound - 1, bound, bound + 1, 1, (1 << 64) - 1, (7 << 64) | (bound - 1), 7 << 64 | bound]
    referee = ParentBased(TraceIdRatioBased(0.25))
    expected = [referee.should_sample(None, i, "r").decision.is_sampled() for i in ids]
    assert expected == [True, False, False, True, False, True, False]  # written down by hand

    class Drawn(RandomIdGenerator):
        def __init__(self) -> None:
            self.queue = list(ids)

        def generate_trace_id(self) -> int:
            return self.queue.pop(0)

    monkeypatch.setattr(tracing, "_IDS", Drawn())
    recorded = []
    for _ in ids:
        with tracing.request_root("test", "root") as span:
            recorded.append(span is not None)
    assert recorded == expected
    tracing.flush_traces()
    assert [int(s["context"]["trace_id"], 16) for s in read_spans(traced)] == [
        i for i, kept in zip(ids, expected, strict=True) if kept
    ]
