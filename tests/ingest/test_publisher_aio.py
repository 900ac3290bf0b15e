"""The asyncio group-commit publisher against the real emulator and a local gRPC stand-in.

The emulator answers what Pub/Sub answers (NOT_FOUND for a missing topic, the messages pulled
back); the stand-in, a ``grpc.aio`` server on 127.0.0.1 speaking the real Publish method, is
what can fail on purpose (UNAVAILABLE for N calls) or hold an RPC in flight until the test lets
it go, so which callers share which RPC is decided by the test, not by timing. Retry and linger
rules run on a test clock: their expected numbers follow from the rules, not from a stopwatch.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import grpc
import pytest
import uvloop
from google.pubsub_v1.types import GetTopicRequest, PublishRequest, PublishResponse, Topic

from edp.ingest.publisher import OutboundMessage, PublishError
from edp.ingest.publisher_aio import AioPubSubPublisher

from .conftest import Bus

pytestmark = pytest.mark.timeout(60)

T = TypeVar("T")


def _run(scenario: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """Run one scenario on a fresh event loop: the stdlib one, or uvloop as in production."""
    factory = uvloop.new_event_loop if loop == "uvloop" else None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(scenario)


def _counting(publisher: AioPubSubPublisher) -> dict[str, list[int]]:
    """Record the message count of every RPC per topic (the real RPC still runs)."""
    sizes: dict[str, list[int]] = defaultdict(list)
    original = publisher._rpc

    async def counted(topic: str, messages: Any) -> None:
        sizes[topic].append(len(messages))
        await original(topic, messages)

    publisher._rpc = counted  # type: ignore[method-assign]
    return sizes


@dataclass
class _TestClock:
    """Monotonic time the test moves; ``sleep`` records each wait (and, if asked, lets that
    much time pass) but only yields to the loop."""

    now: float = 0.0
    sleep_advances: bool = False
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.sleep_advances:
            self.now += seconds
        await asyncio.sleep(0)


def _on_clock(publisher: AioPubSubPublisher, clock: _TestClock) -> AioPubSubPublisher:
    publisher._clock = clock
    publisher._sleep = clock.sleep
    return publisher


def _message(name: str, **attributes: str) -> list[OutboundMessage]:
    return [OutboundMessage(name.encode(), {"name": name, **attributes})]


# --- the stand-in Publish server ----------------------------------------------------------------

Handler = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]


@asynccontextmanager
async def _stand_in(publish: Handler, get_topic: Handler | None = None) -> AsyncIterator[str]:
    """A gRPC server on a free loopback port with these Publisher methods."""
    methods = {
        "Publish": grpc.unary_unary_rpc_method_handler(
            publish,
            request_deserializer=PublishRequest.pb().FromString,
            response_serializer=PublishResponse.pb().SerializeToString,
        )
    }
    if get_topic is not None:
        methods["GetTopic"] = grpc.unary_unary_rpc_method_handler(
            get_topic,
            request_deserializer=GetTopicRequest.pb().FromString,
            response_serializer=Topic.pb().SerializeToString,
        )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("google.pubsub.v1.Publisher", methods),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


async def _unused(request: Any, context: grpc.aio.ServicerContext) -> Any:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not used by this test")


def _accepted(request: Any) -> Any:
    return PublishResponse.pb()(message_ids=[str(i) for i in range(len(request.messages))])


@dataclass
class _HeldServer:
    """Holds its first Publish until ``release`` is set; refuses (INVALID_ARGUMENT, never
    retried) any RPC carrying a message with attribute ``fail``; records each RPC's names."""

    batches: list[list[str]] = field(default_factory=list)
    first_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def publish(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        self.batches.append([m.attributes["name"] for m in request.messages])
        if len(self.batches) == 1:
            self.first_arrived.set()
            await self.release.wait()
        if any("fail" in m.attributes for m in request.messages):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "refused on purpose")
        return _accepted(request)


