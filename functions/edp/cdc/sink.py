"""An ordered, batching Pub/Sub sink for the local CDC reader.

Debezium Server's Pub/Sub sink publishes every change with ordering key = the record key and
marks a batch processed only once every publish is confirmed. This sink does the same with one
twist that keeps it fast in Python: instead of the client library's per-ordering-key batches
(one RPC and one thread per key: a 200,000-row transaction touches 200,000 keys), each topic
has **one sender thread with at most one Publish RPC in flight**, carrying everything that
accumulated for the topic (up to ``max_messages``), each message with its own ordering key. One
in-flight request per topic preserves the order of every key (Pub/Sub orders a key's messages
by the order the service receives them); topics proceed in parallel. Batching is natural: while
an RPC is in flight the next batch fills, so single-row transactions at low rates go out at once
and a burst goes out 1,000 messages per RPC.

Every message gets a sequence number; :attr:`confirmed` is the highest number such that it and
every number before it were accepted by Pub/Sub. The reader acknowledges a transaction to
PostgreSQL only when ``confirmed`` has passed the transaction's last message, so an acknowledged
LSN never covers an unpublished change. Memory is bounded: beyond ``max_pending`` unsent
messages per topic, :meth:`publish` blocks (back-pressure on the replication stream).

Example (needs an emulator):
    >>> sink = PubSubSink(project="p")                     # doctest: +SKIP
    >>> seq = sink.publish("cdc.shop.orders", b"{}", '{"order_id":1}')  # doctest: +SKIP
    >>> sink.wait_confirmed(seq, timeout_s=5)  # doctest: +SKIP
    True
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import deque
from typing import Any

from edp.bus.clients import get_publisher, topic_path
from edp.errors import TransientError
from edp.settings import Settings, get_settings


class PublishFailedError(TransientError):
    """A Publish RPC failed after retries; the reader must stop and resume from its slot."""


class _Topic:
    """Unsent messages of one topic and the first sequence number still unconfirmed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.pending: deque[tuple[int, Any]] = deque()
        self.in_flight_first: int | None = None
        self.thread: threading.Thread | None = None

    def first_unconfirmed(self) -> int | None:
        if self.in_flight_first is not None:
            return self.in_flight_first
        return self.pending[0][0] if self.pending else None


class PubSubSink:
    """Ordered batching publisher with a confirmed-sequence watermark."""

    def __init__(
        self,
        *,
        project: str | None = None,
        settings: Settings | None = None,
        max_messages: int = 1000,
        max_bytes: int = 4_000_000,
        max_pending: int = 20_000,
        rpc_timeout_s: float = 30.0,
        max_attempts: int = 5,
    ) -> None:
        from google.pubsub_v1.types import PubsubMessage

        self._settings = settings or get_settings()
        self._project = project or self._settings.project
        with warnings.catch_warnings():
            # `.api` is the GAPIC client: one Publish RPC per call, no per-key batching.
            warnings.simplefilter("ignore", DeprecationWarning)
            self._api = get_publisher(self._settings).api
        self._message_cls = PubsubMessage
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.max_pending = max_pending
        self.rpc_timeout_s = rpc_timeout_s
        self.max_attempts = max_attempts
        self._topics: dict[str, _Topic] = {}
        self._seq = 0
        self._error: BaseException | None = None
        self._closing = False
        self._cond = threading.Condition()
        self.published_total = 0

    # --- producer side (the reader's thread) ---------------------------------------------------
    @property
    def confirmed(self) -> int:
        """Highest sequence number such that it and every message before it were accepted."""
        with self._cond:
            return self._confirmed_locked()

    def _confirmed_locked(self) -> int:
        firsts = [f for t in self._topics.values() if (f := t.first_unconfirmed()) is not None]
        return min(firsts) - 1 if firsts else self._seq

    @property
    def last_seq(self) -> int:
        return self._seq

    def check(self) -> None:
        """Raise the sender's failure, if any."""
        if self._error is not None:
            raise PublishFailedError(
                f"publishing to Pub/Sub failed: {self._error!r}"
            ) from self._error

    def publish(
        self,
        topic: str,
        data: bytes,
        ordering_key: str,
        attributes: dict[str, str] | None = None,
    ) -> int:
        """Queue one message; returns its sequence number (blocks while the topic is full).

        ``attributes`` are the record's headers (Debezium Server's Pub/Sub sink copies every
        header into a message attribute).
        """
        message = self._message_cls(
            data=data, ordering_key=ordering_key, attributes=attributes or {}
        )
        with self._cond:
            entry = self._topics.get(topic)
            if entry is None:
                entry = self._topics[topic] = _Topic(topic)
                entry.thread = threading.Thread(
                    target=self._run, args=(entry,), name=f"cdc-sink-{topic}", daemon=True
                )
                entry.thread.start()
            while len(entry.pending) >= self.max_pending:
                self.check()
                self._cond.wait(timeout=0.2)
            self.check()
            self._seq += 1
            entry.pending.append((self._seq, message))
            self._cond.notify_all()
            return self._seq

    def flush(self) -> None:
        """Nothing to do: senders publish continuously (kept for the reader's call sites)."""
        self.check()

    def wait_confirmed(self, seq: int, timeout_s: float | None = None) -> bool:
        """Block until ``confirmed >= seq`` (True) or the timeout passes (False)."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while self._confirmed_locked() < seq:
                self.check()
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(timeout=0.2 if remaining is None else min(0.2, remaining))
        return True

    def close(self, timeout_s: float = 60) -> None:
        """Wait (up to ``timeout_s``) for everything to be sent, then stop the senders."""
        if self._error is None:
            self.wait_confirmed(self._seq, timeout_s=timeout_s)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for entry in list(self._topics.values()):
            if entry.thread is not None:
                entry.thread.join(timeout=5)

    # --- sender threads ------------------------------------------------------------------------
    def _take(self, entry: _Topic) -> list[tuple[int, Any]] | None:
        with self._cond:
            while not entry.pending:
                if self._closing or self._error is not None:
                    return None
                self._cond.wait(timeout=0.5)
            batch: list[tuple[int, Any]] = []
            size = 0
            while entry.pending and len(batch) < self.max_messages and size < self.max_bytes:
                item = entry.pending.popleft()
                batch.append(item)
                size += len(item[1].data) + len(item[1].ordering_key) + 16
            entry.in_flight_first = batch[0][0]
            self._cond.notify_all()  # room for blocked producers
            return batch

    def _run(self, entry: _Topic) -> None:
        from google.api_core import exceptions

        path = topic_path(self._project, entry.name)
        while True:
            batch = self._take(entry)
            if batch is None:
                return
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._api.publish(
                        topic=path,
                        messages=[m for _, m in batch],
                        timeout=self.rpc_timeout_s,
                        retry=None,
                    )
                    break
                except (
                    exceptions.ServiceUnavailable,
                    exceptions.DeadlineExceeded,
                    exceptions.InternalServerError,
                    exceptions.Aborted,
                    exceptions.ResourceExhausted,
                ) as exc:
                    if attempt >= self.max_attempts:
                        self._fail(exc)
                        return
                    time.sleep(min(2.0, 0.05 * 2**attempt))
                except Exception as exc:  # NotFound, PermissionDenied, ...: not retryable
                    self._fail(exc)
                    return
            with self._cond:
                self.published_total += len(batch)
                entry.in_flight_first = None
                self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._cond.notify_all()
