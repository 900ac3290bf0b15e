"""The group-commit publisher against the real emulator."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from edp.errors import ConfigError
from edp.ingest.publisher import OutboundMessage, PublishError, PubSubPublisher

from .conftest import Bus


def test_concurrent_publishes_all_arrive_in_fewer_rpcs(bus: Bus) -> None:
    rpcs: list[int] = []
    lock = threading.Lock()

    publisher = PubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    original = publisher._rpc  # wrapped to count RPCs; the real RPC still runs

    def counted(topic: str, messages: Any) -> None:
        with lock:
            rpcs.append(len(messages))
        original(topic, messages)

    publisher._rpc = counted  # type: ignore[method-assign]
    try:

        def send(i: int) -> None:
            publisher.publish(bus.events_topic, [OutboundMessage(b'{"i": %d}' % i, {"n": str(i)})])

        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(send, range(400)))
    finally:
        publisher.close()
    received = sorted(int(m.attributes["n"]) for m in bus.event_messages())
    assert received == list(range(400))
    assert sum(rpcs) == 400
    assert max(rpcs) > 1  # callers that arrived during an RPC shared the next one


def test_client_failure_fails_every_caller_fast_and_never_wedges() -> None:
    def broken(host: str | None) -> Any:
        raise ConfigError("no credentials here")

    publisher = PubSubPublisher("p", emulator_host=None, timeout_s=30.0, client_factory=broken)
    errors: list[BaseException] = []

    def send(_: int) -> None:
        try:
            publisher.publish("events", [OutboundMessage(b"{}")])
        except PublishError as exc:
            errors.append(exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(32)))
    assert len(errors) == 32
    assert all("no credentials here" in str(e) for e in errors)
    with pytest.raises(PublishError):  # the group is free again for the next caller
        publisher.publish("events", [OutboundMessage(b"{}")])
    with pytest.raises(PublishError):
        publisher.check("events")


def test_closed_publisher_refuses(bus: Bus) -> None:
    publisher = PubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    publisher.publish(bus.events_topic, [OutboundMessage(b"{}")])
    publisher.close()
    with pytest.raises(PublishError, match="closed"):
        publisher.publish(bus.events_topic, [OutboundMessage(b"{}")])
    assert len(bus.event_messages()) == 1
