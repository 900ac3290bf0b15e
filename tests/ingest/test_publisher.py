"""The group-commit publisher against the real emulator."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from edp.errors import ConfigError
from edp.ingest.publisher import OutboundMessage, PublishError, PubSubPublisher

from .conftest import Bus


def _counting(publisher: PubSubPublisher) -> list[int]:
    """Record the message count of every RPC (the real RPC still runs; one caller sends at a
    time, the group leader, so appending needs no lock)."""
    sizes: list[int] = []
    original = publisher._rpc

    def counted(topic: str, messages: Any) -> None:
        sizes.append(len(messages))
        original(topic, messages)

    publisher._rpc = counted  # type: ignore[method-assign]
    return sizes


def test_concurrent_publishes_all_arrive_in_fewer_rpcs(bus: Bus) -> None:
    publisher = PubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    rpcs = _counting(publisher)
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


def test_a_steady_stream_of_single_publishes_shares_rpcs_after_the_linger(bus: Bus) -> None:
    # One caller every millisecond, each waiting for its own publish (a request thread): the
    # RPC itself is shorter than the gap, so only the 2 ms linger groups them - 2 to 3 a group.
    publisher = PubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    sizes = _counting(publisher)
    callers: list[threading.Thread] = []
    pace = threading.Event()
    try:
        for i in range(300):
            message = [OutboundMessage(b'{"i": %d}' % i, {"n": str(i)})]
            caller = threading.Thread(target=publisher.publish, args=(bus.events_topic, message))
            caller.start()
            callers.append(caller)
            pace.wait(0.001)
        for caller in callers:
            caller.join()
    finally:
        publisher.close()
    assert sorted(int(m.attributes["n"]) for m in bus.event_messages()) == list(range(300))
    assert sum(sizes) == 300
    assert len(sizes) <= 200, f"{len(sizes)} RPCs for 300 paced publishes: nothing lingered"


def test_an_occasional_publish_does_not_wait_for_the_linger(bus: Bus) -> None:
    publisher = PubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host, linger_s=0.5)
    took: list[float] = []
    try:
        for i in range(4):
            started = time.monotonic()
            publisher.publish(bus.events_topic, [OutboundMessage(b'{"i": %d}' % i)])
            took.append(time.monotonic() - started)
            time.sleep(0.6)  # callers further apart than the linger
    finally:
        publisher.close()
    assert max(took) < 0.5, took


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
