"""``edp demo --chaos``: the demo with real faults during the replay, and the loss measured after.

While the day is replayed over HTTP and the shop writes PostgreSQL, one fault after another:

1. ``stream-loader``: SIGKILL of the loader process group (writer and pull workers);
2. ``cdc-flush``: SIGKILL of the flusher process (``edp cdc flush --forever``);
3. ``cdc-reader``: SIGKILL of the Debezium stand-in (``python -m edp_tools.cdc.reader``);
4. ``pubsub``: SIGKILL of the Pub/Sub emulator's process group (the JVM), then a new emulator on
   the same port;
5. ``postgres``: fast shutdown of PostgreSQL (SIGINT to the postmaster), then a start on the
   same data folder and port.

The three pipeline processes are *supervised* the way Kubernetes runs them on GKE
(``restartPolicy: Always``): whenever one exits — killed by a fault, or crashing because the bus
or the database went away under it — it is started again (after 0 s, then a back-off of up to
5 s while it keeps failing). Those unplanned restarts are listed in the report too.

How each fault is recovered from, and why nothing should be lost:

- **loader**: rows are acked only after they are in ``raw.user_events``; what the killed loader
  had pulled comes back after the ack deadline, and its dedup warm-up drops the ones it wrote
  but had not acked (:mod:`edp_tools.load.local_loader`).
- **flusher**: same rule (ack after the write); staging MERGEs by LSN, so a redelivered change
  is written to raw twice but applied once.
- **CDC reader**: the slot is confirmed only once Pub/Sub accepted every message of a
  transaction; the restarted reader resumes from the slot and re-publishes at most the
  unconfirmed transactions.
- **PostgreSQL**: the replication slot is persistent (fast shutdown checkpoints it); the reader
  loses its connection, exits, and is restarted until the server is back; the shop simulator
  reconnects (a transaction cut by the shutdown is rolled back, or committed and then streamed).
- **Pub/Sub emulator**: it keeps everything in memory, so a restart loses the topics, the
  subscriptions and **every message not yet pulled**. Clients see it as an outage: ingest
  answers 503 while it cannot publish and the replay client retries (for up to ~2 minutes, as an
  SDK's retry queue would); the CDC reader's publish fails and it restarts from its slot. The
  topology is recreated at once (in GCP it never goes away; locally this is what the
  ``topology`` component does at start), each topic right before its subscriptions so a publish
  cannot land on a topic without its subscription. Messages published *before* the kill and not
  yet pulled are gone with the JVM — real Pub/Sub keeps them, the emulator cannot:

  - CDC changes are recovered: the reader confirms its slot :data:`CONFIRM_DELAY_S` after
    Pub/Sub acknowledged a transaction (``EDP_CDC_CONFIRM_DELAY_SEC``; 0 in ``edp dev``, as
    Debezium), and it is restarted once the topology is back, so it re-publishes the last
    :data:`CONFIRM_DELAY_S` of changes from the slot (a change seen twice is applied once).
    Once every fault is over it is restarted without the delay, which would otherwise hold the
    catch-up back by as much;
  - user events cannot be: ingest answered 200 for them and nothing upstream keeps a copy. The
    loader pulls continuously, so few are ever waiting, but whatever was is lost, and it is
    not hidden: it shows in ``lost`` (accepted events missing from raw).

Recovery time of a fault = from its injection until the data path it broke carries data that
was created *after* the fault (or after the service came back): an event ingest received later
is in ``raw.user_events``, and so is every event accepted before the kill (loader: what it had
pulled comes back after the 60 s ack deadline; the next fault waits, so faults do not pile
up); a change committed later is in ``raw.cdc_*`` (flusher; reader, with its slot streaming
again); ingest accepting again and both (emulator); the shop committing again and the CDC path
(PostgreSQL). Polled every second (:data:`POLL_S`).

The checks (``report.json`` → ``chaos``) are computed from the stores, not from the demo's
counters: ``lost`` = accepted event_ids missing from ``raw.user_events`` + CDC keys whose
staging row is missing, extra or different from PostgreSQL's; ``duplicates_in_staging`` =
repeated event_ids in ``staging.user_events`` + repeated primary keys in the CDC staging tables.

Why processes here: the plain demo runs the loader and the flusher as threads sharing one DuckDB
handle (:mod:`edp_tools.demo.workers`); a thread cannot be killed like a crashed container. So
here they are the ``edp dev`` processes opening DuckDB per batch / per flush, and the demo opens
it per query (:class:`PerCallWarehouse`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from rich.console import Console

from edp.errors import EdpError, TransientError
from edp_tools.demo.collect import (
    Accounting,
    ReportData,
    live_distinct_count,
    live_event_ids,
)
from edp_tools.demo.config import DemoConfig
from edp_tools.demo.render import RunFacts
from edp_tools.demo.replay import Replayer
from edp_tools.demo.runner import DemoResult, DemoRunner
from edp_tools.demo.workers import ShopThread
from edp_tools.local.processes import ManagedProcess

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The faults, in the order they are injected.
FAULTS = ("stream-loader", "cdc-flush", "cdc-reader", "pubsub", "postgres")
#: What each fault does (shown in the report).
ACTIONS = {
    "stream-loader": "SIGKILL (process group), restarted by the supervisor",
    "cdc-flush": "SIGKILL, restarted by the supervisor",
    "cdc-reader": "SIGKILL, restarted by the supervisor",
    "pubsub": "SIGKILL of the emulator JVM, new emulator on the same port, topology recreated",
    "postgres": "fast shutdown (SIGINT), started again on the same data folder and port",
}
#: The chaos run replays the day over at least this long, so every fault happens mid-replay.
MIN_REPLAY_S = 210.0
#: First fault this long after the replay started; the next one this long after a recovery.
FIRST_FAULT_S = 4.0
GAP_S = 3.0
#: After the last fault the replay's clock may run up to this many times its nominal speed
#: (backpressure still slows it when the loader falls behind): the faults took ~50 s of the
#: 210 s replay, and the rest was a two-minute wait on schedule.
TAIL_MAX_RATE = 4.0
#: How often recovery is polled (each poll opens the shared DuckDB file once).
POLL_S = 1.0
#: A fault not recovered within this long is reported as not recovered.
RECOVERY_TIMEOUT_S = 90.0
#: After the replay, the stream load counts as caught up once every accepted event is in raw,
#: or once raw stopped growing this long (events lost with the emulator never arrive).
SETTLE_S = 25.0
#: The CDC reader confirms its slot this long after Pub/Sub's acknowledgement (chaos runs only):
#: longer than a change takes from Pub/Sub into raw (flushes every 5 s; an ordering key's next
#: message is delivered once the previous one is acked), so a restarted reader re-publishes
#: whatever an emulator restart lost. After the last fault the reader runs without it (the
#: catch-up waits for the slot to be confirmed past the last commit).
CONFIRM_DELAY_S = 60.0
#: The replay client retries a 503 / no answer this many times (back-off capped at 2 s).
CLIENT_RETRIES = 60


def chaos_config(cfg: DemoConfig) -> DemoConfig:
    """``cfg`` with a replay long enough for every fault and a longer catch-up bound.

    Example:
        >>> cfg = chaos_config(DemoConfig.for_size("small"))
        >>> cfg.size.replay_seconds >= MIN_REPLAY_S
        True
    """
    size = replace(cfg.size, replay_seconds=max(cfg.size.replay_seconds, MIN_REPLAY_S))
    return replace(cfg, size=size, catch_up_timeout_s=max(cfg.catch_up_timeout_s, 300.0))


# --- the warehouse, opened per call -----------------------------------------------------------
class PerCallWarehouse:
    """A warehouse opened for each call and closed after it, so the loader and flusher
    processes can open the DuckDB file between the demo's queries (waits its turn on a lock)."""

    def __init__(self, opener: Callable[[], Any], wait_s: float = 60.0) -> None:
        self._open = opener
        self._wait_s = wait_s

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        """One open handle for several queries."""
        deadline = time.monotonic() + self._wait_s
        while True:
            try:
                wh = self._open()
                break
            except TransientError:  # another process holds the file
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)
        try:
            yield wh
        finally:
            wh.close()

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            with self.session() as wh:
                return getattr(wh, name)(*args, **kwargs)

        return call

    def close(self) -> None:
        """Nothing is held between calls."""


