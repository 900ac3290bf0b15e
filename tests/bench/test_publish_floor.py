"""The ingest benchmark's publish floor, served by a real uvicorn against the real emulator.

It must do exactly what its meaning says (edp_tools/bench/meanings.py): each POST's body is on
the bus, as one message, before the 200; a bus that refuses is a 503 (an error the benchmark
counts); a probe publishes nothing.
"""

from __future__ import annotations

import http.client
import importlib
import uuid
from collections.abc import Iterator

import pytest
from tests.asgi_server import serving

from edp.bus.clients import build_publisher, build_subscriber
from edp.bus.messages import pull_many
from edp.settings import Settings
from edp_tools.local.pubsub_emulator import PubSubEmulator


@pytest.fixture
def floor_topic(pubsub_emulator: PubSubEmulator) -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    project = pubsub_emulator.project
    topic, sub = f"floor-{suffix}", f"floor-sub-{suffix}"
    build_publisher(emulator_host=pubsub_emulator.host).create_topic(
        name=f"projects/{project}/topics/{topic}"
    )
    build_subscriber(emulator_host=pubsub_emulator.host).create_subscription(
        request={
            "name": f"projects/{project}/subscriptions/{sub}",
            "topic": f"projects/{project}/topics/{topic}",
        }
    )
    yield topic, sub


def _post(port: int, method: str, body: bytes = b"") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, "/v1/events", body=body)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_each_body_is_one_message_on_the_bus_before_the_answer(
    pubsub_emulator: PubSubEmulator,
    floor_topic: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topic, sub = floor_topic
    monkeypatch.setenv("EDP_BENCH_FLOOR_TOPIC", topic)
    from edp_tools.bench import _ingest_publish_floor

    floor = importlib.reload(_ingest_publish_floor)  # a fresh module: no publisher yet
    with serving(floor.app) as (port, _):
        assert _post(port, "GET") == 200  # a probe
        bodies = [b'{"event_type":"page_view","n":%d}' % i for i in range(3)]
        assert [_post(port, "POST", body) for body in bodies] == [200, 200, 200]
        monkeypatch.setenv("EDP_BENCH_FLOOR_TOPIC", f"missing-{uuid.uuid4().hex[:8]}")
        assert _post(port, "POST", b"{}") == 503
    settings = Settings(
        _env_file=None, project=pubsub_emulator.project, pubsub_emulator_host=pubsub_emulator.host
    )
    got = pull_many(sub, max_messages=100, settings=settings, return_immediately=True)
    assert sorted(m.data for m in got) == sorted(bodies)
    assert all(m.attributes == {"event_count": "1"} for m in got)