def _stand_in_publisher(address: str, **kwargs: Any) -> AioPubSubPublisher:
    return AioPubSubPublisher(
        "p", channel_factory=lambda _host: grpc.aio.insecure_channel(address), **kwargs
    )


async def _queued(publisher: AioPubSubPublisher, topic: str, count: int) -> None:
    """Yield to the loop until exactly ``count`` callers wait in ``topic``'s queue (not yet in
    an RPC)."""
    for _ in range(1000):
        group = publisher._groups.get(topic)
        if group is not None and len(group._queue) == count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"the queue of {topic!r} never held {count} callers")


# --- against the emulator -----------------------------------------------------------------------


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_published_messages_arrive_intact(bus: Bus, loop: str) -> None:
    sent = [
        OutboundMessage(b'{"event_type": "page_view"}', {"event_count": "1", "key": "k-1"}),
        OutboundMessage(b"\x00\xff binary \xfe", {"ünïcode": "välue ✓"}),
        OutboundMessage(b"x" * 200_000, {}),
    ]
    later = OutboundMessage(b"second call", {"n": "2"})
    # Built outside any event loop, as before a server forks its workers.
    publisher = AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)

    async def scenario() -> None:
        try:
            await publisher.publish(bus.events_topic, sent)
            await publisher.publish(bus.events_topic, [later])
        finally:
            await publisher.close()

    _run(scenario(), loop)
    received = sorted((m.data, sorted(m.attributes.items())) for m in bus.event_messages())
    expected = sorted((m.data, sorted(m.attributes.items())) for m in [*sent, later])
    assert received == expected


def test_a_burst_of_concurrent_callers_shares_rpcs(bus: Bus) -> None:
    publisher = AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    rpcs = _counting(publisher)

    async def scenario() -> None:
        try:
            await asyncio.gather(
                *(publisher.publish(bus.events_topic, _message(str(i))) for i in range(300))
            )
        finally:
            await publisher.close()

    _run(scenario())
    assert sorted(int(m.attributes["name"]) for m in bus.event_messages()) == list(range(300))
    assert sum(rpcs[bus.events_topic]) == 300
    # All 300 queue before the flusher runs: one RPC, two if the first left alone.
    assert len(rpcs[bus.events_topic]) <= 2, rpcs


def test_callers_a_millisecond_apart_share_rpcs(bus: Bus) -> None:
    # One request every millisecond, each awaiting its own publish: those that arrive while an
    # RPC is in flight or lingering share the next one. Without group commit: 300 RPCs; with it
    # 30 to 70 here. (In real time a busy loop also bunches callers, so the linger rule itself is
    # pinned on a test clock below.)
    publisher = AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    rpcs = _counting(publisher)

    async def caller(at: float, i: int) -> None:
        # Slots on the loop's clock, not sleeps in a row: a busy loop makes callers late (and
        # bunched), never sparser than one a millisecond.
        await asyncio.sleep(at - asyncio.get_running_loop().time())
        await publisher.publish(bus.events_topic, _message(str(i)))

    async def scenario() -> None:
        start = asyncio.get_running_loop().time() + 0.1
        try:
            await asyncio.gather(*(caller(start + i * 0.001, i) for i in range(300)))
        finally:
            await publisher.close()

    _run(scenario())
    assert sorted(int(m.attributes["name"]) for m in bus.event_messages()) == list(range(300))
    assert sum(rpcs[bus.events_topic]) == 300
    assert len(rpcs[bus.events_topic]) <= 150, f"{len(rpcs[bus.events_topic])} RPCs for 300"


