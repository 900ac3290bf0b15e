"""The Pub/Sub publisher for an asyncio server: group commit with coroutines, not threads.

Under the threaded server each request pays several thread hand-offs: the acceptor passes the
connection to a worker thread, and in the group commit every follower thread sleeps on a lock
until the leader's thread wakes it, each wake-up a context switch and a GIL hand-off. On an
ASGI server (uvicorn + uvloop, one event loop per worker process) the publish is a coroutine
awaiting a future on the loop the request already runs on: no thread switch per request. (The
only hop left is gRPC's own: its I/O threads hand each RPC's completion to the loop, once for
every caller that shared the RPC.)

:class:`AioPubSubPublisher` keeps the semantics of
:class:`~edp.ingest.publisher.PubSubPublisher`:

- ``await publish(...)`` returns once Pub/Sub accepted the messages and raises
  :class:`~edp.ingest.publisher.PublishError` otherwise (nothing may then be assumed
  published);
- the raw ``Publish`` RPC with protobuf classes (no GAPIC wrapper layers);
- group commit per topic: one flusher task per topic while anything is pending; callers that
  arrive while an RPC is in flight go out together in the next one; under sustained load
  (smoothed inter-arrival gap below ``linger_s``) the flusher first waits ``linger_s`` so more
  callers share the RPC; an RPC carries at most Pub/Sub's message and byte limits;
- transient codes retried with backoff 0.05 → 0.5 s inside the ``timeout_s`` budget.

The RPC runs in the flusher task, not in a caller's task: a caller that is cancelled (client
gone, request timeout) only drops its own messages, or, once they are on the wire, its
interest in the answer; the RPC and everyone else's result go on unaffected.

Example (in an ASGI app; the channel is opened by the first call, inside the worker's loop):
    >>> publisher = AioPubSubPublisher("edp-local", emulator_host=host)  # doctest: +SKIP
    >>> await publisher.publish("events", [OutboundMessage(b"{}")])  # doctest: +SKIP
    >>> await publisher.close()  # at shutdown  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from edp.ingest.publisher import (
    _MAX_RPC_BYTES,
    _MAX_RPC_MESSAGES,
    OutboundMessage,
    PublishError,
    RetryBudget,
    _describe,
    publish_request,
)

__all__ = ["AioPubSubPublisher", "ChannelFactory", "OutboundMessage", "PublishError"]

ChannelFactory = Callable[[str | None], Any]
"""Builds the ``grpc.aio.Channel`` from the emulator host (None: real Pub/Sub); called inside
the running event loop when the channel is first needed (and again after it raised)."""

_CLOSED = "publisher is closed (shutting down)"
_CHANNEL_CLOSED = "the channel was closed during the call"


def _aio_emulator_channel(emulator_host: str) -> Any:
    import grpc

    from edp.bus.clients import _GRPC_OPTIONS

    return grpc.aio.insecure_channel(emulator_host, options=_GRPC_OPTIONS)


def _gcp_credentials() -> Any:
    """Application default credentials scoped for Pub/Sub (may do blocking I/O: run it in a
    thread, never on the event loop)."""
    import google.auth
    from google.pubsub_v1.services.publisher.transports.grpc_asyncio import (
        PublisherGrpcAsyncIOTransport,
    )

    credentials, _ = google.auth.default(default_scopes=PublisherGrpcAsyncIOTransport.AUTH_SCOPES)
    return credentials


def _gcp_channel(credentials: Any) -> Any:
    """An authenticated TLS channel to Pub/Sub, built the way the GAPIC asyncio transport
    builds its own, but without the transport: the transport appends its logging interceptor
    to the channel itself, which would put every raw call through the interceptor machinery."""
    from google.pubsub_v1.services.publisher.transports.grpc_asyncio import (
        PublisherGrpcAsyncIOTransport,
    )

    from edp.bus.clients import _GRPC_OPTIONS

    transport = PublisherGrpcAsyncIOTransport
    return transport.create_channel(
        f"{transport.DEFAULT_HOST}:443",
        credentials=credentials,
        options=[*_GRPC_OPTIONS, ("grpc.keepalive_time_ms", 30000)],  # as the transport does
    )


class _Rpcs:
    """The open channel and the two raw unary methods used on it."""

    __slots__ = ("channel", "get_topic", "get_topic_request", "message", "publish", "request")

    def __init__(self, channel: Any) -> None:
        from google.pubsub_v1.types import (
            GetTopicRequest,
            PublishRequest,
            PublishResponse,
            PubsubMessage,
            Topic,
        )

        self.channel = channel
        self.request = PublishRequest.pb()
        self.message = PubsubMessage.pb()
        self.get_topic_request = GetTopicRequest.pb()
        # Raw protobuf classes on the channel: the GAPIC wrappers (proto-plus conversion, retry
        # and metadata layers) more than double the client's CPU per call.
        self.publish = channel.unary_unary(
            "/google.pubsub.v1.Publisher/Publish",
            request_serializer=self.request.SerializeToString,
            response_deserializer=PublishResponse.pb().FromString,
        )
        self.get_topic = channel.unary_unary(
            "/google.pubsub.v1.Publisher/GetTopic",
            request_serializer=self.get_topic_request.SerializeToString,
            response_deserializer=Topic.pb().FromString,
        )


class _Waiter:
    """One caller's messages queued in a group commit, and the future that answers it."""

    __slots__ = ("arrived", "future", "messages", "size")

    def __init__(
        self, messages: Sequence[OutboundMessage], future: asyncio.Future[None], arrived: float
    ) -> None:
        self.messages = messages
        self.size = sum(len(m.data) for m in messages)
        self.future = future
        self.arrived = arrived


