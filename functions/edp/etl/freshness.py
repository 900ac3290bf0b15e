"""Freshness probe: now minus the newest ``ingested_at`` of each raw table, as a gauge.

Served by the ``etl`` function (``POST /freshness``, called by Cloud Scheduler every few
minutes) and written as ``data_freshness_minutes{table}``, the figure the 30-minute freshness
alert watches. Why a probe that reads the warehouse rather than the writers reporting what they
wrote: a writer that stopped (the Beam job crashed, cdc_flush failing) reports nothing at all,
while the probe's value keeps growing - the failure the alert exists for. The etl service
account already reads ``raw``.

Cost: one ``MAX(ingested_at)`` per table. Partitioned tables are read only over the last
``lookback`` of their partition column (BigQuery prunes on the parameter), the unpartitioned
CDC change logs over their whole ``ingested_at`` column (8 bytes a row). When nothing arrived in
the lookback the reported value is the lookback itself: a lower bound, already far over the SLA.

Example:
    >>> from edp.contracts.catalog import load_catalog
    >>> [t.ref for t in probed_tables(load_catalog())][-1]
    'raw.user_events'
    >>> freshness_sql(load_catalog().table("raw.user_events"))
    'SELECT MAX(ingested_at) AS newest FROM raw.user_events WHERE event_timestamp >= @since'
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache
from typing import Any

from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.observability.catalogue import instrument
from edp.observability.metrics import get_meter
from edp.warehouse.port import Warehouse

COLUMN = "ingested_at"
DEFAULT_LOOKBACK = dt.timedelta(days=1)


def probed_tables(catalog: Catalog) -> tuple[TableSpec, ...]:
    """Raw tables whose every row carries a server ``ingested_at``."""
    out = []
    for table in catalog.in_dataset("raw"):
        field = next((f for f in table.fields if f.name == COLUMN), None)
        if field is not None and field.mode == "REQUIRED" and field.type == "TIMESTAMP":
            out.append(table)
    return tuple(out)


def freshness_sql(table: TableSpec) -> str:
    """The newest ``ingested_at`` of ``table`` (pruned to ``@since`` when partitioned)."""
    sql = f"SELECT MAX({COLUMN}) AS newest FROM {table.ref}"
    if table.partitioning is not None:
        sql += f" WHERE {table.partitioning.field} >= @since"
    return sql


def minutes_behind(
    newest: dt.datetime | None, now: dt.datetime, lookback: dt.timedelta = DEFAULT_LOOKBACK
) -> float:
    """Minutes from ``newest`` to ``now``; the lookback when nothing was found.

    Example:
        >>> now = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)
        >>> minutes_behind(dt.datetime(2026, 12, 6, 11, 45, 30, tzinfo=dt.UTC), now)
        14.5
        >>> minutes_behind(None, now)
        1440.0
        >>> minutes_behind(dt.datetime(2026, 12, 6, 11, 45, 30), now)  # naive = UTC
        14.5
    """
    if newest is None:
        return lookback.total_seconds() / 60
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    return max(0.0, (now - newest).total_seconds() / 60)


@dataclass(frozen=True)
class Freshness:
    """One table's measured freshness."""

    table: str
    newest: dt.datetime | None
    minutes: float

    def to_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "newest_ingested_at": self.newest.isoformat() if self.newest else None,
            "minutes": round(self.minutes, 3),
        }


@cache
def _gauge() -> Any:
    return instrument(get_meter("edp.etl.freshness"), "data_freshness_minutes")


def probe(
    warehouse: Warehouse,
    now: dt.datetime,
    catalog: Catalog | None = None,
    lookback: dt.timedelta = DEFAULT_LOOKBACK,
) -> list[Freshness]:
    """Measure every probed table and set ``data_freshness_minutes{table}``."""
    out = []
    for table in probed_tables(catalog or load_catalog()):
        params = {"since": now - lookback} if table.partitioning is not None else None
        newest = warehouse.query(freshness_sql(table), params).scalar()
        fresh = Freshness(table.ref, newest, minutes_behind(newest, now, lookback))
        _gauge().set(fresh.minutes, {"table": table.ref})
        out.append(fresh)
    return out
