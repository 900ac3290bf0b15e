"""The laptop's stream loader: the events subscription into ``raw.user_events`` on DuckDB.

Beam's local runner is a test harness (~300 events/s, and its Pub/Sub read acks before
processing), so ``edp dev`` and the demo run this instead. It uses the same pure transforms as
the Beam job (:mod:`edp.load.transforms`) and keeps the platform's delivery rule: **a message is
acked only after its rows are durably in the warehouse**, and repeats are dropped by event_id.

Shape::

    pull workers (N processes)                         writer (the calling process)
    Pull(max 100, return_immediately) ->               batch up to max_batch_rows / delay
    parse + validate + normalise -> Arrow    queue     -> dedup by event_id (bounded horizon)
    (pure transforms; one core each)       -------->   -> load_arrow(raw) + load_arrow(errors)
                                         (bounded)     -> ack (only now) -> metrics

Parsing and validation are CPU-bound Python, so they run in worker *processes* (threads would
share one core under the GIL); a worker hands over ready Arrow tables with their ack ids. Only
the writer touches the warehouse (DuckDB allows one writing process) and only it acks.

Dedup across restarts: ``raw.user_events`` is append-only, so before the first pull the loader
reads the event_ids loaded within the dedup horizon (by ``loaded_at`` when the table has it,
else by ``ingested_at``) into its in-memory :class:`~edp.load.dedup.EventIdDeduper`. A
message whose rows were written but whose ack was lost (kill -9 between the two) is redelivered
and its rows are recognised and dropped. Repeats older than the horizon can reach raw; staging
de-duplicates with ROW_NUMBER anyway. Failed rows go to ``raw.user_events_errors`` with a stable
``error_id`` (``<message_id>:<line>``) deduplicated the same way.

Memory is bounded by the queue (``max_pending_batches`` worker batches) and the batch sizes,
never by backlog. Shutdown (SIGTERM/SIGINT via :func:`run_until_signalled`, or setting ``stop``):
workers stop pulling and hand over what they hold, the writer writes and acks it, and returns.
Workers ignore SIGINT/SIGTERM (the writer stops them) and exit by themselves when the writer
dies (kill -9): what they pulled is never acked and comes back after the ack deadline.

Example (against the Pub/Sub emulator and a DuckDB warehouse)::

    loader = LocalLoader(get_warehouse(), LoaderConfig.from_settings())
    stats = loader.run(stop_event)
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Protocol

import orjson
import pyarrow as pa
from opentelemetry.trace import SpanKind

from edp.contracts.catalog import TableSpec, load_catalog
from edp.errors import EdpError, TransientError
from edp.load.dedup import EventIdDeduper
from edp.load.metrics import LoadMetrics
from edp.load.transforms import (
    ERRORS_TABLE,
    RAW_TABLE,
    DeadLetter,
    ParsedBatch,
    PubsubEnvelope,
    RawRowMapper,
    dead_letters_to_arrow,
    process_message,
)
from edp.load.values import micros_to_datetime, now_micros
from edp.observability import tracing
from edp.observability.tracing import TRACEPARENT
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)

MAX_PULL_MESSAGES = 100  # the emulator's (and a sensible) per-Pull cap
MAX_ACK_IDS_PER_REQUEST = 1000


class Subscriber(Protocol):
    """What the writer uses of ``google.cloud.pubsub_v1.SubscriberClient``."""

    def acknowledge(self, request: Any = None, **kwargs: Any) -> Any: ...

    def modify_ack_deadline(self, request: Any = None, **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class LoaderConfig:
    """Knobs of the local loader (defaults measured on a 2-core laptop)."""

    subscription_path: str
    emulator_host: str | None = None  # None: google-cloud-pubsub's own environment lookup
    workers: int = 2
    max_batch_rows: int = 20_000
    max_batch_delay_s: float = 0.2
    worker_batch_rows: int = 2_000
    worker_batch_delay_s: float = 0.05
    max_pending_batches: int = 32
    dedup_horizon_s: float = 6 * 3600.0
    idle_sleep_s: float = 0.02
    pull_timeout_s: float = 10.0
    warehouse_open_wait_s: float = 20.0  # per-batch mode: wait for another writer's lock

    @classmethod
    def from_settings(cls, settings: Settings | None = None, **overrides: Any) -> LoaderConfig:
        """The config for the events subscription of the configured project."""
        settings = settings or get_settings()
        path = f"projects/{settings.project}/subscriptions/{settings.subscription_events_loader}"
        overrides.setdefault("emulator_host", settings.pubsub_emulator_host)
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
class WorkerBatch:
    """What a pull worker hands the writer: Arrow rows, dead letters and the ack ids."""

    worker: int
    ack_ids: list[str]
    rows: pa.Table
    dead_letters: list[DeadLetter]
    #: W3C traceparent of each message that carried one (the ingest publish span).
    traceparents: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.rows.num_rows) + len(self.dead_letters)


_READY = "ready"
_DONE = "done"


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


# --- the pull workers (child processes) ----------------------------------------------------------


def pull_worker(  # noqa: PLR0917 - a multiprocessing target takes positional args
    index: int, config: LoaderConfig, raw_table: str, out: Any, stop: Any, writer_alive_r: Any
) -> None:
    """Child process: pull, parse and convert to Arrow until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the writer decides when we stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from google.cloud.pubsub_v1.types import PullResponse

    from edp.bus.clients import build_subscriber

    subscriber = build_subscriber(emulator_host=config.emulator_host)
    mapper = RawRowMapper.for_table(load_catalog().table(raw_table))
    request = {
        "subscription": config.subscription_path,
        "max_messages": MAX_PULL_MESSAGES,
        "return_immediately": True,
    }

    def writer_alive() -> bool:
        # The writer holds the other end and never writes: readable means EOF, it is gone.
        return not writer_alive_r.poll()

    def put(item: object) -> bool:
        """Hand ``item`` to the writer (blocking while it is behind); False if it is gone."""
        while True:
            try:
                out.put(item, timeout=0.5)
                return True
            except queue.Full:
                if not writer_alive():
                    return False

    put((_READY, index))
    ack_ids: list[str] = []
    parents: list[str] = []
    batch = ParsedBatch()
    first_at = 0.0
    while not stop.is_set() and writer_alive():
        try:
            response = subscriber.pull(request=request, timeout=config.pull_timeout_s)
            received = PullResponse.pb(response).received_messages
        except Exception as exc:  # any RPC failure: back off, pull again
            log.warning("pull failed (%s); retrying", exc)
            stop.wait(0.5)
            continue
        for item in received:
            ack_id, envelope = envelope_from_pb(item)
            ack_ids.append(ack_id)
            if TRACEPARENT in envelope.attributes:
                parents.append(envelope.attributes[TRACEPARENT])
            batch.extend(process_message(envelope, mapper))
        if received and not first_at:
            first_at = time.monotonic()
        if ack_ids and (
            len(batch) >= config.worker_batch_rows
            or not received
            or time.monotonic() - first_at >= config.worker_batch_delay_s
        ):
            rows = mapper.to_arrow(batch.rows)
            if not put(WorkerBatch(index, ack_ids, rows, batch.dead_letters, parents)):
                break
            ack_ids, parents, batch, first_at = [], [], ParsedBatch(), 0.0
        if not received:
            stop.wait(config.idle_sleep_s)
    if writer_alive():  # a graceful stop: hand over what we hold, then say we are done
        if ack_ids:
            rows = mapper.to_arrow(batch.rows)
            put(WorkerBatch(index, ack_ids, rows, batch.dead_letters, parents))
        put((_DONE, index))
    else:  # orphaned (writer killed): nothing we pulled is acked; exit without flushing
        out.cancel_join_thread()