# --- processes kept running -------------------------------------------------------------------
class Spawner:
    """Starts every (re)started child from one long-lived thread: the parent-death signal of
    :class:`~edp_tools.local.processes.ManagedProcess` is tied to the thread that started the
    child, so a child started from a short-lived thread would die with it."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chaos-spawn")

    def run(self, fn: Callable[[], T]) -> T:
        return self._pool.submit(fn).result()

    def stop(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class Unit:
    """One supervised process."""

    name: str
    spawn: Callable[[], ManagedProcess]
    proc: ManagedProcess | None = None
    supervised: bool = True
    killed: bool = False  # the next exit is a fault of ours, not a crash
    failures: int = 0
    next_try: float = 0.0
    log_offset: int = 0

    def log_since_start(self) -> str:
        path = self.proc.log_path if self.proc else None
        if path is None or not path.exists():
            return ""
        with open(path, "rb") as fh:
            fh.seek(self.log_offset)
            return fh.read().decode("utf-8", "replace")

    def last_log_line(self) -> str:
        # Plain lines only (typer prints tracebacks in boxes: skip the box-drawing lines).
        lines = [
            ln
            for ln in self.log_since_start().splitlines()
            if ln.strip() and not ln.lstrip().startswith(("│", "╭", "╰", "|"))
        ]
        for line in reversed(lines):  # the exception's last line says why
            if "Error" in line or "error" in line or "Exception" in line:
                return line.strip()[:200]
        return lines[-1].strip()[:200] if lines else ""


class Supervisor:
    """Restarts a supervised process whenever it exits (``restartPolicy: Always``)."""

    def __init__(self, spawner: Spawner, clock: Callable[[], float]) -> None:
        self.spawner = spawner
        self.clock = clock
        self.units: dict[str, Unit] = {}
        self.restarts: list[dict[str, Any]] = []
        self.lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-supervisor", daemon=True)

    def add(self, unit: Unit, *, start: bool = True) -> Unit:
        with self.lock:
            self.units[unit.name] = unit
            if start and unit.proc is None:
                self._start(unit)
        return unit

    def _start(self, unit: Unit) -> None:
        proc_log = unit.proc.log_path if unit.proc else None
        unit.log_offset = proc_log.stat().st_size if proc_log and proc_log.exists() else 0
        unit.proc = self.spawner.run(unit.spawn)
        if unit.proc.log_path is not None and proc_log != unit.proc.log_path:
            unit.log_offset = 0

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def kill(self, name: str) -> ManagedProcess:
        """SIGKILL the unit's whole process group (a crash: nothing is flushed)."""
        with self.lock:
            unit = self.units[name]
            assert unit.proc is not None and unit.proc.pgid is not None
            unit.killed = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(unit.proc.pgid, signal.SIGKILL)
            return unit.proc

    def stop_all(self) -> None:
        """Stop the processes still supervised (after a failure; the stack stops the reader)."""
        with self.lock:
            for unit in self.units.values():
                if unit.supervised and unit.name != "cdc-reader" and unit.proc is not None:
                    unit.supervised = False
                    unit.proc.stop()

    def retire(self, name: str) -> ManagedProcess | None:
        """Stop supervising ``name`` (the caller stops its process)."""
        with self.lock:
            unit = self.units[name]
            unit.supervised = False
            return unit.proc

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            with self.lock:
                for unit in list(self.units.values()):
                    if unit.supervised and unit.proc is not None and not unit.proc.running:
                        self._restart(unit)

    def _restart(self, unit: Unit) -> None:
        now = time.monotonic()
        if now < unit.next_try:
            return
        assert unit.proc is not None
        if unit.killed:
            unit.killed = False
            unit.failures = 0
        else:
            unit.failures += 1
            self.restarts.append(
                {
                    "at_s": round(self.clock(), 2),
                    "target": unit.name,
                    "reason": f"exit code {unit.proc.returncode}: {unit.last_log_line()}",
                }
            )
        unit.proc.stop()  # reap it (and anything left in its group)
        try:
            self._start(unit)
        except Exception as exc:  # could not even start: try again later
            log.warning("restarting %s failed: %s", unit.name, exc)
        unit.next_try = time.monotonic() + min(5.0, 0.5 * unit.failures)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


