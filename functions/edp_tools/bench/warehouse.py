"""``warehouse.*``: the DuckDB adapter's write paths and the dialect cache, on a file.

- ``warehouse.load_arrow.rows_per_s``: ``load_arrow`` of 1 M ``raw.user_events`` rows (every
  column of the table present) into a fresh DuckDB *file*, in calls of the bulk loader's own
  size (:data:`edp_tools.generator.sinks.LOAD_CHUNK_ROWS`, 500 k rows: the generator's day
  load); the target the brief set is ~0.8 M rows/s.
- ``warehouse.load_arrow.rows_per_s_200k``: the same rows in 200 k-row calls, to a second fresh
  file. Rows per call decide the rate: DuckDB writes each insert's full row groups
  (122,880 rows) straight to disk, compressed, one per thread, and merges what is left over
  single-threaded at commit (``PhysicalBatchInsert``: collections under
  ``LocalStorage::MERGE_THRESHOLD`` are merged, not flushed). A 200 k-row call has one full
  group and a 77 k-row remainder, so two threads cannot share it.
- ``warehouse.load_arrow.engine_rows_per_s``: the bulk-size calls appended straight in DuckDB
  (a plain connection with default settings, ``INSERT ... SELECT *`` of the registered Arrow
  table: no name checks, no casts, no writer lock) to a fresh file with the same table, in the
  same run; ``warehouse.load_arrow.engine_ratio`` = the adapter's load seconds / the engine's
  (1.0: the adapter costs nothing the engine does not).
- ``warehouse.insert_rows.rows_per_s``: ``insert_rows`` of 50 k Python dict rows with row ids
  (streaming-insert shape: datetimes, a JSON dict, an items list), 500 rows per call.
- ``warehouse.transpile_cached_us``: one cached BigQuery->DuckDB transpilation (a dict lookup).
- ``warehouse.cpu_seconds``: process CPU over the whole benchmark (tells a busy machine from a
  regression).
"""

from __future__ import annotations

import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edp_tools.bench import Bar, benchmark

ROWS = 1_000_000
SMALL_BATCH = 200_000
DICT_ROWS = 50_000
DICT_BATCH = 500
T0 = datetime(2026, 11, 24, tzinfo=UTC)


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _arrow_rows(n: int, offset: int) -> Any:
    import numpy as np
    import pyarrow as pa

    from edp.contracts.catalog import load_catalog
    from edp.warehouse.arrow_schema import arrow_schema

    schema = arrow_schema(load_catalog().table("raw.user_events"))
    rng = np.random.default_rng(offset)
    ids = np.arange(offset, offset + n)
    micros = (ids * 30_000).astype("int64") + int(T0.timestamp() * 1e6)
    ts = pa.array(micros, pa.timestamp("us", tz="UTC"))
    types = np.array(["page_view", "view_item", "add_to_cart", "begin_checkout", "purchase"])
    columns: dict[str, Any] = {
        "event_id": pa.array([f"{i:032x}" for i in ids]),
        "event_type": pa.array(types[rng.integers(0, len(types), n)]),
        "event_timestamp": ts,
        "client_timestamp": ts,
        "received_at": ts,
        "ingested_at": ts,
        "user_id": pa.array([f"u{i % 40_000}" for i in ids]),
        "session_id": pa.array([f"s{i // 20}" for i in ids]),
        "device_type": pa.array(np.where(rng.random(n) < 0.6, "mobile", "desktop")),
        "platform": pa.array(np.full(n, "web")),
        "schema_version": pa.array(np.full(n, "1.0")),
        "page_location": pa.array(np.full(n, "https://shop.example/p/123")),
        "value": pa.array(rng.random(n) * 100),
        "params": pa.array(np.full(n, '{"campaign":"x"}')),
    }
    arrays = [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in schema]
    return pa.Table.from_arrays(
        [a.cast(f.type) for a, f in zip(arrays, schema, strict=True)],
        schema=pa.schema([pa.field(f.name, f.type) for f in schema]),
    )


def _batches(rows_per_call: int) -> list[Any]:
    """ROWS rows as Arrow tables of ``rows_per_call`` rows (the last one may be shorter)."""
    return [_arrow_rows(min(rows_per_call, ROWS - lo), lo) for lo in range(0, ROWS, rows_per_call)]


def _fresh_warehouse(path: Path) -> Any:
    """The adapter on a new file holding an empty ``raw.user_events``."""
    from edp.contracts.catalog import load_catalog
    from edp.settings import Settings
    from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

    warehouse = DuckDBWarehouse(path, settings=Settings())
    warehouse.create_tables([load_catalog().table("raw.user_events")])
    return warehouse


def _load_s(warehouse: Any, batches: list[Any]) -> float:
    """Seconds for the adapter to ``load_arrow`` every batch, one call each."""
    started = time.perf_counter()
    for batch in batches:
        warehouse.load_arrow("raw.user_events", batch)
    return time.perf_counter() - started


