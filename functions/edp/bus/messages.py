"""Publishing and synchronous pulling, with explicit ack / nack.

Publishing: :func:`publish_all` hands messages to the (batching) publisher and waits for every
future, so the caller knows all of them are durably accepted before it answers its own client
(the ingest function replies 202 only then).

Pulling: synchronous ``Pull`` RPCs, several in parallel. The emulator returns at most 100 messages
per pull and blocks an empty pull until the RPC deadline unless ``return_immediately`` is set, so
:func:`pull` sets it when talking to the emulator (in GCP it is deprecated and may return nothing
while messages exist; there we wait up to ``timeout_s`` instead). Messages stay leased until
:func:`ack` (done; never redelivered), :func:`nack` (redeliver now, counts as a delivery attempt
towards the dead-letter policy) or the ack deadline passes.

Example (needs an emulator):
    >>> publish_all("events", [Message(b'{"a": 1}', {"schema_version": "1"})])  # doctest: +SKIP
    ['1']
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from edp.bus.clients import get_publisher, get_subscriber, subscription_path, topic_path
from edp.errors import ConfigError, TransientError
from edp.settings import Settings, get_settings

__all__ = [
    "MAX_PULL",
    "Message",
    "Received",
    "ack",
    "extend",
    "nack",
    "publish_all",
    "pull",
    "pull_many",
]

#: The most messages one Pull returns (the emulator's cap; GCP allows 1,000 but rarely fills it).
MAX_PULL = 100
#: Ack ids per Acknowledge/ModifyAckDeadline request (keeps requests well under 512 KiB).
_ACK_CHUNK = 1000


@dataclass(frozen=True)
class Message:
    """An outgoing message."""

    data: bytes
    attributes: Mapping[str, str] = field(default_factory=dict)
    ordering_key: str = ""


@dataclass(frozen=True)
class Received:
    """A pulled message with what is needed to ack it.

    Attributes:
        delivery_attempt: 1 on first delivery; only set by Pub/Sub when the subscription has a
            dead-letter policy (0 otherwise).
    """

    ack_id: str
    message_id: str
    data: bytes
    attributes: dict[str, str]
    ordering_key: str
    publish_time: Any
    delivery_attempt: int


def _qualify_topic(topic: str, project: str) -> str:
    return topic if topic.startswith("projects/") else topic_path(project, topic)


def _qualify_subscription(subscription: str, project: str) -> str:
    if subscription.startswith("projects/"):
        return subscription
    return subscription_path(project, subscription)


def publish_all(
    topic: str,
    messages: Iterable[Message],
    *,
    settings: Settings | None = None,
    publisher: Any | None = None,
    timeout_s: float = 30.0,
) -> list[str]:
    """Publish messages and wait until Pub/Sub accepted every one.

    Args:
        topic: Topic name (``events``) or full path.
        messages: What to send; ordering keys need an ordering publisher
            (``get_publisher(ordering=True)``).
        settings: Project and emulator (default: current settings).
        publisher: A client from :func:`edp.bus.clients.get_publisher` (default: the shared one,
            with ordering when any message has a key).
        timeout_s: Longest to wait for all futures.

    Returns:
        Server-assigned message ids, in input order.

    Raises:
        ConfigError: Ordering keys given to a publisher without message ordering, or the topic
            does not exist.
        TransientError: A publish failed or timed out (ordering keys are resumed first so the
            caller can retry).
    """
    s = settings or get_settings()
    batch = list(messages)
    path = _qualify_topic(topic, s.project)
    client = publisher
    keyed = any(m.ordering_key for m in batch)
    if client is None:
        client = get_publisher(s, ordering=keyed)
    elif keyed and not client.publisher_options.enable_message_ordering:
        raise ConfigError("messages with ordering keys need get_publisher(ordering=True)")
    futures = []
    for m in batch:
        if m.ordering_key:
            futures.append(
                client.publish(path, m.data, ordering_key=m.ordering_key, **dict(m.attributes))
            )
        else:
            futures.append(client.publish(path, m.data, **dict(m.attributes)))
    ids: list[str] = []
    failed: list[BaseException] = []
    for message, future in zip(batch, futures, strict=True):
        try:
            ids.append(future.result(timeout=timeout_s))
        except Exception as exc:  # any publish failure is worth a retry by the caller
            failed.append(exc)
            if message.ordering_key:
                with contextlib.suppress(Exception):
                    client.resume_publish(path, message.ordering_key)
    if failed:
        from google.api_core import exceptions

        summary = f"{len(failed)} of {len(batch)} messages to {path} failed: {failed[0]!r}"
        if any(isinstance(exc, exceptions.NotFound) for exc in failed):
            # Retrying cannot create the topic: a deployment / ensure_topology problem.
            raise ConfigError(f"topic {path} does not exist; {summary}") from failed[0]
        raise TransientError(summary) from failed[0]
    return ids


def _to_received(raw: Any) -> Received:
    msg = raw.message
    return Received(
        ack_id=raw.ack_id,
        message_id=msg.message_id,
        data=bytes(msg.data),
        attributes=dict(msg.attributes),
        ordering_key=msg.ordering_key,
        publish_time=msg.publish_time,
        delivery_attempt=int(raw.delivery_attempt),
    )


def pull(
    subscription: str,
    *,
    max_messages: int = MAX_PULL,
    settings: Settings | None = None,
    return_immediately: bool | None = None,
    timeout_s: float = 10.0,
) -> list[Received]:
    """One synchronous Pull (at most ``max_messages``, capped at :data:`MAX_PULL`).

    Args:
        subscription: Subscription name or full path.
        max_messages: Upper bound for this pull.
        settings: Project and emulator (default: current settings).
        return_immediately: Return at once when nothing is available (default: on the
            emulator only, where an empty pull would otherwise block until ``timeout_s``).
        timeout_s: RPC deadline; an empty result after it is not an error.

    Raises:
        TransientError: The service could not be reached.
    """
    from google.api_core import exceptions

    s = settings or get_settings()
    if return_immediately is None:
        return_immediately = s.pubsub_emulator_host is not None
    request = {
        "subscription": _qualify_subscription(subscription, s.project),
        "max_messages": min(max_messages, MAX_PULL),
        "return_immediately": return_immediately,
    }
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            response = get_subscriber(s).pull(request=request, timeout=timeout_s, retry=None)
    except exceptions.DeadlineExceeded:
        return []
    except (exceptions.ServiceUnavailable, exceptions.InternalServerError) as exc:
        raise TransientError(f"pull from {request['subscription']} failed: {exc}") from exc
    return [_to_received(r) for r in response.received_messages]


def pull_many(
    subscription: str,
    *,
    max_messages: int = 1000,
    streams: int = 4,
    settings: Settings | None = None,
    return_immediately: bool | None = None,
    timeout_s: float = 10.0,
) -> list[Received]:
    """Pull up to ``max_messages`` with ``streams`` concurrent Pull RPCs.

    Rounds of parallel pulls continue until the limit is reached or a whole round comes back
    empty. Memory is bounded by ``max_messages``, never by the backlog.
    """
    s = settings or get_settings()
    out: list[Received] = []
    lock = threading.Lock()

    def one(limit: int) -> int:
        got = pull(
            subscription,
            max_messages=limit,
            settings=s,
            return_immediately=return_immediately,
            timeout_s=timeout_s,
        )
        with lock:
            out.extend(got)
        return len(got)

    with ThreadPoolExecutor(max_workers=max(1, streams), thread_name_prefix="edp-pull") as pool:
        while len(out) < max_messages:
            remaining = max_messages - len(out)
            limits: list[int] = []
            while remaining > 0 and len(limits) < streams:
                limits.append(min(MAX_PULL, remaining))
                remaining -= limits[-1]
            if sum(pool.map(one, limits)) == 0:
                break
    return out


def _chunks(items: Sequence[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), _ACK_CHUNK):
        yield list(items[start : start + _ACK_CHUNK])


def _ack_ids(messages: Iterable[Received | str]) -> list[str]:
    return [m if isinstance(m, str) else m.ack_id for m in messages]


def ack(
    subscription: str,
    messages: Iterable[Received | str],
    *,
    settings: Settings | None = None,
) -> int:
    """Acknowledge messages (only after their effects are durable). Returns how many."""
    s = settings or get_settings()
    ids = _ack_ids(messages)
    path = _qualify_subscription(subscription, s.project)
    for chunk in _chunks(ids):
        get_subscriber(s).acknowledge(request={"subscription": path, "ack_ids": chunk})
    return len(ids)


def extend(
    subscription: str,
    messages: Iterable[Received | str],
    seconds: int,
    *,
    settings: Settings | None = None,
) -> int:
    """Set the ack deadline of leased messages to ``seconds`` from now (0 = nack)."""
    s = settings or get_settings()
    ids = _ack_ids(messages)
    path = _qualify_subscription(subscription, s.project)
    for chunk in _chunks(ids):
        get_subscriber(s).modify_ack_deadline(
            request={"subscription": path, "ack_ids": chunk, "ack_deadline_seconds": seconds}
        )
    return len(ids)


def nack(
    subscription: str,
    messages: Iterable[Received | str],
    *,
    settings: Settings | None = None,
) -> int:
    """Give messages back for redelivery now; each nack counts as a delivery attempt."""
    return extend(subscription, messages, 0, settings=settings)