def _worker_context() -> Any:
    """Workers fork from a forkserver that pre-imported the heavy modules once per process: no
    fork of this process's gRPC / DuckDB state, and no seconds of imports per worker."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(
        ["edp_tools.load.local_loader", "edp.bus.clients", "google.cloud.pubsub_v1", "pyarrow"]
    )
    return ctx


# --- the writer ----------------------------------------------------------------------------------


class LocalLoader:
    """Pulls the events subscription and loads it into the warehouse (see module docstring)."""

    def __init__(
        self,
        warehouse: Warehouse | Callable[[], Warehouse],
        config: LoaderConfig,
        subscriber: Subscriber | None = None,
        *,
        raw_table: TableSpec | None = None,
        errors_table: TableSpec | None = None,
        on_commit: Callable[[CommittedBatch], None] | None = None,
        metrics: LoadMetrics | None = None,
    ) -> None:
        catalog = load_catalog()
        # A Warehouse is held for the whole run; a factory is called per batch and the handle
        # closed right after, so other local processes can write the DuckDB file in between.
        self._warehouse = warehouse if isinstance(warehouse, Warehouse) else None
        self._factory = None if isinstance(warehouse, Warehouse) else warehouse
        self.config = config
        self.raw_table = raw_table or catalog.table(RAW_TABLE)
        self.errors_table = errors_table or catalog.table(ERRORS_TABLE)
        self.mapper = RawRowMapper.for_table(self.raw_table)
        self.on_commit = on_commit
        self.metrics = metrics or LoadMetrics()
        self.stats = LoaderStats()
        self._subscriber = subscriber
        #: Set once every pull worker is up and pulling (after the dedup warm-up); a caller
        #: that times what it publishes (the demo's replay) waits for it.
        self.ready = threading.Event()
        self._events = EventIdDeduper(config.dedup_horizon_s)
        self._errors = EventIdDeduper(config.dedup_horizon_s)
        self._last_progress_log = 0.0
        self._logged_batches = 0
        self._error_id_column = "error_id" if "error_id" in self.errors_table.column_names else None
        self._loaded_at_index = (
            self.mapper.schema.get_field_index(self.mapper.loaded_at_column)
            if self.mapper.loaded_at_column
            else -1
        )

    @contextmanager
    def warehouse(self) -> Iterator[Warehouse]:
        """The warehouse for one batch (opened and closed here when built from a factory)."""
        if self._warehouse is not None:
            yield self._warehouse
            return
        assert self._factory is not None
        deadline = time.monotonic() + self.config.warehouse_open_wait_s
        while True:
            try:
                opened = self._factory()
                break
            except TransientError:  # another process holds the DuckDB file: wait our turn
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        try:
            yield opened
        finally:
            opened.close()

    @property
    def subscriber(self) -> Subscriber:
        if self._subscriber is None:
            from edp.bus.clients import build_subscriber

            self._subscriber = build_subscriber(emulator_host=self.config.emulator_host)
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
            with self.warehouse() as warehouse:
                keys = warehouse.query_arrow(sql, params).column("k").to_pylist()
            deduper.remember(k for k in keys if k is not None)
            remembered += len(keys)
        log.info(
            "dedup warm-up: %d ids loaded within the last %.0f s",
            remembered,
            self.config.dedup_horizon_s,
        )
        return remembered

    def run(self, stop: threading.Event, *, exit_when_idle_s: float | None = None) -> LoaderStats:
        """Load until ``stop`` is set (or the subscription stayed empty ``exit_when_idle_s``
        once every worker was ready). Returns after writing and acking everything pulled.

        Raises:
            EdpError: a pull worker died (its log says why).
        """
        self.stats = LoaderStats()
        self._logged_batches = 0
        self.ready.clear()
        self.warm_up()
        ctx = _worker_context()
        out: Any = ctx.Queue(maxsize=self.config.max_pending_batches)
        workers_stop = ctx.Event()
        alive_r, alive_w = ctx.Pipe(duplex=False)  # closes when this process dies (kill -9)
        workers = [
            ctx.Process(
                target=pull_worker,
                args=(i, self.config, self.raw_table.ref, out, workers_stop, alive_r),
                name=f"edp-load-pull-{i}",
                daemon=True,
            )
            for i in range(self.config.workers)
        ]
        for worker in workers:
            worker.start()
        ready: set[int] = set()
        done: set[int] = set()
        last_activity = time.monotonic()
        announced = False
        try:
            while not stop.is_set():
                if self._write_one_batch(out, self.config.max_batch_delay_s, ready, done):
                    last_activity = time.monotonic()
                else:
                    self._log_progress()
                if not announced and len(ready) == len(workers):
                    announced = True
                    self.ready.set()
                    log.info(
                        "loader ready: pulling %s with %d workers",
                        self.config.subscription_path,
                        len(workers),
                    )
                self._check_workers(workers, done)
                if (
                    exit_when_idle_s is not None
                    and len(ready) == len(workers)
                    and time.monotonic() - last_activity >= exit_when_idle_s
                ):
                    break
        finally:
            workers_stop.set()
            deadline = time.monotonic() + self.config.pull_timeout_s + 10
            while len(done) < len(workers) and time.monotonic() < deadline:
                self._write_one_batch(out, 0.05, ready, done)
                done |= {i for i, w in enumerate(workers) if not _pid_alive(w.pid)}
            while self._write_one_batch(out, 0.1, ready, done):  # what an exited worker left
                pass
            for worker in workers:
                if _pid_alive(worker.pid):
                    os.kill(worker.pid, signal.SIGKILL)
            alive_w.close()
            alive_r.close()
            self.stats.finished_at = time.monotonic()
        return self.stats

    def _check_workers(self, workers: list[Any], done: set[int]) -> None:
        for i, worker in enumerate(workers):
            if i not in done and not _pid_alive(worker.pid):
                raise EdpError(f"pull worker {i} (pid {worker.pid}) died; see its stderr")

    def _write_one_batch(self, out: Any, block_s: float, ready: set[int], done: set[int]) -> bool:
        """Collect worker batches for up to ``block_s`` and commit them; True if any data."""
        deadline = time.monotonic() + block_s
        pending: list[WorkerBatch] = []
        size = 0
        while size < self.config.max_batch_rows:
            timeout = deadline - time.monotonic()
            try:
                item = out.get(timeout=timeout) if timeout > 0 else out.get_nowait()
            except queue.Empty:
                break
            if isinstance(item, tuple):
                kind, index = item
                (ready if kind == _READY else done).add(index)
                continue
            pending.append(item)
            size += len(item)
        if pending:
            self._commit(pending)
        return bool(pending)

    def _fresh_dead_letters(self, dead: list[DeadLetter]) -> list[DeadLetter]:
        """Dead letters not written before, each once: a message redelivered while its first
        copy was still in flight (ack deadline passed on a busy machine) can sit twice in one
        commit, and both copies carry the same error_id."""
        fresh: dict[str, DeadLetter] = {}
        for letter in dead:
            if letter.error_id not in self._errors:
                fresh.setdefault(letter.error_id, letter)
        return list(fresh.values())

    def _commit(self, pending: list[WorkerBatch]) -> None:
        """Write, then ack, one batch, inside a consumer span linked to each message's
        producer (ingest publish) span when tracing is on."""
        links = [
            link
            for item in pending
            for parent in item.traceparents
            if (link := tracing.link_from({TRACEPARENT: parent})) is not None
        ]
        tracer = tracing.get_tracer("edp_tools.load")
        with tracer.start_as_current_span(
            "events-loader process", kind=SpanKind.CONSUMER, links=links
        ) as span:
            span.set_attribute(
                "messaging.batch.message_count", sum(len(i.ack_ids) for i in pending)
            )
            self._commit_batch(pending)

    def _commit_batch(self, pending: list[WorkerBatch]) -> None:
        tables = [item.rows for item in pending if item.rows.num_rows]
        rows = pa.concat_tables(tables) if tables else self.mapper.to_arrow([])
        dead = [d for item in pending for d in item.dead_letters]
        ack_ids = [ack_id for item in pending for ack_id in item.ack_ids]
        ids = rows.column("event_id").to_pylist()
        keep = self._events.keep_mask(ids)
        kept = rows if all(keep) else rows.filter(pa.array(keep, pa.bool_()))
        fresh_dead = self._fresh_dead_letters(dead) if self._error_id_column else dead
        loaded_at_us = now_micros()
        if self._loaded_at_index >= 0:
            column = pa.array([loaded_at_us] * kept.num_rows, pa.timestamp("us", tz="UTC"))
            kept = kept.set_column(
                self._loaded_at_index, self.mapper.schema.field(self._loaded_at_index), column
            )
        duplicates = rows.num_rows - kept.num_rows
        committed: list[pa.Table] = []
        try:
            with (
                self.warehouse() as warehouse,
                tracing.get_tracer("edp_tools.load").start_as_current_span(
                    "warehouse write", attributes={"db.collection.name": self.raw_table.ref}
                ),
            ):
                refused = self._load_isolating(warehouse, kept, committed)
                if refused:
                    kept, rejected = _without_refused(kept, refused, loaded_at_us)
                    fresh_dead = [*fresh_dead, *rejected]
                    dead = [*dead, *rejected]
                if fresh_dead:
                    warehouse.load_arrow(
                        self.errors_table.ref,
                        dead_letters_to_arrow(fresh_dead, self.errors_table, loaded_at_us),
                    )
        except EdpError as exc:
            # Nothing is acked: the messages come back. Forget the ids not written so they load
            # then; the written ones stay remembered, so their redelivery is dropped.
            written = {i for part in committed for i in part.column("event_id").to_pylist()}
            self._events.forget(i for i in kept.column("event_id").to_pylist() if i not in written)
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
            self.on_commit(CommittedBatch(loaded_at_us, kept, fresh_dead, duplicates))
        self._ack(ack_ids)
        self._record(kept, dead, duplicates=duplicates, loaded_at_us=loaded_at_us,
                     messages=len(ack_ids))  # fmt: skip

    def _log_progress(self) -> None:
        """At most one progress line a second, and one more once batches stop coming: the run
        loop calls this when idle too, so the last line always carries the final figures."""
        stats = self.stats
        now = time.monotonic()
        if stats.batches == self._logged_batches or now - self._last_progress_log < 1.0:
            return
        self._last_progress_log = now
        self._logged_batches = stats.batches
        log.info(
            "loaded %d rows so far (%d duplicates dropped, %d dead letters)",
            stats.rows_loaded,
            stats.duplicates,
            stats.dead_letters,
        )

    def _record(
        self,
        kept: pa.Table,
        dead: list[DeadLetter],
        *,
        duplicates: int,
        loaded_at_us: int,
        messages: int,
    ) -> None:
        stats = self.stats
        stats.messages += messages
        stats.rows_loaded += kept.num_rows
        stats.duplicates += duplicates
        stats.dead_letters += len(dead)
        stats.batches += 1
        self._log_progress()
        self.metrics.record_batch(
            loaded=kept.num_rows,
            duplicates=duplicates,
            dead_letters=Counter(d.error_type for d in dead),
            freshness_s=_seconds_since(kept, "ingested_at", loaded_at_us),
            lag_s=_seconds_since(kept, "event_timestamp", loaded_at_us),
        )

    def _load_isolating(
        self, warehouse: Warehouse, rows: pa.Table, committed: list[pa.Table]
    ) -> list[tuple[int, str]]:
        """Load ``rows``; when the warehouse refuses the batch for good (a constraint, a cast),
        bisect to find the refused rows and load the rest. Returns (row index, reason) of the
        refused ones: a poison row costs one dead letter, not the whole batch's redelivery."""
        if not rows.num_rows:
            return []
        try:
            warehouse.load_arrow(self.raw_table.ref, rows)
        except TransientError:
            raise
        except EdpError as exc:
            if rows.num_rows == 1:
                return [(0, str(exc))]
            middle = rows.num_rows // 2
            head = self._load_isolating(warehouse, rows.slice(0, middle), committed)
            tail = self._load_isolating(warehouse, rows.slice(middle), committed)
            return head + [(middle + i, reason) for i, reason in tail]
        committed.append(rows)
        return []

    def _ack(self, ack_ids: list[str]) -> None:
        for start in range(0, len(ack_ids), MAX_ACK_IDS_PER_REQUEST):
            chunk = ack_ids[start : start + MAX_ACK_IDS_PER_REQUEST]
            try:
                self.subscriber.acknowledge(
                    request={"subscription": self.config.subscription_path, "ack_ids": chunk}
                )
            except Exception as exc:  # a lost ack only means a deduplicated redelivery
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