# --- what the runner's panel and catch-up read ------------------------------------------------
class ProcessLoader:
    """The supervised loader process, shaped like :class:`~edp_tools.demo.workers.LoaderThread`
    for the panel and the catch-up (counts come from the warehouse, polled by the monitor)."""

    def __init__(self, supervisor: Supervisor, rows: Callable[[], int]) -> None:
        self.supervisor = supervisor
        self._rows = rows
        self.error: BaseException | None = None
        self.duplicates = 0
        self.dead_letters = 0

    @property
    def rows_loaded(self) -> int:
        return self._rows()

    def stop(self, timeout: float = 30.0) -> None:
        proc = self.supervisor.retire("stream-loader")
        if proc is not None:
            proc.stop()  # SIGTERM: the loader writes and acks what it holds, then exits


class ProcessFlusher:
    """The supervised flusher process, shaped like
    :class:`~edp_tools.demo.workers.CdcFlushThread`."""

    def __init__(self, supervisor: Supervisor, rows: Callable[[], int]) -> None:
        self.supervisor = supervisor
        self._rows = rows
        self.error: BaseException | None = None

    @property
    def rows_written(self) -> int:
        return self._rows()

    def stop(self, timeout: float = 30.0) -> None:
        proc = self.supervisor.retire("cdc-flush")
        if proc is not None:
            proc.stop()  # SIGTERM: flushes its buffer, then exits

    def drain(self, idle_s: float = 2.0) -> None:
        """One last bounded run here until the subscriptions stayed empty ``idle_s``."""
        from edp.cdc.flush import CdcFlusher
        from edp.settings import get_settings

        settings = get_settings()
        from edp.warehouse import get_warehouse

        CdcFlusher(lambda: get_warehouse(settings), settings).run(
            max_run_s=60.0, until_idle_s=idle_s
        )


class ResilientShop(ShopThread):
    """The shop simulator that reconnects when PostgreSQL goes away (as an app's pool does)."""

    def __init__(self, dsn: str, *, tps: float, seed: int) -> None:
        super().__init__(dsn, tps=tps, seed=seed)
        self.dsn = dsn
        self.failed = 0
        self.committed = 0

    def _run(self) -> None:
        import psycopg2

        from edp_tools.cdc.shop import connect

        start = time.monotonic()
        done = 0
        while not self._stop.is_set():
            wait = start + done / self.tps - time.monotonic()
            if wait > 0:
                self._stop.wait(wait)
                continue
            try:
                self.sim.step()
                self.committed += 1
            except psycopg2.Error as exc:
                self.failed += 1
                log.info("shop transaction failed (%s); reconnecting", str(exc).strip()[:120])
                with contextlib.suppress(Exception):
                    self.sim.conn.close()
                while not self._stop.is_set():
                    try:
                        self.sim.conn = connect(self.dsn)
                        break
                    except psycopg2.Error:
                        self._stop.wait(0.5)
            done += 1


