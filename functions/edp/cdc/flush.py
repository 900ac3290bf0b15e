"""cdc_flush core: Debezium change events from Pub/Sub into ``raw.cdc_<table>``, exactly once.

How it runs on Cloud Run (decided here, mirrored by Terraform): **Cloud Scheduler calls the
HTTP function every minute; each call runs a synchronous-pull loop for up to
``cdc_flush_max_run_sec`` (50 s), flushes, and returns.** Why not a Pub/Sub push trigger:
push delivers one message per HTTP request and counts the 2xx as the ack, so rows could not be
batched (100 rows -> 100 streaming inserts) and the ack could not wait for a batched write.
Synchronous pull gives batches, an explicit ack after the write, and memory bounded by the
batch size whatever the backlog (an unbounded flusher is OOM-killed at peak). The next scheduler
tick starts within ~10 s of the previous run ending, so the lag stays within the 10 s SLA; runs
that overlap are harmless because writes are idempotent.

One loop iteration:

1. pull from every ``cdc-flush.<schema>.<table>`` subscription, never more than the room left in
   the buffer (``CDC_BATCH_SIZE`` rows);
2. decode each message (:mod:`edp.cdc.debezium`) into a raw row: the source columns plus
   ``op, lsn, tx_id, tx_position, snapshot, source_ts, change_id, message_id, ingested_at``;
3. when the buffer holds ``CDC_BATCH_SIZE`` rows or its oldest row is ``CDC_FLUSH_INTERVAL_SEC``
   old, write it (one insert per table, insert ids = ``change_id`` = ``<key JSON>:<lsn>``) and
   only then ack the messages; a transient write failure nacks them (Pub/Sub redelivers);
4. a message that cannot be decoded (or a row the warehouse refuses) is poison: nacked until its
   ``delivery_attempt`` reaches ``max_delivery_attempts``, then published to ``cdc-dead-letter``
   with the error in its attributes and acked. Pub/Sub's own dead-letter policy (same N) is the
   backstop for messages that crash the flusher.

Duplicates (redelivery, reader replays after a crash) may reach raw — BigQuery's insertId dedup
is best-effort — and are harmless: staging keeps one row per key by (lsn, tx_position).

Example (needs an emulator and a warehouse):
    >>> flusher = CdcFlusher(get_warehouse())                 # doctest: +SKIP
    >>> flusher.run(max_run_s=50).rows_written  # doctest: +SKIP
    1234
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from opentelemetry.trace import SpanKind

from edp.bus import messages as bus
from edp.bus.messages import Message, Received
from edp.cdc.debezium import DecodeError, RowDecoder
from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.errors import ContractError, PermanentError, TransientError, WarehouseError
from edp.observability import tracing
from edp.observability.catalogue import instrument
from edp.observability.metrics import get_meter
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)

_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: How long a subscription that returned nothing is skipped.
EMPTY_BACKOFF_S = 0.1
#: With a warehouse factory (local DuckDB shared by processes): longest wait for the file.
OPEN_WAIT_S = 30.0


def open_waiting(factory: Callable[[], Warehouse], wait_s: float = OPEN_WAIT_S) -> Warehouse:
    """``factory()``, retried for up to ``wait_s`` while it raises :class:`TransientError`
    (another local process holds the DuckDB file; it releases it between its batches)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            return factory()
        except TransientError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


@dataclass
class FlushStats:
    """What one :meth:`CdcFlusher.run` did."""

    messages: int = 0
    rows_written: int = 0
    flushes: int = 0
    acked: int = 0
    nacked: int = 0
    dead_lettered: int = 0
    write_failures: int = 0
    max_buffered: int = 0
    per_table: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    subscription: str
    message: Received
    table: str
    row: dict[str, Any]
    change_id: str