def _engine_load_s(warehouse: Any, batches: list[Any], path: Path) -> float:
    """Seconds to append ``batches`` straight in DuckDB, to a new file with the same table."""
    import duckdb

    ddl_of = (
        "SELECT sql FROM duckdb_tables() WHERE schema_name = 'raw' AND table_name = 'user_events'"
    )
    (ddl,) = warehouse.query_arrow(ddl_of).column("sql").to_pylist()
    with duckdb.connect(str(path)) as conn:
        conn.execute("CREATE SCHEMA raw")
        conn.execute(ddl)
        started = time.perf_counter()
        for batch in batches:
            conn.register("batch", batch)
            conn.execute("INSERT INTO raw.user_events SELECT * FROM batch")
            conn.unregister("batch")
        seconds = time.perf_counter() - started
        (count,) = conn.execute("SELECT COUNT(*) FROM raw.user_events").fetchone() or (0,)
    if count != ROWS:
        raise RuntimeError(f"engine load: expected {ROWS} rows, found {count}")
    return seconds


@benchmark(
    "warehouse",
    bars=[
        Bar(
            "warehouse.load_arrow.rows_per_s",
            ">=",
            800_000,
            unit="rows/s",
            source="warehouse brief (DESIGN.md: ~0.8 M rows/s to a file)",
        )
    ],
    units={
        "warehouse.insert_rows.rows_per_s": "rows/s",
        "warehouse.load_arrow.engine_rows_per_s": "rows/s",
        "warehouse.load_arrow.rows_per_s_200k": "rows/s",
        "warehouse.transpile_cached_us": "us",
        "warehouse.cpu_seconds": "s",
    },
)
def bench_warehouse() -> dict[str, float]:
    """Load, insert and transpile on a fresh DuckDB file."""
    from edp.warehouse.dialect import to_duckdb
    from edp_tools.generator.sinks import LOAD_CHUNK_ROWS

    cpu_before = _cpu_seconds()
    batches = _batches(LOAD_CHUNK_ROWS)
    small_batches = _batches(SMALL_BATCH)
    rows = [
        {
            "event_id": f"d{i}",
            "event_type": "purchase",
            "event_timestamp": T0 + timedelta(seconds=i),
            "received_at": T0,
            "ingested_at": T0,
            "device_type": "mobile",
            "platform": "web",
            "schema_version": "1.0",
            "user_id": f"u{i % 100}",
            "value": 12.5,
            "params": {"coupon": "X", "n": i},
            "items": [{"item_id": "p1", "price": 12.5, "quantity": 1}],
        }
        for i in range(DICT_ROWS)
    ]
    with tempfile.TemporaryDirectory(prefix="edp-bench-warehouse-") as tmp:
        small = _fresh_warehouse(Path(tmp) / "small.duckdb")
        try:
            small_s = _load_s(small, small_batches)
            small_total = small.query("SELECT COUNT(*) AS n FROM raw.user_events").scalar()
        finally:
            small.close()
        warehouse = _fresh_warehouse(Path(tmp) / "warehouse.duckdb")
        try:
            load_s = _load_s(warehouse, batches)
            started = time.perf_counter()
            for lo in range(0, DICT_ROWS, DICT_BATCH):
                chunk = rows[lo : lo + DICT_BATCH]
                warehouse.insert_rows(
                    "raw.user_events", chunk, row_ids=[str(r["event_id"]) for r in chunk]
                )
            insert_s = time.perf_counter() - started
            total = warehouse.query("SELECT COUNT(*) AS n FROM raw.user_events").scalar()
            engine_s = _engine_load_s(warehouse, batches, Path(tmp) / "engine.duckdb")
        finally:
            warehouse.close()
    if small_total != ROWS:
        raise RuntimeError(f"200 k-row loads: expected {ROWS} rows, found {small_total}")
    if total != ROWS + DICT_ROWS:
        raise RuntimeError(f"expected {ROWS + DICT_ROWS} rows, found {total}")

    sql = "SELECT DATE_SUB(@day, INTERVAL 1 DAY) AS d FROM raw.user_events WHERE x = @x"
    to_duckdb(sql)
    started = time.perf_counter()
    for _ in range(10_000):
        to_duckdb(sql)
    transpile_us = (time.perf_counter() - started) / 10_000 * 1e6
    return {
        "warehouse.load_arrow.rows_per_s": round(ROWS / load_s),
        "warehouse.load_arrow.rows_per_s_200k": round(ROWS / small_s),
        "warehouse.load_arrow.engine_rows_per_s": round(ROWS / engine_s),
        "warehouse.load_arrow.engine_ratio": round(load_s / engine_s, 2),
        "warehouse.insert_rows.rows_per_s": round(DICT_ROWS / insert_s),
        "warehouse.transpile_cached_us": round(transpile_us, 2),
        "warehouse.cpu_seconds": round(_cpu_seconds() - cpu_before, 2),
    }
