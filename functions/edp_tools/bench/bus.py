"""Message bus and local stack figures: Pub/Sub emulator throughput with our helpers, and how
long the laptop stack's services take to start.

Keys:
    bus.publish.msgs_per_s: ``publish_all`` of 50,000 ~300-byte messages (default publisher
        tuning: 500 messages / 1 MB / 10 ms batches), until every future resolved.
    bus.pull.msgs_per_s: ``pull_many`` (4 parallel synchronous pulls of <= 100) + ``ack`` of
        the same 50,000 messages.
    local.emulator_start_s / local.postgres_start_s: cold start of the Pub/Sub emulator and of a
        fresh PostgreSQL 15 cluster (initdb + server) until they accept requests.
"""

from __future__ import annotations

import shutil
import tempfile
import time
import uuid
from pathlib import Path

from edp_tools.bench import benchmark

MESSAGES = 50_000


@benchmark(
    "bus",
    units={"bus.publish.msgs_per_s": "msg/s", "bus.pull.msgs_per_s": "msg/s"},
)
def bench_bus() -> dict[str, float]:
    """Publish and pull throughput of edp.bus on the Pub/Sub emulator."""
    from edp.bus import (
        Message,
        SubscriptionSpec,
        TopicSpec,
        Topology,
        ack,
        ensure_topology,
        publish_all,
        pull_many,
    )
    from edp.settings import Settings
    from edp_tools.local.pubsub_emulator import PubSubEmulator

    with PubSubEmulator("edp-bench") as emulator:
        settings = Settings(
            _env_file=None, PUBSUB_EMULATOR_HOST=emulator.host, GOOGLE_CLOUD_PROJECT="edp-bench"
        )
        suffix = uuid.uuid4().hex[:8]
        topology = Topology(
            (TopicSpec("t", f"bench-{suffix}"),),
            (SubscriptionSpec("s", f"bench-{suffix}", topic="t", retry=None),),
        )
        ensure_topology(topology, settings=settings)
        payload = b'{"event_name":"page_view","user_id":"u-0000001","page":"/p/1"}' * 5
        messages = [Message(payload, {"schema_version": "1"}) for _ in range(MESSAGES)]

        started = time.perf_counter()
        publish_all(topology.topic_name("t"), messages, settings=settings, timeout_s=300)
        publish_s = time.perf_counter() - started

        sub = topology.subscription_name("s")
        received = 0
        started = time.perf_counter()
        deadline = started + 300
        while received < MESSAGES and time.perf_counter() < deadline:
            batch = pull_many(sub, max_messages=1000, streams=4, settings=settings)
            ack(sub, batch, settings=settings)
            received += len(batch)
        pull_s = time.perf_counter() - started
    return {
        "bus.publish.msgs_per_s": MESSAGES / publish_s,
        "bus.pull.msgs_per_s": received / pull_s,
    }


@benchmark(
    "local",
    units={"local.emulator_start_s": "s", "local.postgres_start_s": "s"},
)
def bench_local_start() -> dict[str, float]:
    """Cold start of the local stack's services."""
    from edp_tools.local.postgres import PostgresCluster
    from edp_tools.local.pubsub_emulator import PubSubEmulator

    started = time.perf_counter()
    with PubSubEmulator("edp-bench"):
        emulator_s = time.perf_counter() - started
    folder = Path(tempfile.mkdtemp(prefix="edp-bench-pg-"))
    try:
        started = time.perf_counter()
        with PostgresCluster(folder / "cluster"):
            postgres_s = time.perf_counter() - started
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"local.emulator_start_s": emulator_s, "local.postgres_start_s": postgres_s}