class Monitor:
    """Polls what recovery is judged on, every :data:`POLL_S` (from the stores, not counters)."""

    def __init__(
        self,
        warehouse: PerCallWarehouse,
        shop_dsn: str,
        slot: str,
        since: dt.datetime,
        lo: dt.datetime,
    ) -> None:
        self.warehouse = warehouse
        self.shop_dsn = shop_dsn
        self.slot = slot
        self.since = since
        self.lo = lo
        self.raw_live = 0
        self.cdc_rows = 0
        #: ingest's received_at of the newest event in raw; source commit time of the newest
        #: streamed change in raw.cdc_*: "did something that happened after t get through?"
        self.raw_newest: dt.datetime | None = None
        self.cdc_newest: dt.datetime | None = None
        #: While set, every sample also reads the distinct event_ids of the replay in raw.
        self.want_ids = False
        self.raw_ids: set[str] = set()
        self.slot_lsn = -1
        self.slot_active = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="chaos-monitor", daemon=True)

    def start(self) -> Monitor:
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> None:
        from edp_tools.demo.collect import CDC_TABLES

        with contextlib.suppress(EdpError), self.warehouse.session() as wh:
            self.raw_live = live_distinct_count(wh, self.since, self.lo)
            if self.want_ids:
                self.raw_ids = set(live_event_ids(wh, self.since, self.lo))
            union = " UNION ALL ".join(
                f"SELECT COUNT(*) AS n, MAX(source_ts) AS ts FROM raw.cdc_{t} WHERE NOT snapshot"
                for t in CDC_TABLES
            )
            cdc = wh.query_arrow(union)
            self.cdc_rows = sum(int(n or 0) for n in cdc.column("n").to_pylist())
            self.cdc_newest = _utc(
                max((t for t in cdc.column("ts").to_pylist() if t), default=None)
            )
            self.raw_newest = _utc(
                wh.query_arrow(
                    "SELECT MAX(received_at) AS ts FROM raw.user_events WHERE "
                    "event_timestamp >= @lo AND received_at >= @since AND loaded_at IS NOT NULL",
                    {"lo": self.lo, "since": self.since},
                )
                .column("ts")[0]
                .as_py()
            )
        try:
            import psycopg2

            conn = psycopg2.connect(self.shop_dsn, connect_timeout=2)
        except Exception:
            self.slot_active = False
            return
        try:
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT active, confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
                    "WHERE slot_name = %s",
                    (self.slot,),
                )
                row = cur.fetchone()
            if row is not None:
                self.slot_active = bool(row[0])
                self.slot_lsn = int(row[1] or 0)
        except Exception:
            self.slot_active = False
        finally:
            conn.close()

    def _loop(self) -> None:
        while not self._stop.wait(POLL_S):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC (a naive warehouse timestamp is UTC)."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)


@dataclass
class FaultRecord:
    """One injected fault, as the report shows it."""

    target: str
    action: str
    at_s: float
    during_replay: bool
    recovered_s: float | None = None
    recovered_when: str = ""
    detail: str = ""


@dataclass
class Snapshot:
    at: dt.datetime
    raw_newest: dt.datetime | None
    cdc_newest: dt.datetime | None
    accepted: int
    slot_active: bool
    shop: int

    def raw_after(self, base: Snapshot) -> bool:
        """An event ingest received after ``base`` was taken is in raw."""
        return self.raw_newest is not None and self.raw_newest > base.at

    def cdc_after(self, base: Snapshot) -> bool:
        """A change committed after ``base`` was taken is in raw.cdc_*."""
        return self.cdc_newest is not None and self.cdc_newest > base.at


RAW_AFTER = "an event received after it is in raw.user_events"
CDC_AFTER = "a change committed after it is in raw.cdc_*"


