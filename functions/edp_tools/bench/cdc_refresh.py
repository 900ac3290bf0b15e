"""``cdc.refresh.*``: BigQuery bytes one staging refresh reads after 1 and 30 days of history.

The cdc_flush run every minute refreshes ``staging.shipments`` from ``raw.cdc_shipments``. Its
cost must not grow with the length of the change history. Set-up, on a DuckDB file: 5,000 live
shipments, each day 40,000 updates spread over the day (ingested through the day, as the flush
writes them), for 1 and for 30 days; staging rebuilt; then one more minute of changes (60
updates) lands and the refresh a cdc_flush run would do (the MERGE script plus the two small
queries around it) is priced with the warehouse's BigQuery byte estimate
(:mod:`edp.warehouse.estimate`: referenced columns x partitions read).

- ``cdc.refresh.bytes_per_run_1d`` / ``_30d``: bytes of that refresh (bar: 30d / 1d <= 1.5).
- ``cdc.refresh.ratio_30d_1d``: the ratio.
- ``cdc.refresh.rebuild_bytes_30d``: the periodic full rebuild over 30 days, for scale (what
  every run cost before the incremental refresh).

The key population is fixed on purpose: the figure isolates history; a growing shop also grows
staging (the MERGE target), which is the current state, not history.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edp_tools.bench import Bar, benchmark

KEYS = 5_000
UPDATES_PER_DAY = 40_000
MINUTE_UPDATES = 60
T0 = datetime(2026, 1, 1, tzinfo=UTC)
STATUSES = ("label_created", "in_transit", "out_for_delivery", "delivered")


def _day_rows(
    seed: int, n: int, first_lsn: int, start: datetime, span: timedelta, *, create: bool = False
) -> Any:
    import numpy as np
    import pyarrow as pa

    from edp.contracts.catalog import load_catalog
    from edp.warehouse.arrow_schema import arrow_schema

    spec = load_catalog().table("raw.cdc_shipments")
    rng = np.random.default_rng(seed)
    lsn = np.arange(first_lsn, first_lsn + n, dtype="int64")
    keys = (
        np.arange(1, n + 1, dtype="int64")
        if create
        else rng.integers(1, KEYS + 1, n).astype("int64")
    )
    offsets = (np.arange(n) * (span.total_seconds() * 1e6 / n)).astype("int64")
    at = pa.array(offsets + int(start.timestamp() * 1e6), pa.timestamp("us", tz="UTC"))
    statuses = np.array(STATUSES)[rng.integers(0, len(STATUSES), n)]
    columns: dict[str, Any] = {
        "shipment_id": pa.array(keys),
        "order_id": pa.array(keys * 10),
        "carrier": pa.array(np.full(n, "CJ대한통운")),
        "tracking_number": pa.array([f"1Z{k:010d}" for k in keys]),
        "status": pa.array(statuses),
        "is_express": pa.array(rng.random(n) < 0.2),
        "updated_at": at,
        "op": pa.array(np.full(n, "c" if create else "u")),
        "lsn": pa.array(lsn),
        "tx_id": pa.array(lsn),
        "tx_position": pa.array(np.ones(n, dtype="int64")),
        "snapshot": pa.array(np.zeros(n, dtype=bool)),
        "source_ts": at,
        "change_id": pa.array(
            [f'{{"shipment_id":{k}}}:{x}' for k, x in zip(keys, lsn, strict=True)]
        ),
        "message_id": pa.array([str(x) for x in lsn]),
        "ingested_at": at,
    }
    schema = arrow_schema(spec)
    return pa.table(
        {f.name: columns.get(f.name, pa.nulls(n, f.type)) for f in schema}, schema=schema
    )


def _refresh_bytes(days: int, tmp: Path) -> tuple[int, int]:
    """(bytes of one incremental refresh, bytes of one full rebuild) after ``days`` of history."""
    from edp.cdc import staging
    from edp.contracts.catalog import load_catalog
    from edp.settings import Settings
    from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

    catalog = load_catalog()
    warehouse = DuckDBWarehouse(tmp / f"refresh-{days}d.duckdb", settings=Settings())
    try:
        warehouse.create_tables(
            [catalog.table("raw.cdc_shipments"), catalog.table("staging.shipments")]
        )
        # Day 0 opens with every key created, then updates through each day.
        lsn = 1
        warehouse.load_arrow(
            "raw.cdc_shipments", _day_rows(0, KEYS, lsn, T0, timedelta(minutes=1), create=True)
        )
        lsn += KEYS
        for day in range(days):
            start = T0 + timedelta(days=day)
            rows = _day_rows(1 + day, UPDATES_PER_DAY, lsn, start, timedelta(hours=23, minutes=58))
            warehouse.load_arrow("raw.cdc_shipments", rows)
            lsn += UPDATES_PER_DAY
        staging.rebuild(warehouse, "shipments")
        model = staging.model("shipments")
        rebuild_bytes = warehouse.dry_run(model.rebuild_sql())
        # The last minute of the last day: what one flush run wrote, then its refresh.
        minute = T0 + timedelta(days=days - 1, hours=23, minutes=59)
        warehouse.load_arrow(
            "raw.cdc_shipments",
            _day_rows(10_000 + days, MINUTE_UPDATES, lsn, minute, timedelta(minutes=1)),
        )
        newest_sql = "SELECT MAX(ingested_at) AS newest FROM staging.shipments"
        newest = warehouse.query(newest_sql).scalar()
        params = {"since": newest - staging.OVERLAP}
        count_sql = "SELECT COUNT(*) AS n FROM staging.shipments"
        run_bytes = (
            warehouse.dry_run(newest_sql)
            + warehouse.dry_run(model.merge_sql(), params)
            + warehouse.dry_run(count_sql)
        )
        # And the refresh really does what the rebuild would (the check finds nothing).
        staging.refresh_incremental(warehouse, "shipments")
        drift = staging.rebuild(warehouse, "shipments")
        if drift:
            raise RuntimeError(f"incremental refresh drifted from the rebuild by {drift} rows")
    finally:
        warehouse.close()
    return run_bytes, rebuild_bytes


@benchmark(
    "cdc.refresh",
    bars=[Bar("cdc.refresh.ratio_30d_1d", "<=", 1.5, source="CDC fidelity")],
    units={
        "cdc.refresh.bytes_per_run_1d": "B",
        "cdc.refresh.bytes_per_run_30d": "B",
        "cdc.refresh.rebuild_bytes_30d": "B",
    },
)
def bench_cdc_refresh() -> dict[str, float]:
    """Bytes a staging refresh reads with 1 and with 30 days of change history."""
    with tempfile.TemporaryDirectory(prefix="edp-bench-cdc-refresh-") as tmp:
        one, _ = _refresh_bytes(1, Path(tmp))
        thirty, rebuild_thirty = _refresh_bytes(30, Path(tmp))
    return {
        "cdc.refresh.bytes_per_run_1d": float(one),
        "cdc.refresh.bytes_per_run_30d": float(thirty),
        "cdc.refresh.ratio_30d_1d": thirty / one,
        "cdc.refresh.rebuild_bytes_30d": float(rebuild_thirty),
    }