def _without_refused(
    rows: pa.Table, refused: list[tuple[int, str]], failed_at_us: int
) -> tuple[pa.Table, list[DeadLetter]]:
    """The rows the warehouse took, and dead letters (``insert_error``) for the refused ones."""
    reasons = dict(refused)
    keep = [i not in reasons for i in range(rows.num_rows)]
    dead = []
    for index, reason in refused:
        row = rows.slice(index, 1).to_pylist()[0]
        dead.append(
            DeadLetter(
                error_type="insert_error",
                reason=reason[:1000],
                payload=orjson.dumps(row, default=str).decode(),
                message_id=str(row.get("pubsub_message_id") or ""),
                line=-1,
                publish_time_us=failed_at_us,
                event_id=row.get("event_id"),
            )
        )
    return rows.filter(pa.array(keep, pa.bool_())), dead


def _pid_alive(pid: int | None) -> bool:
    """Whether a worker process exists. Not ``Process.is_alive()``: workers are children of the
    forkserver, and when a process-group SIGTERM (``edp dev`` stopping us) kills the forkserver,
    multiprocessing reports every worker dead (exit code 255) although they run on, ignoring
    SIGTERM until the writer lets them hand over their last batch."""
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _seconds_since(rows: pa.Table, column: str, now_us: int) -> list[float]:
    if column not in rows.column_names or not rows.num_rows:
        return []
    micros = rows.column(column).cast(pa.int64()).drop_null().to_numpy()
    return ((now_us - micros) / 1e6).tolist()  # type: ignore[no-any-return]


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