class Injector:
    """Injects :data:`FAULTS` one after another during the replay and times each recovery."""

    def __init__(self, runner: ChaosRunner, replayer: Replayer, replay_thread: Any) -> None:
        self.r = runner
        self.replayer = replayer
        self.replay_thread = replay_thread
        self.faults: list[FaultRecord] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-injector", daemon=True)

    def start(self) -> Injector:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _snapshot(self) -> Snapshot:
        m = self.r.mon
        return Snapshot(
            dt.datetime.now(dt.UTC),
            m.raw_newest,
            m.cdc_newest,
            self.replayer.stats.accepted,
            m.slot_active,
            self.r.shop_committed,
        )

    def _run(self) -> None:
        # The first fault waits until the loader has started (it takes seconds of imports and
        # its dedup warm-up): killing a process that never ran tests nothing.
        deadline = time.monotonic() + 120
        while not self.r.loader_ready() and time.monotonic() < deadline:
            if self._stop.wait(0.5):
                return
        if self._stop.wait(FIRST_FAULT_S):
            return
        for target in FAULTS:
            if self._stop.is_set():
                return
            try:
                self._one(target)
            except Exception as exc:  # reported, and the next fault still runs
                log.exception("fault %s failed", target)
                self.errors.append(f"{target}: {exc}")
            if self._stop.wait(GAP_S):
                return
        # Every fault happened mid-replay and was recovered from: the rest of the replay only
        # has to be streamed, so its clock may run faster while the pipeline keeps up.
        self.replayer.pacer.allow_speed_up(TAIL_MAX_RATE, "every fault had been recovered from")

    def _one(self, target: str) -> None:
        r = self.r
        at = r.clock()
        record = FaultRecord(
            target, ACTIONS[target], round(at, 2), during_replay=self.replay_thread.is_alive()
        )
        self.faults.append(record)
        r.console.print(f"  [red]fault[/red] {target}: {ACTIONS[target]} (t={at:.1f} s)")
        checks: dict[str, Callable[[Snapshot, Snapshot], bool]]
        if target in ("stream-loader", "cdc-flush", "cdc-reader"):
            accepted_before = self._accepted_ids()
            proc = r.supervisor.kill(target)
            # The baseline is sampled once the process is dead (it cannot write any more; its
            # restart takes seconds of imports before it can), not from a sample before the kill.
            while proc.running:
                time.sleep(0.02)
            base = self._fresh_snapshot()
            if target == "stream-loader":
                # Whole again only once the messages the dead loader held came back (after
                # their ack deadline) and are in raw too; the next fault waits for that.
                r.mon.want_ids = True
                checks = {
                    RAW_AFTER: lambda b, s: s.raw_after(b),
                    "every event accepted before it is in raw": (
                        lambda b, s: accepted_before <= r.mon.raw_ids
                    ),
                }
            elif target == "cdc-flush":
                checks = {CDC_AFTER: lambda b, s: s.cdc_after(b)}
            else:
                checks = {
                    "the slot is streaming again": lambda b, s: s.slot_active,
                    CDC_AFTER: lambda b, s: s.cdc_after(b),
                }
        elif target == "pubsub":
            record.detail = r.restart_pubsub()
            base = self._fresh_snapshot()
            checks = {
                "ingest accepted again": lambda b, s: s.accepted > b.accepted,
                RAW_AFTER: lambda b, s: s.raw_after(b),
                CDC_AFTER: lambda b, s: s.cdc_after(b),
            }
        else:
            record.detail = r.restart_postgres()
            base = self._fresh_snapshot()
            checks = {
                "the shop committed again": lambda b, s: s.shop > b.shop,
                "the slot is streaming again": lambda b, s: s.slot_active,
                CDC_AFTER: lambda b, s: s.cdc_after(b),
            }
        deadline = time.monotonic() + RECOVERY_TIMEOUT_S
        while time.monotonic() < deadline and not self._stop.is_set():
            snap = self._snapshot()
            if all(check(base, snap) for check in checks.values()):
                r.mon.want_ids = False
                record.recovered_s = round(r.clock() - at, 2)
                record.recovered_when = " and ".join(checks)
                r.console.print(f"  [green]recovered[/green] {target} in {record.recovered_s} s")
                return
            time.sleep(POLL_S)
        record.recovered_when = "not within " + f"{RECOVERY_TIMEOUT_S:.0f} s: " + ", ".join(checks)

    def _accepted_ids(self) -> set[str]:
        """A copy of the event_ids ingest accepted so far (the replay adds to the set)."""
        while True:
            try:
                return set(self.replayer.stats.accepted_ids)
            except RuntimeError:  # changed size during the copy: copy again
                continue

    def _fresh_snapshot(self) -> Snapshot:
        self.r.mon.sample()
        return self._snapshot()


