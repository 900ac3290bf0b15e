"""Ingest test fixtures: private topics/subscriptions on the real emulator, app factories.

Each test gets its own ``events`` and ``events-bad`` topics (unique names) with a subscription
on each, so tests never see each other's messages (nor other areas' tests on the shared
session emulator).
"""

from __future__ import annotations

import base64
import http.client
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from flask import Flask

from edp.bus.clients import build_publisher, build_subscriber
from edp.bus.messages import Received, ack, pull_many
from edp.ingest.app import create_app
from edp.ingest.publisher import PubSubPublisher
from edp.settings import Settings
from edp_tools.local.pubsub_emulator import PubSubEmulator

WRITE_KEY = "test-write-key"
OTHER_KEY = "second-key"


def basic(key: str) -> dict[str, str]:
    """The Authorization header the Segment SDKs send (key as username, empty password)."""
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


AUTH = {"X-Write-Key": WRITE_KEY}


@dataclass
class Bus:
    """Private topics + subscriptions of one test."""

    emulator: PubSubEmulator
    events_topic: str
    bad_topic: str
    events_sub: str
    bad_sub: str

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "project": self.emulator.project,
            "pubsub_emulator_host": self.emulator.host,
            "topic_events": self.events_topic,
            "topic_bad_events": self.bad_topic,
            "write_keys": f"{WRITE_KEY},{OTHER_KEY}",
            "metrics_exporter": "prometheus",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def _drain(self, sub: str, settings: Settings) -> list[Received]:
        got = pull_many(sub, max_messages=5000, settings=settings, return_immediately=True)
        if got:
            ack(sub, got, settings=settings)
        return got

    def events(self) -> list[dict[str, Any]]:
        """Every accepted event published so far (NDJSON lines of every message), acked."""
        out: list[dict[str, Any]] = []
        for message in self.event_messages():
            out.extend(orjson.loads(line) for line in message.data.splitlines())
        return out

    def event_messages(self) -> list[Received]:
        return self._drain(self.events_sub, self.settings())

    def bad(self) -> list[dict[str, Any]]:
        """Every refused-event record published so far, acked."""
        return [orjson.loads(m.data) for m in self._drain(self.bad_sub, self.settings())]


@pytest.fixture
def bus(pubsub_emulator: PubSubEmulator) -> Iterator[Bus]:
    """Unique events/bad topics with one subscription each on the session emulator."""
    suffix = uuid.uuid4().hex[:10]
    project = pubsub_emulator.project
    b = Bus(
        pubsub_emulator,
        f"events-{suffix}",
        f"events-bad-{suffix}",
        f"events-sub-{suffix}",
        f"events-bad-sub-{suffix}",
    )
    publisher = build_publisher(emulator_host=pubsub_emulator.host)
    subscriber = build_subscriber(emulator_host=pubsub_emulator.host)
    for topic, sub in ((b.events_topic, b.events_sub), (b.bad_topic, b.bad_sub)):
        publisher.create_topic(name=f"projects/{project}/topics/{topic}")
        subscriber.create_subscription(
            request={
                "name": f"projects/{project}/subscriptions/{sub}",
                "topic": f"projects/{project}/topics/{topic}",
                "ack_deadline_seconds": 60,
            }
        )
    yield b
    for sub in (b.events_sub, b.bad_sub):
        subscriber.delete_subscription(
            request={"subscription": f"projects/{project}/subscriptions/{sub}"}
        )
    for topic in (b.events_topic, b.bad_topic):
        publisher.delete_topic(request={"topic": f"projects/{project}/topics/{topic}"})


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(bus: Bus) -> Iterator[AppFactory]:
    """Build ingest apps on the test's bus (settings overrides as keyword arguments)."""
    publishers: list[PubSubPublisher] = []

    def factory(**overrides: Any) -> Flask:
        settings = bus.settings(**overrides)
        publisher = PubSubPublisher(
            settings.project, emulator_host=settings.pubsub_emulator_host, timeout_s=3.0
        )
        publishers.append(publisher)
        return create_app(settings, publisher)

    yield factory
    for p in publishers:
        p.close()


@pytest.fixture
def app(make_app: AppFactory) -> Flask:
    return make_app()


def post_events(port: int, body: bytes) -> int:
    """POST ``body`` to ``/v1/events`` on a loopback server (write key in the header): status."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", "/v1/events", body=body, headers=AUTH)
        return conn.getresponse().status
    finally:
        conn.close()


def event(**fields: Any) -> dict[str, Any]:
    """A valid native event (fields override)."""
    base: dict[str, Any] = {
        "event_type": "page_view",
        "anonymous_id": "anon-1",
        "client_timestamp": "2026-11-26T10:00:00.000Z",
        "page_location": "https://shop.example/",
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}
