"""One event's path is one trace: ingest request -> publish -> (Pub/Sub traceparent attribute)
-> loader batch -> warehouse write; and a CDC change -> cdc_flush batch -> warehouse write.

Expected structure, from the W3C Trace Context recommendation (the ``traceparent`` attribute is
``00-<trace-id>-<parent-span-id>-<flags>``: the consumer learns the producer's trace and span)
and OpenTelemetry's messaging conventions (a batch consumer links to each message's producer
span instead of choosing one parent). Spans are read back from the file exporter.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.spans import read_spans

from edp.bus.clients import build_publisher, build_subscriber
from edp.ingest.app import create_app
from edp.ingest.publisher import PubSubPublisher
from edp.observability import tracing
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse
from edp_tools.load.local_loader import LoaderConfig, LocalLoader
from edp_tools.local.pubsub_emulator import PubSubEmulator

ROOT = Path(__file__).resolve().parents[2]
WRITE_KEY = "trace-write-key"


def _one(spans: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = [s for s in spans if s["name"] == name]
    assert len(found) == 1, [s["name"] for s in spans]
    return found[0]


def _ids(span: dict[str, Any]) -> tuple[str, str]:
    return span["context"]["trace_id"], span["context"]["span_id"]


def _links(span: dict[str, Any]) -> set[tuple[str, str]]:
    return {(ln["context"]["trace_id"], ln["context"]["span_id"]) for ln in span["links"]}


def test_one_event_is_one_trace_from_request_to_warehouse(
    spans_file: Path, pubsub_emulator: PubSubEmulator, warehouse: Warehouse
) -> None:
    project, host = pubsub_emulator.project, pubsub_emulator.host
    name = f"events-{uuid.uuid4().hex[:8]}"
    topic, sub = f"projects/{project}/topics/{name}", f"projects/{project}/subscriptions/{name}"
    build_publisher(emulator_host=host).create_topic(name=topic)
    subscriber = build_subscriber(emulator_host=host)
    subscriber.create_subscription(name=sub, topic=topic)
    bad = f"bad-{uuid.uuid4().hex[:8]}"
    build_publisher(emulator_host=host).create_topic(name=f"projects/{project}/topics/{bad}")
    settings = Settings(
        _env_file=None, project=project, pubsub_emulator_host=host, topic_events=name,
        topic_bad_events=bad, write_keys=WRITE_KEY, metrics_exporter="none",
        traces_exporter="file", traces_file=spans_file,
    )  # fmt: skip
    publisher = PubSubPublisher(project, emulator_host=host, timeout_s=5.0)
    event_id = str(uuid.uuid4())
    event = {
        "event_id": event_id,
        "event_type": "page_view",
        "anonymous_id": "anon-1",
        "client_timestamp": "2026-11-26T10:00:00.000Z",
        "page_location": "https://shop.example/",
    }
    try:
        client = create_app(settings, publisher).test_client()
        response = client.post(
            "/v1/events", data=orjson.dumps(event), headers={"X-Write-Key": WRITE_KEY}
        )
        assert response.status_code == 200, response.data
    finally:
        publisher.close()
    config = LoaderConfig(subscription_path=sub, emulator_host=host, workers=1,
                          max_batch_delay_s=0.05)  # fmt: skip
    import threading

    LocalLoader(warehouse, config, subscriber).run(threading.Event(), exit_when_idle_s=0.5)
    rows = warehouse.query("SELECT event_id FROM raw.user_events").rows
    assert [r["event_id"] for r in rows] == [event_id]

    spans = read_spans(spans_file)
    request = _one(spans, "POST /v1/events")
    publish = _one(spans, f"{name} publish")
    batch = _one(spans, "events-loader process")
    write = _one(spans, "warehouse write")
    trace_id, request_id = _ids(request)
    assert request["parent_id"] is None and request["kind"] == "SpanKind.SERVER"
    assert publish["context"]["trace_id"] == trace_id
    assert publish["parent_id"] == request_id and publish["kind"] == "SpanKind.PRODUCER"
    assert batch["kind"] == "SpanKind.CONSUMER"
    assert _ids(publish) in _links(batch), "the loader batch must link to the publish span"
    assert write["parent_id"] == batch["context"]["span_id"]
    assert write["attributes"]["db.collection.name"] == "raw.user_events"


def test_a_cdc_change_links_to_its_flush_and_write(
    spans_file: Path, pubsub_emulator: PubSubEmulator, warehouse: Warehouse,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from opentelemetry.trace import SpanKind

    from edp.bus.messages import Message, publish_all
    from edp.cdc.flush import CdcFlusher
    from edp.cdc.topology import ensure_cdc_topology

    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("EDP_CDC_TOPIC_PREFIX", f"cdc{suffix}")
    monkeypatch.setenv("EDP_CDC_SUBSCRIPTION_PREFIX", f"cdc-flush{suffix}")
    monkeypatch.setenv("EDP_CDC_DEAD_LETTER_TOPIC", f"cdc-dead-letter{suffix}")
    monkeypatch.setenv("EDP_TOPIC_EVENTS_DEAD_LETTER", f"events-dead-letter{suffix}")
    get_settings.cache_clear()
    settings = get_settings()
    ensure_cdc_topology(settings)
    change = (ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_bytes()
    # The producer side of a traced capture: a span whose context rides in the message.
    with tracing.get_tracer("test.capture").start_as_current_span(
        "shop.orders capture", kind=SpanKind.PRODUCER
    ):
        attributes = tracing.inject({})
    assert set(attributes) == {"traceparent"}
    topic = f"{settings.cdc_topic_prefix}.shop.orders"
    publish_all(topic, [Message(change, attributes)], settings=settings)
    flusher = CdcFlusher(warehouse, settings.model_copy(update={"cdc_flush_interval_sec": 0.3}))
    flusher.run(until_idle_s=2.0, max_run_s=60)
    assert flusher.stats.rows_written == 1

    spans = read_spans(spans_file)
    capture = _one(spans, "shop.orders capture")
    batch = _one(spans, "cdc_flush process")
    write = _one(spans, "warehouse write")
    assert _ids(capture) in _links(batch)
    assert write["parent_id"] == batch["context"]["span_id"]
    assert write["attributes"]["db.collection.name"] == "raw.cdc_orders"
    _, parent_span = attributes["traceparent"].split("-")[1:3]
    assert capture["context"]["span_id"] == f"0x{parent_span}"
