"""SQL building blocks of the checks: time-window filters that prune partitions, slot counts.

Every statement is BigQuery dialect over logical table names from the catalogue (the adapters
check them), with values as ``@params``. A filter on a partitioned table always bounds the
partition column, so a check reads only the partitions of its window.

Example:
    >>> from datetime import UTC, datetime
    >>> from edp.contracts.catalog import load_catalog
    >>> spec = load_catalog().table("raw.bad_events")
    >>> sql, params = window_filter(spec, "received_at", datetime(2026, 12, 6, tzinfo=UTC),
    ...                             datetime(2026, 12, 6, 1, tzinfo=UTC))
    >>> sql
    'received_at >= @w_lo AND received_at < @w_hi'
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from edp.contracts.catalog import TableSpec
from edp.warehouse.port import Warehouse

#: Rows are looked for this far before a window in the partition column when a check filters
#: on another time column (late-arriving rows; e.g. ``received_at`` vs ``event_timestamp``).
PARTITION_SLACK = timedelta(days=2)


def _is_date(spec: TableSpec, column: str) -> bool:
    return spec.column(column).type == "DATE"


def _bound(spec: TableSpec, column: str, at: datetime) -> date | datetime:
    return at.date() if _is_date(spec, column) else at


def window_filter(
    spec: TableSpec, column: str, lo: datetime, hi: datetime, prefix: str = "w"
) -> tuple[str, dict[str, Any]]:
    """``column`` in ``[lo, hi)``, plus a partition bound when ``column`` is not the partition
    column; returns the SQL condition and its parameters."""
    params: dict[str, Any] = {
        f"{prefix}_lo": _bound(spec, column, lo),
        f"{prefix}_hi": _bound(spec, column, hi),
    }
    sql = f"{column} >= @{prefix}_lo AND {column} < @{prefix}_hi"
    part = spec.partitioning.field if spec.partitioning else None
    if part and part != column:
        params[f"{prefix}_plo"] = _bound(spec, part, lo - PARTITION_SLACK)
        sql += f" AND {part} >= @{prefix}_plo"
    return sql, params


def slot_counts(
    warehouse: Warehouse,
    spec: TableSpec,
    column: str,
    ranges: Sequence[tuple[datetime, datetime]],
    slot: timedelta,
    *,
    by: str | None = None,
) -> dict[tuple[datetime, str | None], float]:
    """Rows per (slot start, ``by`` value) of ``spec`` whose ``column`` lies in ``ranges``.

    One query; the ranges are OR-ed, so only their partitions are read.
    """
    origin = ranges[0][0]
    conditions, params = [], {}
    for i, (lo, hi) in enumerate(ranges):
        sql, p = window_filter(spec, column, lo, hi, prefix=f"r{i}")
        conditions.append(f"({sql})")
        params.update(p)
    if _is_date(spec, column):
        slot_expr = f"DATE_DIFF({column}, @origin, DAY)"
        params["origin"] = origin.date()
        step = timedelta(days=1)
    else:
        seconds = int(slot.total_seconds())
        slot_expr = f"DIV(TIMESTAMP_DIFF({column}, @origin, SECOND), {seconds})"
        params["origin"] = origin
        step = slot
    group = f", {by} AS v" if by else ""
    sql = (
        f"SELECT {slot_expr} AS slot{group}, COUNT(*) AS n FROM {spec.ref} "
        f"WHERE {' OR '.join(conditions)} GROUP BY slot{', v' if by else ''}"
    )
    out: dict[tuple[datetime, str | None], float] = {}
    for row in warehouse.query(sql, params).rows:
        key = (origin + int(row["slot"]) * step, row["v"] if by else None)
        out[key] = out.get(key, 0.0) + float(row["n"])
    return out