def test_the_linger_waits_only_under_sustained_load(bus: Bus) -> None:
    # The rule: gap = 0.8 * gap + 0.2 * (now - last arrival), starting at 1.0 s (last arrival
    # 0); the flusher waits linger_s before an RPC while gap < linger_s.
    # Sparse: 1 s apart with a 0.5 s linger: the gap never falls below 0.8 s: no wait at all.
    # Dense: 1 ms apart from t = 1 ms with a 2 ms linger: gap_n - 0.001 = 0.8^(n-1) * 0.7992,
    # below 0.001 from n = 31: of 40 sequential publishes, the last 10 linger.
    sparse, dense = _TestClock(), _TestClock()
    slow = _on_clock(
        AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host, linger_s=0.5),
        sparse,
    )
    busy = _on_clock(
        AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host), dense
    )

    async def scenario() -> None:
        try:
            for i in range(5):
                sparse.now += 1.0
                await slow.publish(bus.events_topic, _message(f"s{i}"))
            for i in range(40):
                dense.now += 0.001
                await busy.publish(bus.events_topic, _message(f"d{i}"))
        finally:
            await slow.close()
            await busy.close()

    _run(scenario())
    assert sparse.slept == []
    assert dense.slept == [0.002] * 10
    assert len(bus.event_messages()) == 45


def test_a_missing_topic_fails_at_once_and_only_its_callers(bus: Bus) -> None:
    missing = f"missing-{uuid.uuid4().hex[:10]}"
    attempts: list[str] = []

    class Attempts(grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
        async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            attempts.append(request.topic.rsplit("/", 1)[-1])
            return await continuation(details, request)

    publisher = AioPubSubPublisher(
        bus.emulator.project,
        emulator_host=bus.emulator.host,
        timeout_s=30.0,  # a retried NOT_FOUND would keep at it for 30 s
        channel_factory=lambda host: grpc.aio.insecure_channel(host, interceptors=[Attempts()]),
    )
    rpcs = _counting(publisher)

    async def scenario() -> tuple[BaseException | None, ...]:
        try:
            return await asyncio.gather(
                publisher.publish(missing, _message("m0")),
                publisher.publish(bus.events_topic, _message("e0")),
                publisher.publish(missing, _message("m1")),
                publisher.publish(bus.events_topic, _message("e1")),
                publisher.publish(missing, _message("m2")),
                return_exceptions=True,
            )
        finally:
            await publisher.close()

    m0, e0, m1, e1, m2 = _run(scenario())
    for failed in (m0, m1, m2):
        assert isinstance(failed, PublishError)
        assert "NOT_FOUND" in str(failed)
    assert (e0, e1) == (None, None)
    assert sorted(m.attributes["name"] for m in bus.event_messages()) == ["e0", "e1"]
    assert attempts.count(missing) == len(rpcs[missing])  # one attempt per RPC: no retry


def test_check_answers_for_an_existing_topic_and_refuses_a_missing_one(bus: Bus) -> None:
    publisher = AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)

    async def scenario() -> None:
        try:
            await publisher.check(bus.events_topic)
            with pytest.raises(PublishError, match="NOT_FOUND"):
                await publisher.check(f"missing-{uuid.uuid4().hex[:10]}")
        finally:
            await publisher.close()

    _run(scenario())


def test_close_flushes_queued_and_in_flight_publishes_then_refuses(bus: Bus) -> None:
    publisher = AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    fresh = AioPubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    rpcs = _counting(publisher)

    async def scenario() -> list[BaseException | None]:
        # Closed before its channel is even open: the queued publishes still go out.
        early = [
            asyncio.create_task(fresh.publish(bus.events_topic, _message(f"f{i}")))
            for i in range(5)
        ]
        await _queued(fresh, bus.events_topic, 5)
        await fresh.close()
        first = [
            asyncio.create_task(publisher.publish(bus.events_topic, _message(f"a{i}")))
            for i in range(10)
        ]
        await _queued(publisher, bus.events_topic, 10)
        await _queued(publisher, bus.events_topic, 0)  # the flusher took them: RPC in flight
        assert rpcs[bus.events_topic] == [10]
        second = [
            asyncio.create_task(publisher.publish(bus.events_topic, _message(f"b{i}")))
            for i in range(10)
        ]
        await _queued(publisher, bus.events_topic, 10)
        await publisher.close()
        outcomes = await asyncio.gather(*early, *first, *second, return_exceptions=True)
        with pytest.raises(PublishError, match="closed"):
            await publisher.publish(bus.events_topic, _message("late"))
        with pytest.raises(PublishError, match="closed"):
            await publisher.check(bus.events_topic)
        return outcomes

    outcomes = _run(scenario())
    assert outcomes == [None] * 25
    names = sorted(m.attributes["name"] for m in bus.event_messages())
    assert names == sorted(
        [f"f{i}" for i in range(5)] + [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]
    )


