"""The local CDC reader: the development and test stand-in for Debezium Server.

It streams the shop database's changes from a logical replication slot (``pgoutput``) and
publishes **exactly Debezium's Pub/Sub messages** (envelope, type encodings, topic
``<prefix>.<schema>.<table>``, ordering key = the key JSON), so ``cdc_flush`` consumes one
format whether Debezium Server on GKE or this reader produced it.

Lifecycle, as Debezium's ``snapshot.mode=initial``:

1. **Snapshot** (first start, or a previous snapshot that never completed): create the slot with
   ``CREATE_REPLICATION_SLOT ... EXPORT_SNAPSHOT``; read every published table inside that exact
   snapshot (``SET TRANSACTION SNAPSHOT`` in a normal connection) and publish each row as
   ``op=r`` with Debezium's snapshot markers (``first``, ``first_in_data_collection``, ``true``,
   ``last_in_data_collection``, ``last``); once Pub/Sub confirmed them all, record the snapshot as
   complete in the offsets file. Rows changed after the snapshot point stream in step 2, so
   nothing is lost or seen twice in a way staging cannot resolve (staging orders by LSN).
2. **Streaming**: ``START_REPLICATION`` from the slot's confirmed position; Begin/Commit frame a
   transaction; every Insert/Update/Delete/Truncate becomes one event (``c``/``u``/``d``/``t``).
3. **Acknowledgement**: the slot is acknowledged (``send_feedback(flush_lsn=commit end)``) only
   when Pub/Sub confirmed every message of the transaction (:mod:`edp.cdc.sink`). A crash
   (``kill -9``) therefore loses nothing: the restarted reader resumes from the slot and
   re-publishes at most the unacknowledged transactions; the flusher's writes are idempotent.
   ``confirm_delay_s`` (``EDP_CDC_CONFIRM_DELAY_SEC``, 0 = Debezium's behaviour) holds the
   acknowledgement back that long after Pub/Sub's: the Pub/Sub *emulator* keeps messages in
   memory, so a restart of it loses what was acknowledged but not yet pulled, and a reader
   restarted after it re-publishes the last ``confirm_delay_s`` of changes from the slot
   (``edp demo --chaos`` uses it; staging applies a change seen twice once).
4. **Heartbeats** every ``heartbeat_interval_s``: a Debezium heartbeat message, Debezium's
   ``heartbeat.action.query`` on the source, and, when nothing is in flight, an acknowledgement
   of the server's current WAL end — an idle slot never pins WAL.

The replication session pins ``TimeZone=UTC`` and ``DateStyle=ISO`` (pgoutput sends values in
text form as the session renders them); :mod:`edp_tools.cdc.encoding` turns each type's text into
Debezium 3.0.7's value. The key comes from the catalog's primary key. As Debezium does: a
primary-key update is a delete of the old key and a create of the new one (headers
``__debezium.oldkey``/``__debezium.newkey``); an unchanged TOASTed value is filled from the old
tuple (REPLICA IDENTITY FULL) or sent as ``__debezium_unavailable_value``; transaction ids are
``<xid>:<LSN of the record>`` and ``source.sequence`` is ``[last commit LSN, LSN]``.

Traces (``EDP_TRACES_EXPORTER`` set): each streamed change is published inside a producer span
that starts at its source commit, and the message carries the span's W3C ``traceparent``
attribute, as ingest's messages do; cdc_flush's batch span links to it (one trace per change).
Snapshot rows (``op=r``) are not changes and carry none.

Run it: ``edp cdc reader`` (part of ``edp dev``) or ``python -m edp_tools.cdc.reader``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import select
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import psycopg2
import psycopg2.extensions
import psycopg2.extras
from opentelemetry.trace import SpanKind
from psycopg2 import sql

from edp.cdc.debezium import CONNECTOR, DEBEZIUM_VERSION, envelope_schema
from edp.cdc.sink import PubSubSink
from edp.cdc.topology import (
    HEARTBEAT_ACTION_QUERY,
    HEARTBEAT_TOPIC_PREFIX,
    TRANSACTION_TOPIC_SUFFIX,
)
from edp.errors import ConfigError
from edp.observability import tracing
from edp.observability.catalogue import instrument
from edp.observability.metrics import get_meter
from edp.settings import Settings, get_settings
from edp_tools.cdc import pgoutput
from edp_tools.cdc.encoding import ColumnType, PgType, column_type, field_schema
from edp_tools.cdc.pgoutput import UNCHANGED_TOAST, format_lsn
from edp_tools.cdc.shop import connect, load_types, publication_name, table_shape_by_relid

log = logging.getLogger(__name__)

#: Debezium Server's ``debezium.sink.pubsub.null.key``: ordering key of key-less events.
NULL_KEY = "default"
#: SQLSTATE object_in_use: the slot is still attached to another (dying) walsender.
SLOT_IN_USE = "55006"
#: Record headers of a primary-key update (RelationalChangeRecordEmitter.PK_UPDATE_*_FIELD).
PK_UPDATE_OLDKEY = "__debezium.oldkey"
PK_UPDATE_NEWKEY = "__debezium.newkey"
#: Logical decoding output plugin (Debezium ``plugin.name``).
PLUGIN = "pgoutput"
SNAPSHOT_FETCH = 5000
#: Debezium's offset.flush.interval.ms (gke/ application.properties): 1 s.
OFFSET_FLUSH_INTERVAL_S = 1.0


@dataclass(frozen=True)
class ReaderConfig:
    """What the reader needs; :meth:`from_settings` fills it from the environment."""

    dsn: str
    project: str
    slot: str = "edp_cdc"
    publication: str = "edp_cdc"
    topic_prefix: str = "cdc"
    offsets_path: Path = Path(".edp/cdc/offsets.json")
    heartbeat_interval_s: float = 10.0
    #: Confirm the slot this long after Pub/Sub acknowledged a transaction (see module doc).
    confirm_delay_s: float = 0.0
    heartbeat_action_query: str | None = HEARTBEAT_ACTION_QUERY
    provide_transaction_metadata: bool = True

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> ReaderConfig:
        s = settings or get_settings()
        if s.cdc_source_dsn is None and "dsn" not in overrides:
            raise ConfigError("EDP_CDC_SOURCE_DSN is not set: where is the shop database?")
        values: dict[str, Any] = {
            "dsn": s.cdc_source_dsn.get_secret_value() if s.cdc_source_dsn else "",
            "project": s.project,
            "slot": s.cdc_slot_name,
            "publication": publication_name(),
            "topic_prefix": s.cdc_topic_prefix,
            "offsets_path": s.state_dir / "cdc" / f"offsets-{s.cdc_slot_name}.json",
            "heartbeat_interval_s": s.cdc_heartbeat_interval_sec,
            "confirm_delay_s": s.cdc_confirm_delay_sec,
        }
        values.update(overrides)
        return cls(**values)


class TableEncoder:
    """Turns pgoutput tuples of one table into Debezium messages (schema serialised once).

    A column whose type Debezium has no converter for is left out (logged once, as Debezium
    does with ``include.unknown.datatypes=false``); a value that cannot be converted becomes
    null with a warning (``event.converting.failure.handling.mode=warn``): one odd value never
    stops the stream.
    """

    def __init__(
        self,
        prefix: str,
        db: str,
        *,
        schema: str,
        table: str,
        columns: list[tuple[str, int, int, bool]],
        key: tuple[str, ...],
        types: dict[int, PgType] | None = None,
    ) -> None:
        self.schema = schema
        self.table = table
        self.topic = f"{prefix}.{schema}.{table}"
        self.all_names = [c[0] for c in columns]
        self.oids = [c[1] for c in columns]
        kept: list[tuple[int, str, ColumnType, bool]] = []
        for i, (name, oid, typmod, not_null) in enumerate(columns):
            ctype = column_type(oid, typmod, types or {})
            if ctype is None:
                log.warning(
                    "No converter found for column %s.%s.%s of type oid %d. The column will "
                    "not be part of change events for that table.",
                    schema, table, name, oid,
                )  # fmt: skip
                continue
            kept.append((i, name, ctype, not_null))
        self.positions = [k[0] for k in kept]
        self.names = [k[1] for k in kept]
        self.types: list[ColumnType] = [k[2] for k in kept]
        missing = [k for k in key if k not in self.names]
        if missing:
            raise ConfigError(f"{schema}.{table}: key columns {missing} not in the relation")
        self.key_names = key
        fields = [field_schema(k[1], k[2], optional=not k[3]) for k in kept]
        schema_json = orjson.dumps(envelope_schema(self.topic, fields))
        self._prefix = b'{"schema":' + schema_json + b',"payload":'
        by_name = {f["field"]: f for f in fields}
        self._key_schema = {
            "type": "struct",
            "fields": [{**by_name[k], "optional": False} for k in key],
            "optional": False,
            "name": f"{self.topic}.Key",
        }
        self._source_head = {
            "version": DEBEZIUM_VERSION,
            "connector": CONNECTOR,
            "name": prefix,
        }
        self._db = db

    def row(
        self, values: pgoutput.TupleValues, fill: pgoutput.TupleValues | None = None
    ) -> dict[str, Any]:
        """Encode a tuple; an unchanged TOASTed value comes from ``fill`` (the old tuple) when
        it holds one, else it is Debezium's unavailable-value placeholder."""
        out: dict[str, Any] = {}
        for pos, name, ctype in zip(self.positions, self.names, self.types, strict=True):
            value = values[pos]
            if value is UNCHANGED_TOAST:
                old = fill[pos] if fill is not None else None
                if old is None or old is UNCHANGED_TOAST:
                    out[name] = ctype.unavailable
                    continue
                value = old
            if value is None:
                out[name] = None
                continue
            try:
                out[name] = ctype.encode(value)  # type: ignore[arg-type]
            except Exception as exc:
                log.warning(
                    "Failed to properly convert data value for '%s.%s.%s': %r (%s)",
                    self.schema, self.table, name, str(value)[:80], exc,
                )  # fmt: skip
                out[name] = None
        return out

    def key(self, row: dict[str, Any]) -> dict[str, Any]:
        return {k: row[k] for k in self.key_names}

    def key_json(self, row: dict[str, Any]) -> str:
        return orjson.dumps(self.key(row)).decode("utf-8")

    def key_header(self, row: dict[str, Any]) -> str:
        """A key as Debezium Server's JSON header converter writes it (schemas enabled)."""
        return orjson.dumps({"schema": self._key_schema, "payload": self.key(row)}).decode()

    def message(
        self,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        ts_ms: int,
        ts_us: int,
        snapshot: str,
        sequence: str,
        tx_id: int | None,
        lsn: int,
        transaction: dict[str, Any] | None,
    ) -> bytes:
        now_ns = time.time_ns()
        payload = {
            "before": before,
            "after": after,
            "source": {
                **self._source_head,
                "ts_ms": ts_ms,
                "snapshot": snapshot,
                "db": self._db,
                "sequence": sequence,
                "ts_us": ts_us,
                "ts_ns": ts_us * 1000,
                "schema": self.schema,
                "table": self.table,
                "txId": tx_id,
                "lsn": lsn,
                "xmin": None,
            },
            "transaction": transaction,
            "op": op,
            "ts_ms": now_ns // 1_000_000,
            "ts_us": now_ns // 1000,
            "ts_ns": now_ns,
        }
        return self._prefix + orjson.dumps(payload) + b"}"