# --- the runner -------------------------------------------------------------------------------
class ChaosRunner(DemoRunner):
    """:class:`~edp_tools.demo.runner.DemoRunner` with the faults of this module."""

    def __init__(self, config: DemoConfig, console: Console | None = None) -> None:
        super().__init__(chaos_config(config), console)
        self.spawner = Spawner()
        self.supervisor = Supervisor(self.spawner, self.clock)
        self._t0: float | None = None
        self._have = (-1, 0.0)
        self._replay_done = False
        self.injector: Injector | None = None
        self.monitor: Monitor | None = None
        self.shop: ResilientShop | None = None
        self.chaos: dict[str, Any] = {}
        self._accepted_ids: set[str] = set()

    @property
    def mon(self) -> Monitor:
        """The monitor (started with the replay)."""
        assert self.monitor is not None
        return self.monitor

    def clock(self) -> float:
        """Seconds since the replay started (0 before)."""
        return 0.0 if self._t0 is None else time.monotonic() - self._t0

    @property
    def shop_committed(self) -> int:
        return self.shop.committed if self.shop is not None else 0

    def _cleanup(self) -> None:
        with contextlib.suppress(Exception):
            self.supervisor.stop()
            self.supervisor.stop_all()
        try:
            super()._cleanup()
        finally:
            self.spawner.stop()  # after the stack stopped: its children outlive no one

    def _run(self) -> DemoResult:
        os.environ["EDP_CDC_CONFIRM_DELAY_SEC"] = f"{CONFIRM_DELAY_S:g}"  # restored by run()
        return super()._run()

    def loader_ready(self) -> bool:
        """Whether the current loader process said it is pulling."""
        unit = self.supervisor.units.get("stream-loader")
        return unit is not None and "loader ready" in unit.log_since_start()

    def _component(self, name: str) -> Any:
        return next(c for c in self.stack.started if c.name == name)

    # --- hooks of DemoRunner ----------------------------------------------------------------
    def _start_writers(self, settings: Any) -> tuple[Any, Any]:
        from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

        self.wh.close()  # the history is in: from now on the file is shared between processes
        path = settings.duckdb_file
        self.wh = PerCallWarehouse(
            lambda: DuckDBWarehouse(path, settings=settings, estimate_bytes="never")
        )
        ctx = self.stack.ctx
        self.supervisor.add(
            Unit(
                "stream-loader",
                lambda: ctx.spawn(
                    "stream-loader",
                    [
                        sys.executable,
                        "-m",
                        "edp_tools.load",
                        "run",
                        "--no-ensure-topology",
                        "--share-warehouse",
                    ],
                ),
            )
        )
        self.supervisor.add(
            Unit(
                "cdc-flush",
                lambda: ctx.spawn(
                    "cdc-flush", [sys.executable, "-m", "edp_tools.cli.cdc", "flush", "--forever"]
                ),
            )
        )
        reader = self._component("cdc-reader")

        def spawn_reader() -> ManagedProcess:
            reader.proc = ctx.spawn("cdc-reader", [sys.executable, "-m", "edp_tools.cdc.reader"])
            return reader.proc  # type: ignore[no-any-return]

        self.supervisor.add(Unit("cdc-reader", spawn_reader, proc=reader.proc), start=False)
        self.supervisor.start()
        loader = ProcessLoader(self.supervisor, lambda: self.mon.raw_live if self.monitor else 0)
        flusher = ProcessFlusher(self.supervisor, lambda: self.mon.cdc_rows if self.monitor else 0)
        self._threads += [loader, flusher]
        return loader, flusher

    def _start_shop(self, shop_dsn: str) -> Any:
        self.shop_dsn = shop_dsn
        shop = ResilientShop(shop_dsn, tps=self.cfg.size.shop_tps, seed=self.cfg.seed)
        shop.start()
        self.shop = shop
        self._threads.append(shop)
        return shop

    def _replay(
        self, replayer: Replayer, loader: Any, flusher: Any, shop: Any, lo: dt.datetime
    ) -> None:
        from edp.settings import get_settings

        replayer.max_retries = CLIENT_RETRIES
        self._accepted_ids = replayer.stats.accepted_ids
        since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        self.monitor = Monitor(
            self.wh, self.shop_dsn, get_settings().cdc_slot_name, since, lo
        ).start()
        self._threads.append(self.monitor)
        self._t0 = time.monotonic()
        marker = _AliveFlag()
        self.injector = Injector(self, replayer, marker).start()
        self._threads.append(self.injector)
        try:
            super()._replay(replayer, loader, flusher, shop, lo)
        finally:
            marker.alive = False
        self.replay_seconds = self.clock()
        with self.phase("finish the faults"):
            self.injector.join()
        # Every fault is over, the emulator restart among them: the confirm delay has nothing
        # left to protect, and the catch-up (the slot confirmed past the last commit) would wait
        # it out. The reader restarts without it, re-publishes from its slot (a change seen
        # twice is applied once) and confirms as Debezium does.
        os.environ["EDP_CDC_CONFIRM_DELAY_SEC"] = "0"
        self.supervisor.kill("cdc-reader")
        self._replay_done = True

    def _stream_done(self, have: int, want: int) -> bool:
        if have >= want:
            return True
        now = time.monotonic()
        if have != self._have[0]:
            self._have = (have, now)
            return False
        return self._replay_done and now - self._have[1] >= SETTLE_S

    def _catch_up(self, **kwargs: Any) -> None:
        super()._catch_up(**kwargs)
        self.supervisor.stop()
        if self.monitor is not None:
            self.monitor.stop()
        self.chaos.update(self._cdc_checks())

    def _facts(self, *args: Any, **kwargs: Any) -> RunFacts:
        facts = super()._facts(*args, **kwargs)
        facts.in_process = []
        facts.notes = [n for n in facts.notes if not n.startswith("Ran inside the demo process")]
        facts.notes.insert(
            1,
            "Chaos mode: the stream loader (`edp load run --share-warehouse`) and the CDC flusher "
            "(`edp cdc flush --forever`) ran as supervised processes opening DuckDB per batch, "
            "so they could be killed like crashed containers (see the fault section).",
        )
        injector = self.injector
        failed = self.shop.failed if self.shop is not None else 0
        self.chaos.update(
            {
                "faults": [dataclasses.asdict(f) for f in injector.faults] if injector else [],
                "restarts": list(self.supervisor.restarts),
                "replay_seconds": round(getattr(self, "replay_seconds", 0.0), 2),
                "client_retries": CLIENT_RETRIES,
                "shop_failed_transactions": failed,
                "notes": [
                    f"The shop simulator had {failed} transactions fail while PostgreSQL "
                    "restarted and reconnected; the source is what PostgreSQL committed.",
                    "Pub/Sub emulator restart: messages published before the kill and not yet "
                    "pulled are lost with the emulator's memory (Google's Pub/Sub keeps them). "
                    f"CDC: the reader confirmed its slot {CONFIRM_DELAY_S:g} s after Pub/Sub and "
                    "was restarted once the topology was back, re-publishing those changes; "
                    "once every fault was over it was restarted without the delay. "
                    "User events: nothing upstream keeps a copy; any lost are counted in `lost`.",
                    *(f"fault error: {e}" for e in (injector.errors if injector else [])),
                ],
            }
        )
        facts.chaos = self.chaos
        return facts

    def _write(self, data: ReportData, acc: Accounting, facts: RunFacts) -> DemoResult:
        if "lost" not in self.chaos:
            self.chaos.update(self._final_checks(acc))
            facts.chaos = self.chaos
            # The client's receipts (every event_id ingest answered 200 for), so the checks
            # can be redone from the stores by anyone (tests/demo/test_chaos.py does).
            self.cfg.out_dir.mkdir(parents=True, exist_ok=True)
            (self.cfg.out_dir / "accepted_event_ids.txt").write_text(
                "\n".join(sorted(self._accepted_ids)) + "\n", encoding="utf-8"
            )
        result = super()._write(data, acc, facts)
        report_json = self.cfg.out_dir / "report.json"
        figures = json.loads(report_json.read_text(encoding="utf-8"))
        figures["chaos"] = self.chaos
        report_json.write_text(json.dumps(figures, indent=2, default=str) + "\n", encoding="utf-8")
        return result

    # --- the faults that are not a plain kill ----------------------------------------------
    def restart_pubsub(self) -> str:
        """SIGKILL the emulator, start a new one on its port, recreate the topology."""
        from edp.settings import get_settings
        from edp_tools.local.pubsub_emulator import PubSubEmulator

        component = self._component("pubsub")
        old = component.emulator
        port = old.port
        os.killpg(old.process.pgid, signal.SIGKILL)
        old.stop()  # reap
        killed = time.monotonic()

        log_path = self.stack.ctx.log_dir / "pubsub-emulator.log"

        def start() -> PubSubEmulator:
            for attempt in range(10):
                try:
                    return PubSubEmulator(old.project, port=port, log_path=log_path).start()
                except EdpError:  # the port may linger a moment after the kill
                    if attempt == 9:
                        raise
                    time.sleep(1.0)
            raise AssertionError("unreachable")

        component.emulator = self.spawner.run(start)
        up = time.monotonic()
        created = recreate_topology(get_settings())
        recreated = time.monotonic()
        # Restart the CDC reader (it may not even have noticed the outage): it re-publishes
        # from its slot what the old emulator lost (see CONFIRM_DELAY_S).
        self.supervisor.kill("cdc-reader")
        return (
            f"new emulator answering after {up - killed:.1f} s; {created} topics and "
            f"subscriptions recreated {recreated - up:.1f} s later; CDC reader restarted to "
            "re-publish from its slot"
        )

    def restart_postgres(self) -> str:
        """Fast shutdown of PostgreSQL, then a start on the same folder and port."""
        from edp_tools.local.postgres import PostgresCluster

        component = self._component("postgres")
        old = component.cluster
        started = time.monotonic()
        old.stop()  # SIGINT: fast shutdown (checkpoint, slots saved)
        stopped = time.monotonic()
        new = self.spawner.run(lambda: PostgresCluster(old.state_dir, port=old.port).start())
        component.cluster = new
        self.stack.ctx.values["postgres"] = new
        return (
            f"fast shutdown took {stopped - started:.1f} s, the start "
            f"{time.monotonic() - stopped:.1f} s"
        )

    # --- the checks, from the stores ---------------------------------------------------------
    def _cdc_checks(self) -> dict[str, Any]:
        """Staging vs PostgreSQL per CDC table (stack still up, loaders stopped)."""
        from edp.cdc.staging import refresh_staging

        refresh_staging(self.wh)
        with self.wh.session() as wh:
            tables = cdc_vs_source(self.shop_dsn, wh)
        return {
            "cdc": tables,
            "lost_cdc": sum(t["missing"] + t["extra"] + t["different"] for t in tables.values()),
            "staging_cdc_duplicates": sum(t["duplicates"] for t in tables.values()),
        }

    def _final_checks(self, acc: Accounting) -> dict[str, Any]:
        """After the ETL: events lost, and duplicates in staging.user_events."""
        from edp.settings import get_settings
        from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

        settings = get_settings()
        wh = DuckDBWarehouse(
            settings.duckdb_file, settings=settings, read_only=True, estimate_bytes="never"
        )
        try:
            dup = (
                wh.query_arrow(
                    "SELECT COUNT(*) - COUNT(DISTINCT event_id) AS n FROM staging.user_events "
                    "WHERE event_date >= DATE '2000-01-01'"
                )
                .column("n")[0]
                .as_py()
            )
        finally:
            wh.close()
        lost_events = acc.missing_in_raw
        lost_cdc = int(self.chaos.get("lost_cdc", 0))
        events_dup = int(dup or 0)
        cdc_dup = int(self.chaos.get("staging_cdc_duplicates", 0))
        out: dict[str, Any] = {
            "lost_events": lost_events,
            "lost": lost_events + lost_cdc,
            "staging_event_duplicates": events_dup,
            "duplicates_in_staging": events_dup + cdc_dup,
            "unanswered": acc.unanswered,
        }
        lost_refusals = acc.refused - acc.bad_topic_messages
        if lost_refusals > 0:
            # Not data loss (the client got its refusals), but the copies kept for inspection.
            self.chaos.setdefault("notes", []).append(
                f"{lost_refusals} of the {acc.refused} refusal records published to "
                "events-bad were still unread on the emulator when it was killed and were lost "
                "with it (the clients had their refusal answers; only the inspection copies "
                "are missing)."
            )
        if "cdc" not in self.chaos:
            out["notes_missing_cdc"] = "the CDC comparison did not run"
        return out


