"""The laptop's stream loader: the events subscription into ``raw.user_events`` on DuckDB.

Beam's local runner is a test harness (~300 events/s, and its Pub/Sub read acks before
processing), so ``edp dev`` and the demo run this instead. It uses the same pure transforms as
the Beam job (:mod:`edp.load.transforms`) and keeps the platform's delivery rule: **a message is
acked only after its rows are durably in the warehouse**, and repeats are dropped by event_id.

Shape::

    puller threads (N)                         writer (the calling thread)
    Pull(max 100, return_immediately) ->       batch up to max_batch_rows / max_batch_delay_s
    parse + validate + normalise       queue   -> dedup by event_id (bounded horizon)
    (pure transforms)                  ----->  -> load_arrow(raw) + load_arrow(errors)
                                               -> ack (only now) -> metrics

Dedup across restarts: ``raw.user_events`` is append-only, so before the first pull the loader
reads the event_ids loaded within the dedup horizon (by ``loaded_at`` when the table has it,
else by ``ingested_at``) into its in-memory :class:`~edp.load.transforms.EventIdDeduper`. A
message whose rows were written but whose ack was lost (kill -9 between the two) is redelivered
and its rows are recognised and dropped. Repeats older than the horizon can reach raw; staging
de-duplicates with ROW_NUMBER anyway. Failed rows go to ``raw.user_events_errors`` with a stable
``error_id`` (``<message_id>:<line>``) deduplicated the same way.

Memory is bounded by the queue (``max_pending_messages``) and the batch size, never by backlog.
Shutdown (SIGTERM/SIGINT via :func:`run_until_signalled`, or setting ``stop``): pullers stop
pulling, the writer flushes and acks what it holds, and returns.

Example (against the Pub/Sub emulator and a DuckDB warehouse)::

    loader = LocalLoader(get_warehouse(), LoaderConfig.from_settings())
    stats = loader.run(stop_event)
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

import pyarrow as pa

from edp.contracts.catalog import TableSpec, load_catalog
from edp.errors import EdpError, TransientError
from edp.load.metrics import LoadMetrics
from edp.load.transforms import (
    ERRORS_TABLE,
    RAW_TABLE,
    DeadLetter,
    EventIdDeduper,
    ParsedBatch,
    PubsubEnvelope,
    RawRowMapper,
    dead_letters_to_arrow,
    micros_to_datetime,
    now_micros,
    process_message,
)
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)

MAX_PULL_MESSAGES = 100  # the emulator's (and a sensible) per-Pull cap
MAX_ACK_IDS_PER_REQUEST = 1000


class Subscriber(Protocol):
    """What the loader uses of ``google.cloud.pubsub_v1.SubscriberClient``."""

    def pull(self, request: Any = None, **kwargs: Any) -> Any: ...

    def acknowledge(self, request: Any = None, **kwargs: Any) -> Any: ...

    def modify_ack_deadline(self, request: Any = None, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class LoaderConfig:
    """Knobs of the local loader (defaults measured on a 2-core laptop)."""

    subscription_path: str
    pull_threads: int = 3
    max_batch_rows: int = 20_000
    max_batch_delay_s: float = 0.2
    max_pending_messages: int = 50_000
    dedup_horizon_s: float = 6 * 3600.0
    idle_sleep_s: float = 0.02
    pull_timeout_s: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> LoaderConfig:
        """The config for the events subscription of the configured project."""
        settings = settings or get_settings()
        path = f"projects/{settings.project}/subscriptions/{settings.subscription_events_loader}"
        return cls(subscription_path=path, **overrides)


@dataclass
class LoaderStats:
    """What one run did (figures for the CLI, tests and benchmarks)."""

    messages: int = 0
    rows_loaded: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    write_failures: int = 0
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def elapsed_s(self) -> float:
        return (self.finished_at or time.monotonic()) - self.started_at


@dataclass(frozen=True)
class CommittedBatch:
    """Handed to ``on_commit`` after a batch is durable (and before its ack)."""

    loaded_at_us: int
    rows: pa.Table
    dead_letters: Sequence[DeadLetter]
    duplicates: int


@dataclass
class _Pulled:
    ack_ids: list[str]
    batch: ParsedBatch


def envelope_from_pb(received: Any) -> tuple[str, PubsubEnvelope]:
    """``(ack_id, envelope)`` of one raw-protobuf ``ReceivedMessage``."""
    message = received.message
    stamp = message.publish_time
    return received.ack_id, PubsubEnvelope(
        data=message.data,
        message_id=message.message_id,
        publish_time_us=stamp.seconds * 1_000_000 + stamp.nanos // 1000,
        attributes=dict(message.attributes),
    )


class LocalLoader:
    """Pulls the events subscription and loads it into the warehouse (see module docstring)."""

    def __init__(
        self,
        warehouse: Warehouse,
        config: LoaderConfig,
        subscriber: Subscriber | None = None,
        *,
        raw_table: TableSpec | None = None,
        errors_table: TableSpec | None = None,
        on_commit: Callable[[CommittedBatch], None] | None = None,
        metrics: LoadMetrics | None = None,
    ) -> None:
        catalog = load_catalog()
        self.warehouse = warehouse
        self.config = config
        self.raw_table = raw_table or catalog.table(RAW_TABLE)
        self.errors_table = errors_table or catalog.table(ERRORS_TABLE)
        self.mapper = RawRowMapper.for_table(self.raw_table)
        self.on_commit = on_commit
        self.metrics = metrics or LoadMetrics()
        self.stats = LoaderStats()
        self._subscriber = subscriber
        self._queue: queue.Queue[_Pulled] = queue.Queue(
            maxsize=max(1, config.max_pending_messages // MAX_PULL_MESSAGES)
        )
        self._events = EventIdDeduper(config.dedup_horizon_s)
        self._errors = EventIdDeduper(config.dedup_horizon_s)
        self._last_progress_log = 0.0
        self._error_id_column = "error_id" if "error_id" in self.errors_table.column_names else None

    # --- setup -----------------------------------------------------------------------------

    @property
    def subscriber(self) -> Subscriber:
        if self._subscriber is None:
            from google.cloud import pubsub_v1

            self._subscriber = pubsub_v1.SubscriberClient()
        return self._subscriber

    def warm_up(self) -> int:
        """Remember the event_ids (and error_ids) already loaded within the dedup horizon."""
        since_us = now_micros() - int(self.config.dedup_horizon_s * 1_000_000)
        remembered = 0
        for table, deduper, key in (
            (self.raw_table, self._events, "event_id"),
            (self.errors_table, self._errors, self._error_id_column),
        ):
            if key is None:
                continue
            time_column = next(
                (c for c in ("loaded_at", "failed_at", "ingested_at") if c in table.column_names),
                None,
            )
            sql = f"SELECT {key} AS k FROM {table.ref}"  # names come from the catalogue
            params: dict[str, Any] = {}
            if time_column:
                sql += f" WHERE {time_column} >= @since"
                params["since"] = micros_to_datetime(since_us)
            keys = self.warehouse.query_arrow(sql, params).column("k").to_pylist()
            deduper.remember(k for k in keys if k is not None)
            remembered += len(keys)
        log.info(
            "dedup warm-up: %d ids loaded within the last %.0f s",
            remembered,
            self.config.dedup_horizon_s,
        )
        return remembered

    # --- the run ---------------------------------------------------------------------------

    def run(self, stop: threading.Event, *, exit_when_idle_s: float | None = None) -> LoaderStats:
        """Load until ``stop`` is set (or the subscription stayed empty ``exit_when_idle_s``).

        Returns after flushing and acking everything pulled.
        """
        self.stats = LoaderStats()
        self.warm_up()
        idle_since: list[float] = [time.monotonic()]
        pullers_stop = threading.Event()
        threads = [
            threading.Thread(
                target=self._pull_loop,
                args=(pullers_stop, idle_since),
                name=f"pull-{i}",
                daemon=True,
            )
            for i in range(self.config.pull_threads)
        ]
        for thread in threads:
            thread.start()
        try:
            while True:
                if stop.is_set():
                    break
                if (
                    exit_when_idle_s is not None
                    and self._queue.empty()
                    and time.monotonic() - idle_since[0] >= exit_when_idle_s
                ):
                    break
                self._write_one_batch(block_s=self.config.max_batch_delay_s)
        finally:
            pullers_stop.set()
            # Flush everything the pullers handed over, including a put that was blocked.
            while any(t.is_alive() for t in threads) or not self._queue.empty():
                self._write_one_batch(block_s=0.05)
            self.stats.finished_at = time.monotonic()
        return self.stats

    def _pull_loop(self, stop: threading.Event, idle_since: list[float]) -> None:
        from google.cloud.pubsub_v1.types import PullResponse

        request = {
            "subscription": self.config.subscription_path,
            "max_messages": MAX_PULL_MESSAGES,
            "return_immediately": True,
        }
        mapper = self.mapper
        while not stop.is_set():
            try:
                response = self.subscriber.pull(request=request, timeout=self.config.pull_timeout_s)
            except Exception as exc:  # any RPC failure: back off, pull again
                log.warning("pull failed (%s); retrying", exc)
                stop.wait(0.5)
                continue
            received = PullResponse.pb(response).received_messages
            if not received:
                stop.wait(self.config.idle_sleep_s)
                continue
            idle_since[0] = time.monotonic()
            pulled = _Pulled(ack_ids=[], batch=ParsedBatch())
            for item in received:
                ack_id, envelope = envelope_from_pb(item)
                pulled.ack_ids.append(ack_id)
                pulled.batch.extend(process_message(envelope, mapper))
            self._queue.put(pulled)  # blocks when the writer is behind: bounded memory
            idle_since[0] = time.monotonic()

    def _write_one_batch(self, block_s: float) -> None:
        deadline = time.monotonic() + block_s
        pending: list[_Pulled] = []
        size = 0
        while size < self.config.max_batch_rows:
            timeout = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            pending.append(item)
            size += len(item.batch)
        if pending:
            self._commit(pending)

    def _commit(self, pending: list[_Pulled]) -> None:
        rows = [row for item in pending for row in item.batch.rows]
        dead = [d for item in pending for d in item.batch.dead_letters]
        ack_ids = [ack_id for item in pending for ack_id in item.ack_ids]
        kept = self._events.filter(rows)
        fresh_dead = (
            [d for d in dead if d.error_id not in self._errors] if self._error_id_column else dead
        )
        loaded_at_us = now_micros()
        self.mapper.stamp_loaded_at(kept, loaded_at_us)
        table = self.mapper.to_arrow(kept)
        try:
            if kept:
                self.warehouse.load_arrow(self.raw_table.ref, table)
            if fresh_dead:
                self.warehouse.load_arrow(
                    self.errors_table.ref,
                    dead_letters_to_arrow(fresh_dead, self.errors_table, loaded_at_us),
                )
        except EdpError as exc:
            # Nothing is acked: the messages come back. Forget the ids so they load then.
            self._events.forget(row["event_id"] for row in kept)
            self.stats.write_failures += 1
            log.error(
                "warehouse write failed (%s); %d messages will be redelivered", exc, len(ack_ids)
            )
            self._nack(ack_ids)
            if not isinstance(exc, TransientError):
                time.sleep(1.0)
            return
        if self._error_id_column:
            self._errors.remember(d.error_id for d in fresh_dead)
        if self.on_commit is not None:
            self.on_commit(CommittedBatch(loaded_at_us, table, fresh_dead, len(rows) - len(kept)))
        self._ack(ack_ids)
        self._record(
            kept,
            dead,
            duplicates=len(rows) - len(kept),
            loaded_at_us=loaded_at_us,
            messages=len(ack_ids),
        )

    def _record(
        self,
        kept: list[dict[str, Any]],
        dead: list[DeadLetter],
        *,
        duplicates: int,
        loaded_at_us: int,
        messages: int,
    ) -> None:
        stats = self.stats
        now = time.monotonic()
        if now - self._last_progress_log >= 1.0:
            self._last_progress_log = now
            log.info(
                "loaded %d rows so far (%d duplicates dropped, %d dead letters)",
                stats.rows_loaded + len(kept),
                stats.duplicates + duplicates,
                stats.dead_letters + len(dead),
            )
        stats.messages += messages
        stats.rows_loaded += len(kept)
        stats.duplicates += duplicates
        stats.dead_letters += len(dead)
        stats.batches += 1
        freshness = _seconds_since(kept, "ingested_at", loaded_at_us)
        lag = _seconds_since(kept, "event_timestamp", loaded_at_us)
        self.metrics.record_batch(
            loaded=len(kept),
            duplicates=duplicates,
            dead_letters=Counter(d.error_type for d in dead),
            freshness_s=freshness,
            lag_s=lag,
        )

    def _ack(self, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_REQUEST):
            chunk = ack_ids[start : start + MAX_ACK_IDS_PER_REQUEST]
            try:
                self.subscriber.acknowledge(
                    request={"subscription": self.config.subscription_path, "ack_ids": chunk}
                )
            except Exception as exc:  # a lost ack only means a deduped redelivery
                log.warning(
                    "ack of %d messages failed (%s); they will be redelivered and deduplicated",
                    len(chunk),
                    exc,
                )

    def _nack(self, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_REQUEST):
            chunk = ack_ids[start : start + MAX_ACK_IDS_PER_REQUEST]
            try:
                self.subscriber.modify_ack_deadline(
                    request={
                        "subscription": self.config.subscription_path,
                        "ack_ids": chunk,
                        "ack_deadline_seconds": 0,
                    }
                )
            except Exception as exc:  # the deadline will expire anyway
                log.warning("nack failed (%s)", exc)


def _seconds_since(rows: Sequence[dict[str, Any]], column: str, now_us: int) -> list[float]:
    values = [row.get(column) for row in rows]
    return [(now_us - v) / 1e6 for v in values if isinstance(v, int)]


def run_until_signalled(
    loader: LocalLoader, *, exit_when_idle_s: float | None = None
) -> LoaderStats:
    """Run the loader in this (main) thread until SIGTERM/SIGINT, then flush, ack and return."""
    stop = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping the pull, flushing", signum)
        stop.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return loader.run(stop, exit_when_idle_s=exit_when_idle_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
