"""Publish, pull, batching, ordering, dead-letter and redelivery on the real Pub/Sub emulator."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from typing import Any

import grpc
import pytest

from edp.bus import (
    DeadLetterPolicy,
    Message,
    PublisherTuning,
    SubscriptionSpec,
    TopicSpec,
    Topology,
    ack,
    build_topology,
    ensure_topology,
    extend,
    get_subscriber,
    nack,
    publish_all,
    pull,
    pull_many,
    subscription_path,
)
from edp.bus.clients import build_publisher
from edp.errors import ConfigError
from edp.settings import Settings
from edp_tools.local.processes import wait_until

from .conftest import MakeTopology


def _simple(unique: str, *, ordering: bool = False, ack_deadline_s: int = 60) -> Topology:
    return Topology(
        (TopicSpec("t", f"t-{unique}"),),
        (
            SubscriptionSpec(
                "s",
                f"s-{unique}",
                topic="t",
                ordering=ordering,
                ack_deadline_s=ack_deadline_s,
                retry=None,
            ),
        ),
    )


def _drain(sub: str, settings: Settings, expected: int) -> list[Any]:
    got: list[Any] = []

    def more() -> bool:
        batch = pull_many(sub, max_messages=expected - len(got), settings=settings)
        got.extend(batch)
        ack(sub, batch, settings=settings)
        return len(got) >= expected

    wait_until(more, timeout=60, what=f"{expected} messages on {sub}")
    return got


def test_platform_topology_is_created_idempotently(bus: Settings, unique: str) -> None:
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        PUBSUB_EMULATOR_HOST=bus.pubsub_emulator_host,
        GOOGLE_CLOUD_PROJECT=f"proj-{unique}",
    )
    topology = build_topology(settings)
    first = ensure_topology(topology, settings=settings)
    assert len(first.created) == len(topology.topics) + len(topology.subscriptions)
    assert first.existing == [] and first.updated == []
    second = ensure_topology(topology, settings=settings)
    assert second.created == [] and second.updated == []
    assert len(second.existing) == len(first.created)

    sub = get_subscriber(settings).get_subscription(
        request={"subscription": subscription_path(settings.project, "cdc-flush.shop.orders")}
    )
    assert not sub.enable_message_ordering
    assert sub.ack_deadline_seconds == 120
    assert sub.dead_letter_policy.dead_letter_topic.endswith("/topics/cdc-dead-letter")
    assert sub.dead_letter_policy.max_delivery_attempts == settings.max_delivery_attempts


def test_mutable_drift_is_fixed_and_immutable_drift_refused(
    make_topology: MakeTopology, bus: Settings, unique: str
) -> None:
    make_topology(_simple(unique, ack_deadline_s=30))
    report = ensure_topology(_simple(unique, ack_deadline_s=45), settings=bus)
    assert report.updated == [subscription_path(bus.project, f"s-{unique}")]
    sub = get_subscriber(bus).get_subscription(
        request={"subscription": subscription_path(bus.project, f"s-{unique}")}
    )
    assert sub.ack_deadline_seconds == 45
    with pytest.raises(ConfigError, match="ordering cannot change"):
        ensure_topology(_simple(unique, ordering=True, ack_deadline_s=45), settings=bus)


def test_publish_and_pull_round_trip(
    make_topology: MakeTopology, bus: Settings, unique: str
) -> None:
    topo = make_topology(_simple(unique))
    payloads = [json.dumps({"n": i}).encode() for i in range(250)]
    ids = publish_all(
        topo.topic_name("t"),
        [Message(p, {"schema_version": "1", "n": str(i)}) for i, p in enumerate(payloads)],
        settings=bus,
    )
    assert len(set(ids)) == 250
    got = _drain(topo.subscription_name("s"), bus, 250)
    assert sorted(m.data for m in got) == sorted(payloads)
    assert all(m.attributes["schema_version"] == "1" for m in got)
    assert {m.message_id for m in got} == set(ids)
    # Everything was acked: nothing comes back.
    assert pull(topo.subscription_name("s"), settings=bus) == []


def test_a_pull_returns_at_most_100_and_pull_many_fans_out(
    make_topology: MakeTopology, bus: Settings, unique: str
) -> None:
    topo = make_topology(_simple(unique))
    publish_all(topo.topic_name("t"), [Message(b"x") for _ in range(450)], settings=bus)
    sub = topo.subscription_name("s")
    first = pull(sub, max_messages=1000, settings=bus)
    assert 0 < len(first) <= 100
    rest = pull_many(sub, max_messages=1000, streams=3, settings=bus)
    assert len({m.message_id for m in first + rest}) == len(first) + len(rest)
    ack(sub, first + rest, settings=bus)
    # Bounded memory: pull_many never returns more than asked for.
    publish_all(topo.topic_name("t"), [Message(b"y") for _ in range(150)], settings=bus)
    capped = pull_many(sub, max_messages=120, streams=4, settings=bus)
    assert len(capped) <= 120
    nack(sub, capped, settings=bus)


class _CountPublishes(grpc.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    def __init__(self) -> None:
        self.sizes: list[int] = []
        self._lock = threading.Lock()

    def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        if details.method.endswith("/Publish"):
            with self._lock:
                self.sizes.append(len(request.messages))
        return continuation(details, request)


@pytest.mark.parametrize(
    ("tuning", "count", "size", "per_rpc"),
    [
        # Messages per RPC capped by max_messages (the client closes a batch one early).
        (PublisherTuning(max_messages=100, max_latency_s=2.0), 300, 10, 100),
        # ... or by max_bytes (40 KB messages: at most 5 fit under 210 KB).
        (PublisherTuning(max_bytes=210_000, max_latency_s=2.0), 10, 40_000, 5),
    ],
)
def test_publisher_batches_by_count_and_bytes(
    make_topology: MakeTopology,
    bus: Settings,
    unique: str,
    tuning: PublisherTuning,
    count: int,
    size: int,
    per_rpc: int,
) -> None:
    topo = make_topology(_simple(unique))
    counter = _CountPublishes()
    assert bus.pubsub_emulator_host is not None
    channel = grpc.intercept_channel(grpc.insecure_channel(bus.pubsub_emulator_host), counter)
    publisher = build_publisher(tuning=tuning, channel=channel)
    publish_all(
        topo.topic_name("t"),
        [Message(b"z" * size) for _ in range(count)],
        settings=bus,
        publisher=publisher,
    )
    assert sum(counter.sizes) == count
    assert max(counter.sizes) <= per_rpc
    # Batched, not one RPC per message: full batches except the last.
    assert len(counter.sizes) <= -(-count // (per_rpc - 1))
    _drain(topo.subscription_name("s"), bus, count)


def test_ordering_keys_keep_per_key_order(
    make_topology: MakeTopology, bus: Settings, unique: str
) -> None:
    topo = make_topology(_simple(unique, ordering=True))
    messages = [
        Message(str(i).encode(), {"seq": str(i)}, ordering_key=f"order-{i % 3}") for i in range(120)
    ]
    publish_all(topo.topic_name("t"), messages, settings=bus)
    got = _drain(topo.subscription_name("s"), bus, 120)
    by_key: dict[str, list[int]] = defaultdict(list)
    for m in got:
        by_key[m.ordering_key].append(int(m.data))
    assert set(by_key) == {"order-0", "order-1", "order-2"}
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), key
        assert len(seqs) == 40


def test_publishing_with_a_key_needs_an_ordering_publisher(bus: Settings, unique: str) -> None:
    with pytest.raises(ConfigError, match="ordering"):
        publish_all(
            f"t-{unique}",
            [Message(b"a", ordering_key="k")],
            settings=bus,
            publisher=build_publisher(emulator_host=bus.pubsub_emulator_host),
        )


def test_poison_message_is_dead_lettered_after_max_attempts(
    make_topology: MakeTopology, bus: Settings, unique: str
) -> None:
    topo = make_topology(
        Topology(
            (TopicSpec("in", f"in-{unique}"), TopicSpec("dlq", f"dlq-{unique}")),
            (
                SubscriptionSpec(
                    "work",
                    f"work-{unique}",
                    topic="in",
                    dead_letter=DeadLetterPolicy("dlq", 5),
                    retry=None,
                ),
                SubscriptionSpec("archive", f"dlq-{unique}-archive", topic="dlq", retry=None),
            ),
        )
    )
    work = topo.subscription_name("work")
    publish_all(topo.topic_name("in"), [Message(b"poison", {"k": "v"})], settings=bus)
    attempts: list[int] = []

    def nack_all() -> bool:
        got = pull(work, settings=bus)
        attempts.extend(m.delivery_attempt for m in got)
        nack(work, got, settings=bus)
        return len(attempts) >= 5

    wait_until(nack_all, timeout=60, what="five deliveries")
    assert attempts == [1, 2, 3, 4, 5]
    # The emulator moves a message to the dead-letter topic on the *next* pull.
    parked: list[Any] = []

    def dead_lettered() -> bool:
        assert pull(work, settings=bus) == []
        parked.extend(pull(topo.subscription_name("archive"), settings=bus))
        return bool(parked)

    wait_until(dead_lettered, timeout=60, what="the message on the dead-letter topic")
    (message,) = parked
    assert message.data == b"poison"
    assert message.attributes["k"] == "v"
    ack(topo.subscription_name("archive"), parked, settings=bus)


def test_unacked_message_is_redelivered_after_its_ack_deadline(
    make_topology: MakeTopology, bus: Settings, unique: str
) -> None:
    topo = make_topology(_simple(unique, ack_deadline_s=600))
    sub = topo.subscription_name("s")
    (mid,) = publish_all(topo.topic_name("t"), [Message(b"slow")], settings=bus)
    (first,) = _pull_one(sub, bus)
    assert first.message_id == mid
    # Leased for 600 s: a second consumer sees nothing.
    assert pull(sub, settings=bus) == []
    # Shorten the lease to 1 s and do not ack: Pub/Sub hands it out again.
    extend(sub, [first], 1, settings=bus)
    (again,) = _pull_one(sub, bus)
    assert again.message_id == mid
    assert again.ack_id != first.ack_id
    ack(sub, [again], settings=bus)


def _pull_one(sub: str, settings: Settings) -> list[Any]:
    got: list[Any] = []

    def one() -> bool:
        got.extend(pull(sub, settings=settings))
        return bool(got)

    wait_until(one, timeout=60, what=f"a message on {sub}")
    return got


def test_publishing_to_a_missing_topic_is_a_config_error(bus: Settings, unique: str) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        publish_all(f"missing-{unique}", [Message(b"a")], settings=bus)


def test_an_unreachable_emulator_is_a_transient_error(unique: str) -> None:
    from edp.errors import TransientError
    from edp_tools.local.processes import free_port

    dead = Settings(  # type: ignore[call-arg]
        _env_file=None, PUBSUB_EMULATOR_HOST=f"127.0.0.1:{free_port()}", GOOGLE_CLOUD_PROJECT="p"
    )
    with pytest.raises(TransientError):
        pull(f"s-{unique}", settings=dead, timeout_s=2)