class _AioGroupCommit:
    """Group commit of one topic's publishes on one event loop (see the module docstring).

    Args:
        send: sends one RPC with every message (raises on failure).
        linger_s: wait before an RPC while publishes arrive closer together than this.
        max_queued_s: a caller still queued (not yet in an RPC) this long after it arrived is
            failed instead of sent: it has already waited a whole publish budget.
        clock: monotonic seconds.
        sleep: the coroutine that waits the linger.
    """

    def __init__(
        self,
        send: Callable[[list[OutboundMessage]], Awaitable[None]],
        *,
        linger_s: float,
        max_queued_s: float,
        clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._send = send
        self._linger_s = linger_s
        self._max_queued_s = max_queued_s
        self._clock = clock
        self._sleep = sleep
        self._queue: deque[_Waiter] = deque()
        self.flusher: asyncio.Task[None] | None = None
        self._last_arrival = 0.0
        # Smoothed time between publishes; starts long and finite (inf would never decay).
        self._gap = 1.0

    async def publish(
        self, loop: asyncio.AbstractEventLoop, messages: Sequence[OutboundMessage]
    ) -> None:
        now = self._clock()
        # Exponentially smoothed inter-arrival gap: decides whether lingering pays off.
        self._gap = 0.8 * self._gap + 0.2 * (now - self._last_arrival)
        self._last_arrival = now
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append(_Waiter(messages, future, now))
        if self.flusher is None:
            self.flusher = loop.create_task(self._flush())
        # A cancelled caller cancels only its own future: the flusher skips it if it is still
        # queued and ignores its answer if it is already on the wire.
        await future

    async def _flush(self) -> None:
        group: list[_Waiter] = []
        try:
            while self._queue:
                # Under sustained load, wait so the next callers share this RPC: an RPC costs
                # client and bus CPU whatever it carries, so fewer, fuller RPCs buy headroom for
                # at most ``linger_s`` of latency. At low rates the gap is long: nothing waits.
                if self._linger_s and self._gap < self._linger_s:
                    await self._sleep(self._linger_s)
                group = self._take()
                if not group:
                    continue
                error: PublishError | None = None
                try:
                    await self._send([m for w in group for m in w.messages])
                except PublishError as exc:
                    error = exc
                except Exception as exc:  # never leave the group stuck on an unexpected failure
                    error = PublishError(f"publish failed: {_describe(exc)}")
                    error.__cause__ = exc
                for waiter in group:
                    if not waiter.future.done():  # a cancelled caller has no one to answer
                        if error is None:
                            waiter.future.set_result(None)
                        else:
                            waiter.future.set_exception(error)
                group = []
        finally:
            # Work is left only when the flusher itself was cancelled (the event loop shutting
            # down): its callers must not wait forever.
            left = [w for w in (*group, *self._queue) if not w.future.done()]
            self._queue.clear()
            self.flusher = None
            if left:
                stopped = PublishError("publish interrupted: the publisher's task was cancelled")
                for waiter in left:
                    waiter.future.set_exception(stopped)

    def _take(self) -> list[_Waiter]:
        """The next RPC's callers: queued ones in order, up to Pub/Sub's limits (the first is
        always taken, whatever its size)."""
        now = self._clock()
        group: list[_Waiter] = []
        count = size = 0
        queue = self._queue
        while queue:
            waiter = queue[0]
            if waiter.future.done():  # its caller was cancelled: its messages are not sent
                queue.popleft()
                continue
            if now - waiter.arrived >= self._max_queued_s:
                queue.popleft()
                waiter.future.set_exception(
                    PublishError("publish timed out waiting for the group commit")
                )
                continue
            if group and (
                count + len(waiter.messages) > _MAX_RPC_MESSAGES
                or size + waiter.size > _MAX_RPC_BYTES
            ):
                break
            group.append(queue.popleft())
            count += len(waiter.messages)
            size += waiter.size
        return group


class AioPubSubPublisher:
    """The asyncio :class:`~edp.ingest.publisher.PubSubPublisher` (see the module docstring).

    The gRPC channel is opened on first use inside the running event loop, never at
    construction: a ``grpc.aio`` channel belongs to the loop it was created on, and the object
    may be built before the server forks its workers or starts a loop. From then on the
    publisher belongs to that loop; using it from another one raises ``RuntimeError``.

    Args:
        project: GCP project id of the topics.
        emulator_host: ``host:port`` of the Pub/Sub emulator, or None for real Pub/Sub.
        timeout_s: total time budget of one publish RPC, retries included (a caller waits at
            most about twice this: one budget queued behind a slow RPC, one for its own).
        linger_s: under sustained load (publishes closer together than this), wait this long
            before an RPC so concurrent requests share it; 0 disables.
        channel_factory: builds the ``grpc.aio`` channel from ``emulator_host`` (tests, proxies,
            interceptors); default: insecure to the emulator, authenticated TLS to Pub/Sub.
    """

    def __init__(
        self,
        project: str,
        *,
        emulator_host: str | None = None,
        timeout_s: float = 5.0,
        linger_s: float = 0.002,
        channel_factory: ChannelFactory | None = None,
    ) -> None:
        self._project = project
        self._emulator_host = emulator_host
        self._timeout_s = timeout_s
        self._linger_s = linger_s
        self._channel_factory = channel_factory
        # Time and waiting go through these two so the linger and retry rules can be driven by
        # a test clock; read when a topic's group commit is created.
        self._clock: Callable[[], float] = time.monotonic
        self._sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rpcs: _Rpcs | None = None
        self._opening: asyncio.Lock | None = None
        self._closed = False  # no new publish or check
        self._shut = False  # nor a channel: set once the last publish is done
        self._paths: dict[str, str] = {}
        self._groups: dict[str, _AioGroupCommit] = {}

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, which must be the publisher's (the first one it is used on)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None:
                raise RuntimeError("AioPubSubPublisher is bound to another event loop")
            self._loop = loop
            self._opening = asyncio.Lock()
        return loop

    def _path(self, topic: str) -> str:
        path = self._paths.get(topic)
        if path is None:
            path = self._paths[topic] = f"projects/{self._project}/topics/{topic}"
        return path

    async def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        """Publish ``messages`` to ``topic``, group-committed with concurrent callers' ones.

        Raises:
            PublishError: on any failure (topic missing, bus unavailable, budget exhausted,
                publisher closed); nothing may be assumed published.
        """
        if self._closed:
            raise PublishError(_CLOSED)
        if not messages:
            return
        loop = self._bind()
        group = self._groups.get(topic)
        if group is None:
            group = self._groups[topic] = _AioGroupCommit(
                lambda msgs: self._rpc(topic, msgs),
                linger_s=self._linger_s,
                max_queued_s=self._timeout_s,
                clock=self._clock,
                sleep=self._sleep,
            )
        await group.publish(loop, messages)

    async def _connect(self) -> _Rpcs:
        """The open channel, opening it on first use (one opener; the others wait for it)."""
        rpcs = self._rpcs
        if rpcs is not None:
            return rpcs
        assert self._opening is not None
        async with self._opening:
            if self._rpcs is None:
                # Publishes queued before close() may still open it; nothing after.
                if self._shut:
                    raise PublishError(_CLOSED)
                try:
                    channel = await self._open_channel()
                except Exception as exc:  # credentials, channel set-up: the bus is unusable
                    raise PublishError(
                        f"cannot open the Pub/Sub channel: {_describe(exc)}"
                    ) from exc
                self._rpcs = _Rpcs(channel)
            return self._rpcs

    async def _open_channel(self) -> Any:
        if self._channel_factory is not None:
            return self._channel_factory(self._emulator_host)
        if self._emulator_host:
            return _aio_emulator_channel(self._emulator_host)
        # google.auth.default() reads files and may probe the metadata server: off the loop.
        return _gcp_channel(await asyncio.to_thread(_gcp_credentials))

    async def _rpc(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        """One Publish RPC with every message, retried on transient codes within the budget."""
        rpcs = await self._connect()
        request = publish_request(rpcs.request, rpcs.message, self._path(topic), messages)
        budget = RetryBudget(topic, self._timeout_s, clock=self._clock)
        while True:
            try:
                await rpcs.publish(request, timeout=budget.remaining())
                return
            except asyncio.CancelledError as exc:
                if _task_cancelled():
                    raise
                raise PublishError(f"publish to {topic!r} failed: {_CHANNEL_CLOSED}") from exc
            except Exception as exc:  # retried, or raised as PublishError by the budget
                await self._sleep(budget.wait_after(exc))

    async def check(self, topic: str) -> None:
        """Raise :class:`PublishError` unless the topic exists and the bus answers within
        ``min(2, timeout_s)`` seconds (one GetTopic, never retried: a probe answers now)."""
        import grpc

        if self._closed:
            raise PublishError(_CLOSED)
        self._bind()
        rpcs = await self._connect()
        request = rpcs.get_topic_request(topic=self._path(topic))
        try:
            await rpcs.get_topic(request, timeout=min(2.0, self._timeout_s))
        except grpc.RpcError as exc:
            code = exc.code() if hasattr(exc, "code") else None
            detail = exc.details() if hasattr(exc, "details") else str(exc)
            raise PublishError(f"topic {topic!r} not reachable: {code}: {detail}") from exc
        except asyncio.CancelledError as exc:
            if _task_cancelled():
                raise
            raise PublishError(f"topic {topic!r} not reachable: {_CHANNEL_CLOSED}") from exc
        except Exception as exc:  # same rationale as publish()
            raise PublishError(f"topic {topic!r} not reachable: {_describe(exc)}") from exc

    async def close(self) -> None:
        """Refuse new publishes, wait for the queued and in-flight ones, close the channel."""
        self._closed = True
        flushers = [g.flusher for g in self._groups.values() if g.flusher is not None]
        if flushers:
            # asyncio.wait, not gather: if close() itself is cancelled the flushers go on.
            await asyncio.wait(flushers)
        self._shut = True
        if self._opening is None:  # never used
            return
        async with self._opening:  # a channel being opened (by a check) is closed too
            rpcs, self._rpcs = self._rpcs, None
        if rpcs is not None:
            await rpcs.channel.close()


def _task_cancelled() -> bool:
    """Whether the current task is being cancelled.

    ``grpc.aio`` cancels the calls still running on a channel that is being closed, and
    awaiting such a call raises ``CancelledError`` although no task was cancelled: that is a
    failed call, to report as :class:`PublishError`. A real cancellation must propagate.
    """
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