class CdcFlusher:
    """Pull -> decode -> write raw -> ack, in bounded batches (see the module docstring)."""

    def __init__(
        self,
        warehouse: Warehouse | Callable[[], Warehouse],
        settings: Settings | None = None,
        *,
        tables: Sequence[str] | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        # A factory opens a warehouse per flush and closes it after (local DuckDB allows one
        # writer process at a time; the loader and the ETL share the file).
        self._factory: Callable[[], Warehouse] | None = None
        self.warehouse: Warehouse | None = None
        if isinstance(warehouse, Warehouse):
            self.warehouse = warehouse
        else:
            self._factory = warehouse
        self.settings = s = settings or get_settings()
        self.catalog = catalog or load_catalog()
        self.batch_size = s.cdc_batch_size
        self.interval_s = s.cdc_flush_interval_sec
        self.max_attempts = s.max_delivery_attempts
        self.tables = list(tables or s.cdc_tables)
        self.subscriptions = {f"{s.cdc_subscription_prefix}.{t}": t for t in self.tables}
        self._raw: dict[str, TableSpec] = {}
        self._keys: dict[str, tuple[str, ...]] = {}
        for qualified in self.tables:
            name = qualified.split(".", 1)[1]
            self._raw[qualified] = self.catalog.table(f"raw.cdc_{name}")
            self._keys[qualified] = self.catalog.table(f"staging.{name}").primary_key
        self._buffer: list[_Pending] = []
        self._backlog = False
        self._oldest: float | None = None
        self._stop = False
        self.stats = FlushStats()
        meter = get_meter(__name__)
        self._m_lag = instrument(meter, "cdc_replication_lag_seconds")
        self._m_rows = instrument(meter, "cdc_rows_flushed_total")
        self._m_dead = instrument(meter, "cdc_dead_letter_total")
        self._m_batch = instrument(meter, "cdc_flush_batch_size")
        self._m_duration = instrument(meter, "cdc_flush_duration_seconds")

    def stop(self, *_: Any) -> None:
        """Finish the current step, flush the buffer, return (SIGTERM handler)."""
        self._stop = True

    @property
    def stopped(self) -> bool:
        return self._stop

    # --- the loop -------------------------------------------------------------------------------
    def run(  # noqa: PLR0912 - the pull/flush loop reads best in one place
        self, *, max_run_s: float | None = None, until_idle_s: float | None = None
    ) -> FlushStats:
        """Pull and flush until ``max_run_s`` passed, the subscriptions were empty for
        ``until_idle_s``, or :meth:`stop` was called; always flushes before returning."""
        start = time.monotonic()
        idle_since: float | None = None
        subs = list(self.subscriptions)
        # A subscription that came back empty is asked again only after EMPTY_BACKOFF_S, so a
        # busy table is not slowed down by pulls of the quiet ones.
        next_pull = dict.fromkeys(subs, 0.0)
        while not self._stop:
            got = 0
            for sub in subs:
                if time.monotonic() < next_pull[sub]:
                    continue
                room = self.batch_size - len(self._buffer)
                if room <= 0:
                    self.flush()
                    room = self.batch_size
                asked = min(bus.MAX_PULL, room)
                try:
                    received = bus.pull(
                        sub,
                        max_messages=asked,
                        settings=self.settings,
                        timeout_s=5.0,
                    )
                except TransientError as exc:
                    log.warning("pull failed, retrying: %s", exc)
                    time.sleep(0.5)
                    continue
                got += len(received)
                # A full pull of the largest size means a backlog: keep the warehouse open between
                # flushes; a short pull means none. A full pull of the last few free places of
                # the buffer says nothing (taking it for a backlog held a local DuckDB file for
                # as long as changes kept trickling in, starving the other local writers).
                if len(received) < asked:
                    self._backlog = False
                elif asked == bus.MAX_PULL:
                    self._backlog = True
                if not received:
                    next_pull[sub] = time.monotonic() + EMPTY_BACKOFF_S
                for message in received:
                    self._accept(sub, message)
                if self._due():
                    self.flush()
            now = time.monotonic()
            if self._due():
                self.flush()
            if got or self._buffer:
                idle_since = None
            else:
                idle_since = idle_since or now
                self._release()
                if until_idle_s is not None and now - idle_since >= until_idle_s:
                    break
            if not got:
                time.sleep(0.02)
            if max_run_s is not None and now - start >= max_run_s:
                break
        self.flush()
        self._release()
        return self.stats

    def _open(self) -> Warehouse:
        assert self._factory is not None
        return open_waiting(self._factory, OPEN_WAIT_S)  # read now: tests shorten the wait

    def _release(self) -> None:
        """Close a warehouse opened by the factory (the loop is idle or done)."""
        if self._factory is not None and self.warehouse is not None:
            self.warehouse.close()
            self.warehouse = None

    def _due(self) -> bool:
        if not self._buffer:
            return False
        if len(self._buffer) >= self.batch_size:
            return True
        return self._oldest is not None and time.monotonic() - self._oldest >= self.interval_s

    # --- decoding -------------------------------------------------------------------------------
    def _accept(self, subscription: str, message: Received) -> None:
        self.stats.messages += 1
        table = self.subscriptions[subscription]
        try:
            row, change_id = self.decode(table, message)
        except PermanentError as exc:
            self._poison(subscription, message, exc)
            return
        if not self._buffer:
            self._oldest = time.monotonic()
            log.debug("batch started: first change buffered from %s", subscription)
        self._buffer.append(_Pending(subscription, message, table, row, change_id))
        self.stats.max_buffered = max(self.stats.max_buffered, len(self._buffer))

    def decode(self, table: str, message: Received) -> tuple[dict[str, Any], str]:
        """One Debezium message -> (raw row without ingested_at, change_id)."""
        row, change_id = decode_change(message.data, table, self._raw[table], self._keys[table])
        row["message_id"] = message.message_id
        return row, change_id

    # --- writing --------------------------------------------------------------------------------
    def flush(self) -> int:
        """Write the buffer (one insert per table), then ack; returns rows written.

        With tracing on, one consumer span per flush, linked to the producer span of every
        message that carried a traceparent; each table's write is a child span.
        """
        if not self._buffer:
            return 0
        links = [
            link
            for item in self._buffer
            if (link := tracing.link_from(item.message.attributes)) is not None
        ]
        tracer = tracing.get_tracer("edp.cdc")
        with tracer.start_as_current_span(
            "cdc_flush process", kind=SpanKind.CONSUMER, links=links
        ) as span:
            span.set_attribute("messaging.batch.message_count", len(self._buffer))
            return self._flush_buffer()

    def _flush_buffer(self) -> int:
        batch, self._buffer, self._oldest = self._buffer, [], None
        started = time.monotonic()
        by_table: dict[str, list[_Pending]] = {}
        for item in batch:
            by_table.setdefault(item.table, []).append(item)
        written = 0
        if self.warehouse is None and self._factory is not None:
            try:
                self.warehouse = self._open()  # kept open while busy, released when idle
            except (TransientError, WarehouseError) as exc:
                # e.g. the local DuckDB file still held by another writer after the wait: as a
                # failed write, the batch is nacked and comes back (the loop must not die with
                # it unsettled)
                log.warning("warehouse unavailable, nacking %d messages: %s", len(batch), exc)
                self.stats.write_failures += 1
                self._settle(batch, ack=False)
                return 0
        warehouse = self.warehouse
        assert warehouse is not None
        for table, items in by_table.items():
            written += self._write_table(warehouse, table, items)
        if not self._backlog:
            self._release()
        duration = time.monotonic() - started
        self._m_duration.record(duration)
        self._m_batch.record(len(batch))
        self.stats.flushes += 1
        return written

    def _write_table(self, warehouse: Warehouse, table: str, items: list[_Pending]) -> int:
        spec = self._raw[table]
        ingested_at = dt.datetime.now(dt.UTC)
        rows = [{**item.row, "ingested_at": ingested_at} for item in items]
        try:
            with tracing.get_tracer("edp.cdc").start_as_current_span(
                "warehouse write", attributes={"db.collection.name": spec.ref}
            ):
                warehouse.insert_rows(spec.ref, rows, row_ids=[i.change_id for i in items])
        except (ContractError, PermanentError) as exc:
            # A row the warehouse refuses: find it by writing one by one.
            if len(items) == 1:
                self._poison(items[0].subscription, items[0].message, exc)
                return 0
            return sum(self._write_table(warehouse, table, [item]) for item in items)
        except (TransientError, WarehouseError) as exc:
            log.warning("write to %s failed, nacking %d messages: %s", spec.ref, len(items), exc)
            self.stats.write_failures += 1
            self._settle(items, ack=False)
            return 0
        done = dt.datetime.now(dt.UTC)
        self._settle(items, ack=True)
        n = len(rows)
        self.stats.rows_written += n
        self.stats.per_table[spec.ref] = self.stats.per_table.get(spec.ref, 0) + n
        self._m_rows.add(n, {"table": spec.ref})
        for row in rows:
            self._m_lag.record((done - row["source_ts"]).total_seconds(), {"table": spec.ref})
        return n

    def _settle(self, items: list[_Pending], *, ack: bool) -> None:
        by_sub: dict[str, list[Received]] = {}
        for item in items:
            by_sub.setdefault(item.subscription, []).append(item.message)
        for sub, received in by_sub.items():
            if ack:
                bus.ack(sub, received, settings=self.settings)
                self.stats.acked += len(received)
            else:
                bus.nack(sub, received, settings=self.settings)
                self.stats.nacked += len(received)

    def _poison(self, subscription: str, message: Received, error: Exception) -> None:
        attempt = message.delivery_attempt
        if attempt and attempt < self.max_attempts:
            bus.nack(subscription, [message], settings=self.settings)
            self.stats.nacked += 1
            return
        attributes = {
            **message.attributes,
            "error": str(error)[:1024],
            "error_type": type(error).__name__,
            "delivery_attempt": str(attempt),
            "subscription": subscription,
            "message_id": message.message_id,
            "ordering_key": message.ordering_key,
        }
        bus.publish_all(
            self.settings.cdc_dead_letter_topic,
            [Message(message.data, attributes)],
            settings=self.settings,
        )
        bus.ack(subscription, [message], settings=self.settings)
        self.stats.dead_lettered += 1
        self._m_dead.add(1, {"subscription": subscription, "error_type": type(error).__name__})
        log.error("dead-lettered message %s from %s: %s", message.message_id, subscription, error)


def decode_change(  # noqa: PLR0912
    data: bytes, table: str, spec: TableSpec, keys: Sequence[str]
) -> tuple[dict[str, Any], str]:
    """One Debezium change event of ``table`` -> (raw row without ingested_at, change_id).

    ``spec`` is the ``raw.cdc_<table>`` contract, ``keys`` the source primary key.

    Raises:
        DecodeError: Not a Debezium change event of ``table`` we can decode (poison).
    """
    try:
        event = orjson.loads(data)
        schema = event["schema"]
        payload = event["payload"]
        source = payload["source"]
        op = payload["op"]
    except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
        raise DecodeError(f"not a Debezium envelope (schema + payload): {exc!r}") from exc
    if f"{source.get('schema')}.{source.get('table')}" != table:
        raise DecodeError(
            f"event of {source.get('schema')}.{source.get('table')} on the {table} subscription"
        )
    if op in ("c", "u", "r"):
        image_field, image = "after", payload.get("after")
    elif op == "d":
        image_field, image = "before", payload.get("before")
    elif op == "t":
        image_field, image = "", None
    else:
        raise DecodeError(f"unknown Debezium op {op!r}")
    row: dict[str, Any] = {}
    key_json = "truncate"
    if image_field:
        if not isinstance(image, dict):
            raise DecodeError(f"op {op!r} without a {image_field!r} image")
        value_schema = next(
            (f for f in schema.get("fields", []) if f.get("field") == image_field), None
        )
        if value_schema is None:
            raise DecodeError(f"schema has no {image_field!r} field")
        row = RowDecoder(value_schema).decode(image)
        unknown = [c for c in row if c not in spec.column_names]
        if unknown:
            raise DecodeError(f"columns {unknown} are not in {spec.ref} (schema drift?)")
        missing = [k for k in keys if image.get(k) is None]
        if missing:
            raise DecodeError(f"key columns {missing} missing")
        key_json = orjson.dumps({k: image[k] for k in keys}).decode()
    lsn = source.get("lsn")
    if not isinstance(lsn, int) or isinstance(lsn, bool):
        raise DecodeError(f"source.lsn missing or not an integer: {lsn!r}")
    ts_us = source.get("ts_us")
    if not isinstance(ts_us, int):
        ts_ms = source.get("ts_ms")
        if not isinstance(ts_ms, int):
            raise DecodeError("source.ts_ms missing")
        ts_us = ts_ms * 1000
    transaction = payload.get("transaction") or {}
    snapshot = source.get("snapshot")
    change_id = f"{key_json}:{lsn}"
    row.update(
        op=op,
        lsn=lsn,
        tx_id=source.get("txId"),
        tx_position=int(transaction.get("total_order") or 0),
        snapshot=snapshot not in (None, "false", False),
        source_ts=_EPOCH_UTC + dt.timedelta(microseconds=ts_us),
        change_id=change_id,
        message_id=None,
    )
    return row, change_id


def run_flush(
    warehouse: Warehouse,
    settings: Settings | None = None,
    *,
    max_run_s: float | None = None,
    until_idle_s: float | None = None,
) -> FlushStats:
    """One cdc_flush invocation (the Cloud Run entry point calls this)."""
    s = settings or get_settings()
    flusher = CdcFlusher(warehouse, s)
    return flusher.run(
        max_run_s=s.cdc_flush_max_run_sec if max_run_s is None else max_run_s,
        until_idle_s=until_idle_s,
    )