def _raw_text(value: str | bytes | None, _cursor: Any) -> str | None:
    return value.decode("utf-8") if isinstance(value, bytes) else value


@dataclass
class _Tx:
    xid: int
    final_lsn: int
    commit_ts_us: int
    begin_lsn: int = 0
    total: int = 0
    per_table: dict[str, int] = field(default_factory=dict)
    end_lsn: int = 0
    last_seq: int = 0


class CdcReader:
    """Snapshot + streaming reader; see the module docstring."""

    def __init__(self, config: ReaderConfig, settings: Settings | None = None) -> None:
        self.config = config
        self.settings = settings or get_settings()
        self._stop = False
        self._sink: PubSubSink | None = None
        self._encoders: dict[int, TableEncoder] = {}
        self._relations: dict[int, pgoutput.Relation] = {}
        self._tx: _Tx | None = None
        self._pending: deque[tuple[int, int]] = deque()  # (last_seq, end_lsn) awaiting confirm
        # (when Pub/Sub acknowledged it, end_lsn): confirmed to the slot after confirm_delay_s
        self._held: deque[tuple[float, int]] = deque()
        self._last_commit_lsn: int | None = None
        self._offsets: dict[str, Any] = {}
        self._offsets_saved = 0.0
        self._acked_lsn = 0
        self._db = ""
        self._admin: Any = None
        meter = get_meter(__name__)
        self._events = instrument(meter, "cdc_events_published_total")
        self._lag = instrument(meter, "cdc_reader_lag_seconds")
        # Producer spans only when tracing is on: the streaming loop pays nothing otherwise.
        self._tracer = tracing.get_tracer(__name__) if tracing.enabled() else None
        self.events_published = 0
        #: Set once the snapshot is done and the replication stream is open.
        self.streaming = threading.Event()

    # --- offsets (Debezium's offset store: only "was the snapshot completed?") ------------------
    def _load_offsets(self) -> dict[str, Any]:
        path = self.config.offsets_path
        if not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("slot") == self.config.slot else {}

    def _save_offsets(self, data: dict[str, Any]) -> None:
        path = self.config.offsets_path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"slot": self.config.slot, **data}), encoding="utf-8")
        os.replace(tmp, path)

    def stop(self, *_: Any) -> None:
        """Ask the loop to finish the current message, flush, acknowledge and return."""
        self._stop = True

    # --- main -----------------------------------------------------------------------------------
    def run(self, *, max_seconds: float | None = None) -> None:
        """Snapshot if needed, then stream until :meth:`stop` (or ``max_seconds``)."""
        cfg = self.config
        self._sink = PubSubSink(project=cfg.project, settings=self.settings)
        admin = connect(cfg.dsn)
        admin.autocommit = True
        self._admin = admin
        repl = connect(cfg.dsn, connection_factory=psycopg2.extras.LogicalReplicationConnection)
        try:
            with admin.cursor() as cur:
                cur.execute("SELECT current_database()")
                self._db = str(cur.fetchone()[0])  # type: ignore[index]
                cur.execute(
                    "SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = %s",
                    (cfg.slot,),
                )
                slot_exists = cur.fetchone() is not None
            offsets = self._load_offsets()
            rcur = repl.cursor()
            if slot_exists and not offsets.get("snapshot_completed"):
                log.warning("slot %s exists but its snapshot never completed: redoing it", cfg.slot)
                with admin.cursor() as cur:
                    cur.execute("SELECT pg_drop_replication_slot(%s)", (cfg.slot,))
                slot_exists = False
            if not slot_exists:
                self._save_offsets({"snapshot_completed": False})
                rcur.execute(
                    sql.SQL("CREATE_REPLICATION_SLOT {} LOGICAL {} EXPORT_SNAPSHOT").format(
                        sql.Identifier(cfg.slot), sql.Identifier(PLUGIN)
                    )
                )
                _, consistent_point, snapshot_name, _ = rcur.fetchone()  # type: ignore[misc]
                lsn = pgoutput.parse_lsn(consistent_point)
                self._snapshot(snapshot_name, lsn)
                offsets = {"snapshot_completed": True, "snapshot_lsn": lsn}
                self._save_offsets(offsets)
            # Debezium keeps the last commit's LSN in its offsets (source.sequence[0]).
            self._offsets = offsets
            last = offsets.get("last_commit_lsn")
            self._last_commit_lsn = int(last) if isinstance(last, int) else None
            self._stream(rcur, admin, max_seconds)
        finally:
            with contextlib.suppress(Exception):
                self._sink.close()
            for conn in (repl, admin):
                with contextlib.suppress(Exception):
                    conn.close()

    # --- snapshot -------------------------------------------------------------------------------
    def _published_tables(self, cur: Any) -> list[tuple[int, str, str]]:
        cur.execute(
            "SELECT c.oid, p.schemaname, p.tablename FROM pg_publication_tables p "
            "JOIN pg_namespace n ON n.nspname = p.schemaname "
            "JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename "
            "WHERE p.pubname = %s ORDER BY p.schemaname, p.tablename",
            (self.config.publication,),
        )
        return [(int(r[0]), r[1], r[2]) for r in cur.fetchall()]

    def _encoder_for_relid(self, cur: Any, relid: int, schema: str, name: str) -> TableEncoder:
        shape = table_shape_by_relid(cur, relid, schema, name)
        return TableEncoder(
            self.config.topic_prefix,
            self._db,
            schema=schema,
            table=name,
            columns=[(c.name, c.type_oid, c.typmod, c.not_null) for c in shape.columns],
            key=shape.primary_key,
            types=load_types(cur),
        )

    def _snapshot(self, snapshot_name: str, lsn: int) -> None:
        assert self._sink is not None
        conn = connect(self.config.dsn)
        try:
            conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with conn.cursor() as cur:
                cur.execute("SET TRANSACTION SNAPSHOT %s", (snapshot_name,))
                cur.execute("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
                snap_xid = int(cur.fetchone()[0])  # type: ignore[index]
                tables = self._published_tables(cur)
                encoders = [self._encoder_for_relid(cur, *t) for t in tables]
            ts_us = time.time_ns() // 1000
            rows = self._snapshot_rows(conn, encoders)
            sequence = orjson.dumps([None, str(lsn)]).decode()
            count = 0
            last_seq = 0
            current = next(rows, None)
            first = True
            while current is not None:
                enc, values, first_in_table = current
                nxt = next(rows, None)
                last_in_table = nxt is None or nxt[0] is not enc
                if nxt is None:
                    marker = "last"
                elif first:
                    marker = "first"
                elif first_in_table:
                    marker = "first_in_data_collection"
                elif last_in_table:
                    marker = "last_in_data_collection"
                else:
                    marker = "true"
                first = False
                after = enc.row(values)
                data = enc.message(
                    "r",
                    None,
                    after,
                    ts_ms=ts_us // 1000,
                    ts_us=ts_us,
                    snapshot=marker,
                    sequence=sequence,
                    tx_id=snap_xid,
                    lsn=lsn,
                    transaction=None,
                )
                last_seq = self._sink.publish(enc.topic, data, enc.key_json(after))
                count += 1
                current = nxt
            self._sink.flush()
            self._sink.wait_confirmed(last_seq)
            conn.commit()
            self.events_published += count
            self._events.add(count, {"op": "r"})
            log.info("snapshot of %d tables: %d rows at %s", len(encoders), count, format_lsn(lsn))
        finally:
            conn.close()

    def _snapshot_rows(
        self, conn: Any, encoders: list[TableEncoder]
    ) -> Iterator[tuple[TableEncoder, tuple[str | None, ...], bool]]:
        for enc in encoders:
            if enc.table == "debezium_heartbeat":
                continue  # Debezium snapshots it too, but it carries no business data
            # The server's text output of each type, exactly as pgoutput sends it (a ::text cast
            # differs: booleans become 'true', char(n) loses its padding).
            raw = psycopg2.extensions.new_type(tuple(set(enc.oids)), "CDC_RAW_TEXT", _raw_text)
            psycopg2.extensions.register_type(raw, conn)
            query = sql.SQL("SELECT {} FROM {}.{}").format(
                sql.SQL(", ").join(sql.Identifier(n) for n in enc.all_names),
                sql.Identifier(enc.schema),
                sql.Identifier(enc.table),
            )
            with conn.cursor(name=f"snap_{enc.table}") as cur:
                cur.itersize = SNAPSHOT_FETCH
                cur.execute(query)
                first = True
                for row in cur:
                    yield enc, tuple(row), first
                    first = False

    # --- streaming ------------------------------------------------------------------------------
    def _stream(self, rcur: Any, admin: Any, max_seconds: float | None) -> None:
        cfg = self.config
        rcur.start_replication(
            slot_name=cfg.slot,
            decode=False,
            options={"proto_version": "1", "publication_names": cfg.publication},
            status_interval=5,
        )
        self.streaming.set()
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        next_heartbeat = time.monotonic() + cfg.heartbeat_interval_s
        conn = rcur.connection
        checked = 0
        while not self._stop:
            msg = rcur.read_message()
            if msg is not None:
                self._handle(msg.payload, msg.data_start, rcur)
                checked += 1
                if checked % 1000 == 0:
                    self._ack_ready(rcur)
                    if time.monotonic() >= next_heartbeat:
                        next_heartbeat = self._heartbeat(rcur, admin, idle=False)
                continue
            # The stream buffer is drained: everything the server sent is handled.
            assert self._sink is not None
            self._sink.flush()
            self._ack_ready(rcur, force=True)
            now = time.monotonic()
            if now >= next_heartbeat:
                next_heartbeat = self._heartbeat(rcur, admin, idle=True)
            if deadline is not None and now >= deadline:
                break
            timeout = max(0.0, min(0.2, next_heartbeat - now))
            with contextlib.suppress(InterruptedError):
                select.select([conn], [], [], timeout)
        # Graceful stop: publish what is buffered, acknowledge what is confirmed.
        assert self._sink is not None
        self._sink.flush()
        if self._pending:
            self._sink.wait_confirmed(self._pending[-1][0], timeout_s=30)
        self._ack_ready(rcur, force=True)

    def _ack_ready(self, rcur: Any, *, force: bool = False) -> None:
        assert self._sink is not None
        self._sink.check()
        confirmed = self._sink.confirmed
        now = time.monotonic()
        while self._pending and self._pending[0][0] <= confirmed:
            self._held.append((now, self._pending.popleft()[1]))
        end = 0
        horizon = now - self.config.confirm_delay_s
        while self._held and self._held[0][0] <= horizon:
            end = self._held.popleft()[1]
        if end:
            # Without force, psycopg2 sends it with the next status update (status_interval).
            rcur.send_feedback(flush_lsn=end, force=force)
            self._acked_lsn = end
            now = time.monotonic()
            if force or now - self._offsets_saved >= OFFSET_FLUSH_INTERVAL_S:
                # Like Debezium's offset.flush.interval.ms: the acknowledged commit's LSN.
                self._offsets = {**self._offsets, "last_commit_lsn": end}
                self._save_offsets(self._offsets)
                self._offsets_saved = now

    def _heartbeat(self, rcur: Any, admin: Any, *, idle: bool) -> float:
        cfg = self.config
        assert self._sink is not None
        now_ms = time.time_ns() // 1_000_000
        value = {
            "schema": {
                "type": "struct",
                "fields": [{"type": "int64", "optional": False, "field": "ts_ms"}],
                "optional": False,
                "name": "io.debezium.connector.common.Heartbeat",
            },
            "payload": {"ts_ms": now_ms},
        }
        key = orjson.dumps({"serverName": cfg.topic_prefix}).decode()
        self._sink.publish(f"{HEARTBEAT_TOPIC_PREFIX}.{cfg.topic_prefix}", orjson.dumps(value), key)
        if cfg.heartbeat_action_query:
            with admin.cursor() as cur:
                cur.execute(cfg.heartbeat_action_query)
        if idle and self._tx is None and not self._pending and not self._held:
            # Nothing in flight and the buffer is drained: every change before the server's WAL
            # end has been handled, so confirming it lets the server recycle WAL.
            wal_end = int(getattr(rcur, "wal_end", 0) or 0)
            if wal_end > self._acked_lsn:
                rcur.send_feedback(flush_lsn=wal_end, force=True)
                self._acked_lsn = wal_end
        return time.monotonic() + cfg.heartbeat_interval_s

    def _encoder(self, relid: int, rcur: Any) -> TableEncoder:
        enc = self._encoders.get(relid)
        if enc is not None:
            return enc
        rel = self._relations.get(relid)
        if rel is None:
            raise pgoutput.PgOutputError(f"change for unknown relation {relid}")
        # The key and NOT NULL flags come from the catalog (REPLICA IDENTITY FULL marks every
        # column as a key in the Relation message).
        assert self._admin is not None
        with self._admin.cursor() as cur:
            shape = table_shape_by_relid(cur, rel.relid, rel.namespace, rel.name)
            types = load_types(cur)
        not_null = {c.name for c in shape.columns if c.not_null}
        enc = TableEncoder(
            self.config.topic_prefix,
            self._db,
            schema=rel.namespace,
            table=rel.name,
            columns=[(c.name, c.type_oid, c.typmod, c.name in not_null) for c in rel.columns],
            key=shape.primary_key,
            types=types,
        )
        self._encoders[relid] = enc
        return enc

    def _handle(self, payload: bytes, data_start: int, rcur: Any) -> None:
        msg = pgoutput.decode_message(payload)
        if isinstance(msg, pgoutput.Begin):
            self._tx = _Tx(msg.xid, msg.final_lsn, msg.commit_ts_us, begin_lsn=data_start)
            return
        if isinstance(msg, pgoutput.Commit):
            self._commit(msg)
            return
        if isinstance(msg, pgoutput.Relation):
            self._relations[msg.relid] = msg
            self._encoders.pop(msg.relid, None)
            return
        if isinstance(msg, (pgoutput.TypeMessage, pgoutput.Origin, pgoutput.LogicalMessage)):
            return
        tx = self._tx
        if tx is None:
            raise pgoutput.PgOutputError("change outside a transaction")
        if isinstance(msg, pgoutput.Truncate):
            for relid in msg.relids:
                enc = self._encoder(relid, rcur)
                self._emit(tx, enc, "t", None, None, lsn=data_start, key=None)
            return
        if isinstance(msg, pgoutput.Insert):
            enc = self._encoder(msg.relid, rcur)
            after = enc.row(msg.new)
            self._emit(tx, enc, "c", None, after, lsn=data_start, key=enc.key_json(after))
        elif isinstance(msg, pgoutput.Update):
            enc = self._encoder(msg.relid, rcur)
            before = enc.row(msg.old) if msg.old is not None else None
            after = enc.row(msg.new, fill=msg.old)
            if before is not None and enc.key(before) != enc.key(after):
                # A primary-key update: Debezium sends a delete of the old key and a create of
                # the new one, each naming the other key in a header (RelationalChangeRecord-
                # Emitter.emitUpdateAsPrimaryKeyChangeRecord).
                self._emit(
                    tx, enc, "d", before, None, lsn=data_start, key=enc.key_json(before),
                    headers={PK_UPDATE_NEWKEY: enc.key_header(after)},
                )  # fmt: skip
                self._emit(
                    tx, enc, "c", None, after, lsn=data_start, key=enc.key_json(after),
                    headers={PK_UPDATE_OLDKEY: enc.key_header(before)},
                )  # fmt: skip
                return
            self._emit(tx, enc, "u", before, after, lsn=data_start, key=enc.key_json(after))
        elif isinstance(msg, pgoutput.Delete):
            enc = self._encoder(msg.relid, rcur)
            before = enc.row(msg.old)
            self._emit(tx, enc, "d", before, None, lsn=data_start, key=enc.key_json(before))

    @staticmethod
    def _tx_id(tx: _Tx, lsn: int) -> str:
        # PostgresTransactionMonitor.adjustTxId: "<txId>:<LSN of the record being emitted>", so
        # BEGIN, each event and END carry different ids with the same txId prefix.
        return f"{tx.xid}:{lsn}"

    def _emit(
        self,
        tx: _Tx,
        enc: TableEncoder,
        op: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
        *,
        lsn: int,
        key: str | None,
        headers: dict[str, str] | None = None,
    ) -> None:
        assert self._sink is not None
        if tx.total == 0 and self.config.provide_transaction_metadata:
            self._publish_tx_marker(tx, "BEGIN", tx.begin_lsn)
        tx.total += 1
        qualified = f"{enc.schema}.{enc.table}"
        tx.per_table[qualified] = tx.per_table.get(qualified, 0) + 1
        transaction = (
            {
                "id": self._tx_id(tx, lsn),
                "total_order": tx.total,
                "data_collection_order": tx.per_table[qualified],
            }
            if self.config.provide_transaction_metadata
            else None
        )
        last = "null" if self._last_commit_lsn is None else f'"{self._last_commit_lsn}"'
        data = enc.message(
            op,
            before,
            after,
            ts_ms=tx.commit_ts_us // 1000,
            ts_us=tx.commit_ts_us,
            snapshot="false",
            sequence=f'[{last},"{lsn}"]',
            tx_id=tx.xid,
            lsn=lsn,
            transaction=transaction,
        )
        ordering_key = key if key is not None else NULL_KEY
        if self._tracer is None:
            tx.last_seq = self._sink.publish(enc.topic, data, ordering_key, headers)
        else:
            tx.last_seq = self._traced_publish(tx, enc, op, data, ordering_key, headers)
        self._events.add(1, {"op": op})
        self.events_published += 1

    def _traced_publish(  # noqa: PLR0917 - the arguments of one publish
        self,
        tx: _Tx,
        enc: TableEncoder,
        op: str,
        data: bytes,
        ordering_key: str,
        headers: dict[str, str] | None,
    ) -> int:
        """Publish one change inside a producer span whose ``traceparent`` rides in the message.

        The span starts at the source commit, so its length is the capture hop (commit to
        handed to Pub/Sub); cdc_flush links its batch span to it (:mod:`edp.cdc.flush`), so a
        change and its flush are one trace, as an event and its load are from ingest.
        """
        assert self._sink is not None and self._tracer is not None
        with self._tracer.start_as_current_span(
            f"{enc.topic} publish", kind=SpanKind.PRODUCER, start_time=tx.commit_ts_us * 1000
        ) as span:
            span.set_attribute("messaging.system", "gcp_pubsub")
            span.set_attribute("messaging.destination.name", enc.topic)
            span.set_attribute("db.system", "postgresql")
            span.set_attribute("db.collection.name", f"{enc.schema}.{enc.table}")
            span.set_attribute("db.operation.name", op)
            attributes = tracing.inject(dict(headers or {}))
            return self._sink.publish(enc.topic, data, ordering_key, attributes)

    def _publish_tx_marker(self, tx: _Tx, status: str, lsn: int) -> None:
        assert self._sink is not None
        value: dict[str, Any] = {
            "status": status,
            "id": self._tx_id(tx, lsn),
            "event_count": None,
            "data_collections": None,
            "ts_ms": tx.commit_ts_us // 1000,
        }
        if status == "END":
            value["event_count"] = tx.total
            value["data_collections"] = [
                {"data_collection": name, "event_count": n} for name, n in tx.per_table.items()
            ]
        key = orjson.dumps({"id": self._tx_id(tx, lsn)}).decode()
        tx.last_seq = self._sink.publish(
            f"{self.config.topic_prefix}.{TRANSACTION_TOPIC_SUFFIX}", orjson.dumps(value), key
        )

    def _commit(self, msg: pgoutput.Commit) -> None:
        assert self._sink is not None
        tx = self._tx
        self._tx = None
        if tx is None:
            raise pgoutput.PgOutputError("Commit without Begin")
        if tx.total and self.config.provide_transaction_metadata:
            self._publish_tx_marker(tx, "END", msg.end_lsn)
        # SourceInfo.sequence()[0]: the LSN the COMMIT message was received at (its end LSN).
        self._last_commit_lsn = msg.end_lsn
        if tx.total:
            self._sink.flush()
            lag_s = max(0.0, time.time() - tx.commit_ts_us / 1e6)
            self._lag.record(lag_s)
        # Ack even empty transactions (their LSNs move the slot forward) once all before is sent.
        self._pending.append((max(tx.last_seq, self._sink.last_seq), msg.end_lsn))


def main(argv: list[str] | None = None) -> int:
    """``python -m edp_tools.cdc.reader [--max-seconds N]``: run the reader from the settings."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--max-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    config = ReaderConfig.from_settings()
    stopping = threading.Event()
    deadline = time.monotonic() + 60
    while True:
        reader = CdcReader(config)

        def on_signal(*_: Any, current: CdcReader = reader) -> None:
            stopping.set()
            current.stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            reader.run(max_seconds=args.max_seconds)
            return 0
        except psycopg2.Error as exc:
            # After a crash the server may still hold the slot for the dead connection's
            # walsender for a moment ("replication slot ... is active"): retry for a minute.
            if exc.pgcode != SLOT_IN_USE or stopping.is_set() or time.monotonic() > deadline:
                raise
            log.warning("slot still in use by a previous connection, retrying: %s", exc)
            time.sleep(0.5)


if __name__ == "__main__":
    raise SystemExit(main())