class _AliveFlag:
    """``is_alive()`` of the replay, as the injector asks it."""

    def __init__(self) -> None:
        self.alive = True

    def is_alive(self) -> bool:
        return self.alive


def recreate_topology(settings: Any) -> int:
    """Every topic and subscription again on a fresh emulator; each topic right before its
    subscriptions (a message published to a topic without subscriptions is dropped). Returns
    how many were created."""
    from edp.bus.admin import ensure_topology
    from edp.bus.topology import Topology
    from edp.cdc.topology import cdc_topology

    topo = cdc_topology(settings)
    by_key = {t.key: t for t in topo.topics}
    dead = {s.dead_letter.topic for s in topo.subscriptions if s.dead_letter is not None}
    created = 0
    deadline = time.monotonic() + 30
    ordered = [by_key[k] for k in sorted(dead)] + [t for t in topo.topics if t.key not in dead]
    for topic in ordered:
        subs = topo.subscriptions_of(topic.key)
        needed = {s.dead_letter.topic for s in subs if s.dead_letter is not None}
        dead_letter_topics = (by_key[k] for k in sorted(needed) if k != topic.key)
        part = Topology((topic, *dead_letter_topics), tuple(subs))
        while True:
            try:
                report = ensure_topology(part, settings=settings)
                break
            except TransientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        created += len(report.created)
    return created


