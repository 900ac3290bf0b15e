"""The real path end to end: generated events -> HTTP sender -> the real ingest app on loopback
-> the Pub/Sub emulator. Every event must be accepted and classified as the generator meant."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import date
from typing import Any

import orjson
import pytest
from werkzeug.serving import make_server

from edp.bus.clients import build_publisher, build_subscriber
from edp.bus.messages import ack, pull_many
from edp.ingest.app import create_app
from edp.ingest.publisher import PubSubPublisher
from edp.settings import Settings
from edp_tools.generator import Generator, GeneratorConfig
from edp_tools.generator.sinks import HttpSender, send_http
from edp_tools.local.processes import wait_until
from edp_tools.local.pubsub_emulator import PubSubEmulator

pytestmark = pytest.mark.timeout(180)
WRITE_KEY = "generator-test-key"


@pytest.fixture
def ingest(pubsub_emulator: PubSubEmulator) -> Iterator[tuple[str, Settings, str]]:
    """The ingest app served on a free loopback port, publishing to a private topic."""
    suffix = uuid.uuid4().hex[:10]
    project = pubsub_emulator.project
    topic, bad, sub = f"gen-events-{suffix}", f"gen-bad-{suffix}", f"gen-sub-{suffix}"
    publisher_client = build_publisher(emulator_host=pubsub_emulator.host)
    subscriber_client = build_subscriber(emulator_host=pubsub_emulator.host)
    for name in (topic, bad):
        publisher_client.create_topic(name=f"projects/{project}/topics/{name}")
    subscriber_client.create_subscription(
        request={
            "name": f"projects/{project}/subscriptions/{sub}",
            "topic": f"projects/{project}/topics/{topic}",
            "ack_deadline_seconds": 60,
        }
    )
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        project=project,
        pubsub_emulator_host=pubsub_emulator.host,
        topic_events=topic,
        topic_bad_events=bad,
        write_keys=WRITE_KEY,
        metrics_exporter="none",
    )
    publisher = PubSubPublisher(project, emulator_host=pubsub_emulator.host, timeout_s=5.0)
    server = make_server("127.0.0.1", 0, create_app(settings, publisher), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", settings, sub
    finally:
        server.shutdown()
        publisher.close()
        subscriber_client.delete_subscription(
            request={"subscription": f"projects/{project}/subscriptions/{sub}"}
        )
        for name in (topic, bad):
            publisher_client.delete_topic(request={"topic": f"projects/{project}/topics/{name}"})


def test_generated_events_are_accepted_and_classified_as_generated(
    ingest: tuple[str, Settings, str],
) -> None:
    url, settings, sub = ingest
    table = (
        Generator(GeneratorConfig(start=date(2026, 11, 24), scale=0.001, seed=21))
        .day(0)
        .table.slice(0, 600)
    )
    stats = send_http(HttpSender(url=url, write_key=WRITE_KEY, concurrency=4), [table], 50)
    assert stats.rejected == 0 and stats.failed_requests == 0, stats
    assert stats.accepted == table.num_rows

    received: dict[str, dict[str, Any]] = {}

    def drained() -> bool:
        got = pull_many(sub, max_messages=1000, settings=settings, return_immediately=True)
        if got:
            ack(sub, got, settings=settings)
        for message in got:
            for line in message.data.splitlines():
                event = orjson.loads(line)
                received[event["event_id"]] = event
        return len(received) >= table.num_rows

    wait_until(drained, timeout=60, what="generated events on the events topic")
    expected = {row["event_id"]: row for row in table.to_pylist()}
    assert received.keys() == expected.keys()
    mismatched = [
        (e["user_agent"], e["device_type"], expected[i]["device_type"])
        for i, e in received.items()
        if (e["device_type"], e["platform"])
        != (expected[i]["device_type"], expected[i]["platform"])
    ]
    assert not mismatched, mismatched[:5]
    # the client fields survive the trip unchanged
    some = next(i for i, row in expected.items() if row["event_type"] == "view_item")
    assert received[some]["items"][0]["item_id"] == expected[some]["items"][0]["item_id"]
    assert received[some]["session_id"] == expected[some]["session_id"]
