"""The group-commit publisher against the real emulator."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import pytest

from edp.errors import ConfigError
from edp.ingest.publisher import OutboundMessage, PublishError, PubSubPublisher, RetryBudget

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
    # One caller every millisecond, each waiting for its own publish (a request thread), and a
    # 20 ms linger: far above the gap even when a busy machine stretches the 1 ms pacing to a
    # few ms (with the default 2 ms linger a loaded run paced them past it, and rightly did not
    # linger). The RPC itself is shorter than the gap, so without the linger nearly every
    # publish is its own RPC (a run without it, idle machine: 222); with it a group holds up to
    # ~20 (by hand: 20 ms / 1 ms) after the ~18 arrivals the smoothed gap takes to fall below
    # the linger.
    publisher = PubSubPublisher(
        bus.emulator.project, emulator_host=bus.emulator.host, linger_s=0.02
    )
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
    assert len(sizes) <= 100, f"{len(sizes)} RPCs for 300 paced publishes: nothing lingered"


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


class _Status(grpc.RpcError):
    """An RPC failure as grpc raises it (``code()`` and ``details()``)."""

    def __init__(self, code: grpc.StatusCode) -> None:
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return f"{self._code.name.lower()} from the stand-in"


def test_the_retry_budget_doubles_its_backoff_and_stops_inside_the_budget() -> None:
    """Budget 1 s from t=0, each retry waited in full: waits 0.05, 0.1, 0.2, 0.4 (t=0.75); the
    next would end at 0.75 + 0.8 >= 1.0, so the fifth failure raises."""
    now = [0.0]
    budget = RetryBudget("events", 1.0, clock=lambda: now[0])
    waits = []
    with pytest.raises(PublishError, match=r"publish to 'events' failed: StatusCode.UNAVAILABLE"):
        for _ in range(10):
            assert budget.remaining() == pytest.approx(1.0 - now[0])
            wait = budget.wait_after(_Status(grpc.StatusCode.UNAVAILABLE))
            waits.append(wait)
            now[0] += wait
    assert waits == [0.05, 0.1, 0.2, 0.4]


def test_the_retry_budget_refuses_permanent_and_non_rpc_errors_at_once() -> None:
    budget = RetryBudget("events", 5.0, clock=lambda: 0.0)
    with pytest.raises(PublishError, match="NOT_FOUND"):
        budget.wait_after(_Status(grpc.StatusCode.NOT_FOUND))
    with pytest.raises(PublishError, match="TypeError: bad field"):
        budget.wait_after(TypeError("bad field"))