# --- against the stand-in -----------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["first", "second"])
def test_a_failed_rpc_fails_exactly_its_callers(failing: str) -> None:
    # a is alone in the first RPC (held on the wire while b and c queue); b and c share the
    # second. Whichever RPC is refused, only its callers see the error.
    async def scenario() -> tuple[tuple[BaseException | None, ...], list[list[str]]]:
        server = _HeldServer()
        async with _stand_in(server.publish) as address:
            publisher = _stand_in_publisher(address)
            mark = {"fail": "1"}
            a = asyncio.create_task(
                publisher.publish("t", _message("a", **(mark if failing == "first" else {})))
            )
            await server.first_arrived.wait()
            b = asyncio.create_task(
                publisher.publish("t", _message("b", **(mark if failing == "second" else {})))
            )
            c = asyncio.create_task(publisher.publish("t", _message("c")))
            await _queued(publisher, "t", 2)
            server.release.set()
            outcomes = await asyncio.gather(a, b, c, return_exceptions=True)
            await publisher.close()
        return outcomes, server.batches

    (a, b, c), batches = _run(scenario())
    assert batches == [["a"], ["b", "c"]]
    failed = [a] if failing == "first" else [b, c]
    succeeded = [b, c] if failing == "first" else [a]
    assert all(isinstance(e, PublishError) and "INVALID_ARGUMENT" in str(e) for e in failed)
    assert succeeded == [None] * len(succeeded)


def test_cancelled_callers_do_not_break_the_group() -> None:
    # a is on the wire, b c d queued; a and c are cancelled. a's RPC still completes (its
    # caller no longer listens), c's message is never sent, b and d share the next RPC.
    async def scenario() -> tuple[dict[str, str], list[list[str]]]:
        server = _HeldServer()
        async with _stand_in(server.publish) as address:
            publisher = _stand_in_publisher(address)
            tasks = {"a": asyncio.create_task(publisher.publish("t", _message("a")))}
            await server.first_arrived.wait()
            for name in "bcd":
                tasks[name] = asyncio.create_task(publisher.publish("t", _message(name)))
            await _queued(publisher, "t", 3)
            tasks["a"].cancel()
            tasks["c"].cancel()
            await asyncio.sleep(0)
            server.release.set()
            await asyncio.wait(tasks.values())
            await publisher.close()
        outcomes = {
            name: "cancelled" if t.cancelled() else repr(t.exception()) for name, t in tasks.items()
        }
        return outcomes, server.batches

    outcomes, batches = _run(scenario())
    assert outcomes == {"a": "cancelled", "b": "None", "c": "cancelled", "d": "None"}
    assert batches == [["a"], ["b", "d"]]


def test_unavailable_is_retried_with_backoff_until_accepted() -> None:
    # Two UNAVAILABLE answers, then accepted: three attempts of the same messages, with the
    # backoff doubling from 0.05 s between them.
    calls: list[list[str]] = []

    async def flaky(request: Any, context: grpc.aio.ServicerContext) -> Any:
        calls.append([m.attributes["name"] for m in request.messages])
        if len(calls) <= 2:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "try again")
        return _accepted(request)

    clock = _TestClock(sleep_advances=True)

    async def scenario() -> None:
        async with _stand_in(flaky) as address:
            publisher = _on_clock(_stand_in_publisher(address), clock)
            try:
                await publisher.publish("t", _message("a"))
            finally:
                await publisher.close()

    _run(scenario())
    assert calls == [["a"], ["a"], ["a"]]
    assert clock.slept == [0.05, 0.1]