def cdc_vs_source(dsn: str, wh: Any) -> dict[str, dict[str, int]]:
    """Per captured table: source rows (PostgreSQL), staging rows, and the differences."""
    from edp.cdc.staging import STAGING_META, captured_tables
    from edp.contracts.catalog import load_catalog
    from edp_tools.cdc.shop import connect, table_shape

    out: dict[str, dict[str, int]] = {}
    conn = connect(dsn)
    try:
        for table in captured_tables():
            shape = table_shape(conn, "shop", table)
            spec = load_catalog().table(f"staging.{table}")
            cols = [f.name for f in spec.fields if f.name not in STAGING_META]
            key = list(spec.primary_key)
            with conn.cursor() as cur:
                cur.execute(f"SELECT {', '.join(cols)} FROM shop.{table}")  # catalogue names
                src_rows = cur.fetchall()
            assert set(key) <= {c.name for c in shape.columns}
            k_idx = [cols.index(k) for k in key]
            src = {tuple(r[i] for i in k_idx): tuple(r) for r in src_rows}
            rows = wh.query(f"SELECT {', '.join(cols)} FROM {spec.ref}").rows
            stg: dict[tuple[Any, ...], tuple[Any, ...]] = {}
            duplicates = 0
            for row in rows:
                k = tuple(row[c] for c in key)
                duplicates += k in stg
                stg[k] = tuple(row[c] for c in cols)
            out[table] = {
                "source_rows": len(src),
                "staging_rows": len(rows),
                "missing": len(src.keys() - stg.keys()),
                "extra": len(stg.keys() - src.keys()),
                "different": sum(1 for k in src.keys() & stg.keys() if src[k] != stg[k]),
                "duplicates": duplicates,
            }
    finally:
        conn.close()
    return out


__all__ = [
    "FAULTS",
    "ChaosRunner",
    "PerCallWarehouse",
    "cdc_vs_source",
    "chaos_config",
    "recreate_topology",
]
