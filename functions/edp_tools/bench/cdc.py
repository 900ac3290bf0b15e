"""CDC benchmarks on real PostgreSQL 15 + the Pub/Sub emulator + DuckDB.

Pipeline under test, each stage its own process as in production: the shop database -> the local
CDC reader (Debezium stand-in) -> Pub/Sub -> the cdc_flush loop (``edp cdc flush``, default
``CDC_BATCH_SIZE=100`` / ``CDC_FLUSH_INTERVAL_SEC=5``) -> ``raw.cdc_*`` in DuckDB.

- ``cdc.lag.*`` (bars p50 < 1 s, p99 < 3 s): 10,000 single-row transactions (order inserts) at
  200 tps; lag of a row = its ``ingested_at`` in raw (stamped just before the write) - its
  source commit time (``source.ts_us`` from pgoutput's Begin). Reports p50/p90/p99/max. At
  200 tps a 100-row batch fills in ~0.5 s, so the batch size, not the 5 s interval, sets it.
- ``cdc.burst.*`` (bar RSS < 300 MiB): one transaction inserts 200,000 order lines; the flusher
  (a fresh process) drains them; ``cdc.burst.rss_mib`` is its peak RSS (kernel ``ru_maxrss``),
  ``cdc.burst.changes_per_s`` = 200,000 / (last row written - commit). Every change must land.

Knobs (bench only): ``EDP_BENCH_CDC_TXNS`` (10,000), ``EDP_BENCH_CDC_TPS`` (200),
``EDP_BENCH_CDC_BURST`` (200,000).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edp_tools.bench import Bar, benchmark

PROJECT = "edp-bench-cdc"


def _knob(name: str, default: float) -> float:
    value = os.environ.get(name)  # bench knobs are not platform settings
    return float(value) if value else default


@dataclass
class _Env:
    workdir: Path
    dsn: str
    slot: str
    env: dict[str, str]


@contextmanager
def _stack() -> Iterator[_Env]:
    """PostgreSQL + emulator + DuckDB file + shop schema + topology, torn down after."""
    import psycopg2

    from edp.cdc.topology import ensure_cdc_topology
    from edp.settings import get_settings
    from edp.warehouse import get_warehouse
    from edp_tools.cdc.shop import apply_schema, connect
    from edp_tools.local.postgres import PostgresCluster
    from edp_tools.local.pubsub_emulator import PubSubEmulator

    workdir = Path(tempfile.mkdtemp(prefix="edp-bench-cdc-"))
    cluster = PostgresCluster(workdir / "pg")
    emulator = PubSubEmulator(PROJECT, log_path=workdir / "emulator.log")
    saved = dict(os.environ)
    try:
        cluster.start()
        emulator.start()
        admin = psycopg2.connect(cluster.dsn)
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute("CREATE DATABASE shop")
        admin.close()
        dsn = cluster.dsn_for("shop")
        env = {
            **emulator.env(),
            "EDP_WAREHOUSE": "duckdb",
            "EDP_DUCKDB_PATH": str(workdir / "warehouse.duckdb"),
            "EDP_STATE_DIR": str(workdir / "state"),
            "EDP_CDC_SOURCE_DSN": dsn,
            "EDP_METRICS_EXPORTER": "none",
        }
        os.environ.update(env)
        get_settings.cache_clear()
        conn = connect(dsn)
        apply_schema(conn)
        conn.close()
        ensure_cdc_topology(get_settings())
        warehouse = get_warehouse(get_settings())
        warehouse.create_tables()
        warehouse.close()
        yield _Env(workdir, dsn, get_settings().cdc_slot_name, {**os.environ})
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()
        with contextlib.suppress(Exception):
            emulator.stop()
        with contextlib.suppress(Exception):
            cluster.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def _slot_active(dsn: str, slot: str) -> bool:
    from edp_tools.cdc.shop import connect

    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT active FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            row = cur.fetchone()
        return bool(row and row[0])
    finally:
        conn.close()


@contextmanager
def _reader(stack: _Env) -> Iterator[subprocess.Popen[bytes]]:
    from edp_tools.local.processes import wait_until

    log = (stack.workdir / "reader.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edp_tools.cdc.reader"], env=stack.env, stdout=log, stderr=log
    )
    try:
        wait_until(lambda: _slot_active(stack.dsn, stack.slot), timeout=120, what="reader")
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _flusher_argv(idle_s: float) -> list[str]:
    return [
        sys.executable, "-m", "edp_tools.cli.cdc", "flush",
        "--until-idle-s", str(idle_s), "--max-run-s", "1800",
    ]  # fmt: skip


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _lag(stack: _Env, txns: int, tps: float) -> dict[str, float]:
    from edp.settings import get_settings
    from edp.warehouse import get_warehouse
    from edp_tools.cdc.shop import connect

    with _reader(stack):
        log = (stack.workdir / "flusher-lag.log").open("ab")
        flusher = subprocess.Popen(_flusher_argv(8), env=stack.env, stdout=log, stderr=log)
        time.sleep(2.0)  # let the flusher import and start pulling
        conn = connect(stack.dsn)
        conn.autocommit = True
        start = time.monotonic()
        with conn.cursor() as cur:
            for i in range(txns):
                wait = start + i / tps - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                cur.execute(
                    "INSERT INTO shop.orders (order_id, order_uuid, user_id, status, currency, "
                    "subtotal, total_amount, created_at, updated_at) VALUES (%s, "
                    "gen_random_uuid(), %s, 'pending', 'KRW', 129000.00, 129000.00, now(), now())",
                    (i + 1, i % 5000),
                )
        achieved_tps = txns / (time.monotonic() - start)
        conn.close()
        flusher.wait(timeout=600)
        log.close()
    warehouse = get_warehouse(get_settings())
    try:
        rows = warehouse.query(
            "SELECT TIMESTAMP_DIFF(ingested_at, source_ts, MICROSECOND) / 1e6 AS lag_s "
            "FROM raw.cdc_orders WHERE op = 'c'"
        ).rows
    finally:
        warehouse.close()
    lags = [float(r["lag_s"]) for r in rows]
    if len(lags) != txns:
        raise RuntimeError(f"lag run: {len(lags)} of {txns} rows reached raw")
    return {
        "cdc.lag.p50_s": round(_quantile(lags, 0.50), 3),
        "cdc.lag.p90_s": round(_quantile(lags, 0.90), 3),
        "cdc.lag.p99_s": round(_quantile(lags, 0.99), 3),
        "cdc.lag.max_s": round(max(lags), 3),
        "cdc.lag.achieved_tps": round(achieved_tps, 1),
    }


def _burst(stack: _Env, changes: int) -> dict[str, float]:
    import datetime as dt

    from edp.settings import get_settings
    from edp.warehouse import get_warehouse
    from edp_tools.bench.rss import run_with_peak_rss
    from edp_tools.cdc.shop import connect

    with _reader(stack):
        conn = connect(stack.dsn)
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO shop.order_items (order_id, line_no, product_id, product_name, "
                "quantity, unit_price, line_total) "
                "SELECT 1000000 + g / 4, mod(g, 4) + 1, 'P-' || (mod(g, 12) + 1001), "
                "'무선 이어폰 Pro', 1 + mod(g, 3), 189000.00, 189000.00 * (1 + mod(g, 3)) "
                "FROM generate_series(0, %s - 1) AS g",
                (changes,),
            )
        conn.commit()
        committed = dt.datetime.now(dt.UTC)
        conn.close()
        # The flusher drains in its own process: its peak RSS is the kernel's high-water mark.
        run = run_with_peak_rss(_flusher_argv(10), env=stack.env, timeout_s=1800)
    if run.returncode != 0:
        raise RuntimeError(f"burst flusher exited {run.returncode}")
    warehouse = get_warehouse(get_settings())
    try:
        row = warehouse.query(
            "SELECT COUNT(DISTINCT change_id) AS n, MAX(ingested_at) AS last "
            "FROM raw.cdc_order_items WHERE op = 'c'"
        ).rows[0]
    finally:
        warehouse.close()
    if int(row["n"]) != changes:
        raise RuntimeError(f"burst: {row['n']} of {changes} changes reached raw")
    elapsed = (row["last"] - committed).total_seconds()
    return {
        "cdc.burst.rss_mib": round(run.peak_rss_mib, 1),
        "cdc.burst.changes_per_s": round(changes / elapsed, 1),
        "cdc.burst.seconds": round(elapsed, 1),
    }


@benchmark(
    "cdc",
    bars=[
        Bar("cdc.lag.p50_s", "<", 1.0, unit="s", source="CDC SLA"),
        Bar("cdc.lag.p99_s", "<", 3.0, unit="s", source="CDC SLA"),
        Bar("cdc.burst.rss_mib", "<", 300, unit="MiB", source="CDC SLA"),
    ],
    units={
        "cdc.lag.p90_s": "s",
        "cdc.lag.max_s": "s",
        "cdc.lag.achieved_tps": "txn/s",
        "cdc.burst.changes_per_s": "changes/s",
        "cdc.burst.seconds": "s",
    },
)
def bench_cdc() -> dict[str, float]:
    """CDC commit -> raw lag at 200 tps, and a 200,000-change burst (flusher RSS, throughput)."""
    txns = int(_knob("EDP_BENCH_CDC_TXNS", 10_000))
    tps = _knob("EDP_BENCH_CDC_TPS", 200)
    changes = int(_knob("EDP_BENCH_CDC_BURST", 200_000))
    figures: dict[str, Any] = {}
    with _stack() as stack:
        figures.update(_lag(stack, txns, tps))
        figures.update(_burst(stack, changes))
    return figures