def test_an_exhausted_budget_raises_publish_error() -> None:
    # Always UNAVAILABLE, a 1 s budget: attempts at t = 0, 0.05, 0.15, 0.35, 0.75; the next
    # backoff (0.5 s) would end past the budget, so the fifth failure is final.
    calls: list[int] = []

    async def down(request: Any, context: grpc.aio.ServicerContext) -> Any:
        calls.append(len(request.messages))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "bus down")

    clock = _TestClock(sleep_advances=True)

    async def scenario() -> None:
        async with _stand_in(down) as address:
            publisher = _on_clock(_stand_in_publisher(address, timeout_s=1.0), clock)
            try:
                with pytest.raises(PublishError, match="UNAVAILABLE"):
                    await publisher.publish("t", _message("a"))
            finally:
                await publisher.close()

    _run(scenario())
    assert calls == [1] * 5
    assert clock.slept == [0.05, 0.1, 0.2, 0.4]


def test_a_caller_queued_for_a_whole_budget_is_failed_unsent() -> None:
    # b queues behind a's held RPC; by the time a is answered, b has waited the whole 5 s
    # budget: it is failed, not sent late.
    clock = _TestClock()

    async def scenario() -> tuple[BaseException | None, BaseException | None, list[list[str]]]:
        server = _HeldServer()
        async with _stand_in(server.publish) as address:
            publisher = _on_clock(_stand_in_publisher(address, timeout_s=5.0), clock)
            a = asyncio.create_task(publisher.publish("t", _message("a")))
            await server.first_arrived.wait()
            b = asyncio.create_task(publisher.publish("t", _message("b")))
            await _queued(publisher, "t", 1)
            clock.now += 5.0
            server.release.set()
            outcome_a, outcome_b = await asyncio.gather(a, b, return_exceptions=True)
            await publisher.close()
        return outcome_a, outcome_b, server.batches

    a, b, batches = _run(scenario())
    assert a is None
    assert isinstance(b, PublishError) and "timed out waiting" in str(b)
    assert batches == [["a"]]


def test_a_channel_that_cannot_open_fails_every_caller_and_never_wedges() -> None:
    def broken(_host: str | None) -> Any:
        raise OSError("no route to the bus")

    publisher = AioPubSubPublisher("p", timeout_s=30.0, channel_factory=broken)

    async def scenario() -> list[BaseException | None]:
        outcomes = await asyncio.gather(
            *(publisher.publish("t", _message(str(i))) for i in range(20)),
            return_exceptions=True,
        )
        with pytest.raises(PublishError, match="no route"):  # the group is free again
            await publisher.publish("t", _message("again"))
        with pytest.raises(PublishError, match="no route"):
            await publisher.check("t")
        return outcomes

    outcomes = _run(scenario())
    assert len(outcomes) == 20
    assert all(isinstance(e, PublishError) and "no route" in str(e) for e in outcomes)
    with pytest.raises(RuntimeError, match="another event loop"):
        _run(publisher.publish("t", _message("elsewhere")))


def test_a_check_cut_short_by_close_raises_publish_error() -> None:
    # grpc.aio ends the calls still running on a channel being closed with CancelledError,
    # though no task was cancelled: to the caller that is a failed probe. A caller that is
    # itself cancelled must still see CancelledError.
    async def scenario() -> tuple[BaseException | None, bool]:
        arrived = asyncio.Semaphore(0)

        async def held(request: Any, context: grpc.aio.ServicerContext) -> Any:
            arrived.release()
            await asyncio.Event().wait()  # never answers

        async with _stand_in(_unused, get_topic=held) as address:
            publisher = _stand_in_publisher(address)
            cut = asyncio.create_task(publisher.check("t"))
            cancelled = asyncio.create_task(publisher.check("t"))
            await arrived.acquire()
            await arrived.acquire()
            cancelled.cancel()
            await asyncio.wait([cancelled])
            await publisher.close()
            outcome = await asyncio.gather(cut, return_exceptions=True)
        return outcome[0], cancelled.cancelled()

    cut, cancelled = _run(scenario())
    assert isinstance(cut, PublishError) and "channel was closed" in str(cut), repr(cut)
    assert cancelled
