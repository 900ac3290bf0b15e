"""The real job end to end on the local runner: Pub/Sub emulator -> pipeline -> warehouse port.

``run()`` with ``--runner=BundleBasedDirectRunner --streaming --sink=warehouse`` reads a fresh
subscription on the emulator through Beam's own ReadFromPubSub and writes micro-batches through
``edp.warehouse`` (DuckDB in tmp_path). Every valid event of a small batch must land in raw once,
every invalid one in the error table.
"""

from __future__ import annotations

import time
import uuid
from concurrent import futures
from typing import Any

import pytest
from edp_stream_load.pipeline import run

from edp.bus.clients import build_publisher, build_subscriber
from edp.load.samples import make_traffic


def _count(warehouse: Any, table: str) -> int:
    return int(warehouse.query(f"SELECT COUNT(*) AS n FROM {table}").scalar())


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_pipeline_lands_every_event_of_a_batch_in_the_warehouse(
    pubsub_emulator: Any, warehouse: Any
) -> None:
    traffic = make_traffic(
        60, duplicate_rate=0.05, invalid_rate=0.05, events_per_message=(1, 4), seed=31
    )
    publisher = build_publisher(emulator_host=pubsub_emulator.host)
    subscriber = build_subscriber(emulator_host=pubsub_emulator.host)
    name = f"beam-{uuid.uuid4().hex[:8]}"
    topic = f"projects/{pubsub_emulator.project}/topics/{name}"
    subscription = f"projects/{pubsub_emulator.project}/subscriptions/{name}"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic, ack_deadline_seconds=60)
    # Publish first: the direct runner's read pulls without return_immediately, and an empty
    # Pull on the emulator blocks for the read's whole 30 s RPC timeout.
    futures.wait([publisher.publish(topic, m) for m in traffic.messages])

    result = run(
        [
            "--runner=BundleBasedDirectRunner",
            "--streaming",
            "--sink=warehouse",
            f"--subscription={subscription}",
            "--window_seconds=2",
            "--early_firing_seconds=1",
            "--allowed_lateness_seconds=600",
            "--dedup_shards=4",
        ],
        wait=False,
    )
    try:
        deadline = time.monotonic() + 180
        expected = (len(traffic.valid_ids), len(traffic.invalid_ids))
        while time.monotonic() < deadline:
            got = (
                _count(warehouse, "raw.user_events"),
                _count(warehouse, "raw.user_events_errors"),
            )
            if got == expected:
                break
            time.sleep(0.5)
    finally:
        # Wake the read's blocking Pull (a blank line: no rows, no dead letters), then stop.
        publisher.publish(topic, b"\n").result()
        result.cancel()

    ids = [r["event_id"] for r in warehouse.query("SELECT event_id FROM raw.user_events").rows]
    assert sorted(ids) == sorted(traffic.valid_ids)  # every one, once (duplicates dropped)
    errors = warehouse.query("SELECT reason, payload FROM raw.user_events_errors").rows
    assert len(errors) == len(traffic.invalid_ids)
    assert all(e["reason"] for e in errors)
    payloads = "\n".join(e["payload"] for e in errors)
    assert all(invalid in payloads for invalid in traffic.invalid_ids)
    loaded = warehouse.query(
        "SELECT COUNT(*) AS n FROM raw.user_events WHERE loaded_at IS NULL OR "
        "pubsub_message_id IS NULL"
    ).scalar()
    assert loaded == 0
