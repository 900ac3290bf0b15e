"""An ordered, batching Pub/Sub sink for the local CDC reader.

Debezium Server's Pub/Sub sink publishes every change with ordering key = the record key and
marks a batch processed only once every publish is confirmed. This sink does the same with one
twist that keeps it fast in Python: instead of the client library's per-ordering-key batches
(one RPC and one thread per key: a 200,000-row transaction touches 200,000 keys), it sends
**one Publish RPC at a time per sink**, each carrying up to ``max_messages`` messages of one
topic with their own ordering keys. A single in-flight request per sink preserves the order of
every key (Pub/Sub orders messages of a key by the order the service receives them).

Every message gets a sequence number; :attr:`confirmed` is the highest number whose RPC
succeeded. The reader acknowledges a transaction to PostgreSQL only when ``confirmed`` has
passed the transaction's last message, so an acknowledged LSN never covers an unpublished
change. Memory is bounded: at most ``max_queued`` batches wait for the sender thread; beyond
that :meth:`publish` blocks (back-pressure on the replication stream).

Example (needs an emulator):
    >>> sink = PubSubSink(project="p")                     # doctest: +SKIP
    >>> seq = sink.publish("cdc.shop.orders", b"{}", '{"order_id":1}')
    >>> sink.flush(); sink.wait_confirmed(seq, timeout_s=5)
"""

from __future__ import annotations

import queue
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

from edp.bus.clients import get_publisher, topic_path
from edp.errors import TransientError
from edp.settings import Settings, get_settings

_STOP = object()


@dataclass
class _Batch:
    topic: str
    messages: list[Any] = field(default_factory=list)
    size: int = 0
    first_seq: int = 0
    last_seq: int = 0


class PublishFailedError(TransientError):
    """A Publish RPC failed after retries; the reader must stop and resume from its slot."""


class PubSubSink:
    """Ordered batching publisher with a confirmed-sequence watermark."""

    def __init__(
        self,
        *,
        project: str | None = None,
        settings: Settings | None = None,
        max_messages: int = 1000,
        max_bytes: int = 4_000_000,
        max_queued: int = 8,
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
        self.rpc_timeout_s = rpc_timeout_s
        self.max_attempts = max_attempts
        self._batches: dict[str, _Batch] = {}
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queued)
        self._seq = 0
        # First sequence number of every batch not yet accepted by Pub/Sub (buffered, queued or
        # in flight), by batch identity: `confirmed` is just below the smallest of them.
        self._outstanding: dict[int, int] = {}
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="cdc-sink", daemon=True)
        self._thread.start()
        self.published_total = 0

    @property
    def confirmed(self) -> int:
        """Highest sequence number such that it and every message before it were accepted."""
        with self._cond:
            return self._confirmed_locked()

    def _confirmed_locked(self) -> int:
        if not self._outstanding:
            return self._seq
        return min(self._outstanding.values()) - 1

    @property
    def last_seq(self) -> int:
        return self._seq

    def check(self) -> None:
        """Raise the sender's failure, if any."""
        if self._error is not None:
            raise PublishFailedError(
                f"publishing to Pub/Sub failed: {self._error!r}"
            ) from self._error

    def publish(self, topic: str, data: bytes, ordering_key: str) -> int:
        """Queue one message; returns its sequence number."""
        self.check()
        batch = self._batches.get(topic)
        with self._cond:
            self._seq += 1
            if batch is None:
                batch = self._batches[topic] = _Batch(topic, first_seq=self._seq)
                self._outstanding[id(batch)] = self._seq
        batch.messages.append(self._message_cls(data=data, ordering_key=ordering_key))
        batch.size += len(data) + len(ordering_key) + 16
        batch.last_seq = self._seq
        if len(batch.messages) >= self.max_messages or batch.size >= self.max_bytes:
            self._send(topic)
        return self._seq

    def _send(self, topic: str) -> None:
        batch = self._batches.pop(topic)
        # Batches of different topics go out in sequence order so `confirmed` stays a watermark.
        while True:
            self.check()
            try:
                self._queue.put(batch, timeout=0.5)
                return
            except queue.Full:
                continue

    def flush(self) -> None:
        """Send every partial batch now (in sequence order)."""
        for topic in sorted(self._batches, key=lambda t: self._batches[t].last_seq):
            self._send(topic)

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

    def close(self) -> None:
        """Flush, wait for everything queued, stop the sender thread."""
        if self._error is None:
            self.flush()
        self._queue.put(_STOP)
        self._thread.join(timeout=60)

    # --- sender thread -------------------------------------------------------------------------
    def _run(self) -> None:
        from google.api_core import exceptions

        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch: _Batch = item
            path = topic_path(self._project, batch.topic)
            attempt = 0
            while True:
                attempt += 1
                try:
                    self._api.publish(
                        topic=path, messages=batch.messages, timeout=self.rpc_timeout_s, retry=None
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
                self.published_total += len(batch.messages)
                del self._outstanding[id(batch)]
                self._cond.notify_all()

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._error = exc
            self._cond.notify_all()
