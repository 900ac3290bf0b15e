"""Table statistics for offline byte estimates, and constant folding of partition filters.

A :class:`TableStatistics` holds, per partition, the row count and the BigQuery logical bytes
of every top-level column (BigQuery's data-size rules: INT64/FLOAT64/TIMESTAMP/DATE 8 bytes,
STRING 2 + UTF-8 length, NULL 0, ...; see :func:`edp.warehouse.arrow_schema.bigquery_size_sql`).
Locally they are measured on the DuckDB warehouse (``edp_tools.sqlreview.stats``); the
reviewer's estimator (:func:`edp.warehouse.estimate.estimate_from_statistics`) then needs no
warehouse at all, which is what makes a review take milliseconds.

Partition filters are folded to instants here: literals, ``DATE``/``TIMESTAMP`` casts and
constructors (with a time zone), ``CURRENT_DATE()``/``CURRENT_TIMESTAMP()``, ``@params`` and
``DATE_ADD/DATE_SUB/TIMESTAMP_ADD/TIMESTAMP_SUB`` by DAY/HOUR/WEEK. Anything else is unknown, and
an unknown bound prunes nothing (the estimate stays an upper bound).

Example:
    >>> import datetime as dt
    >>> from sqlglot import parse_one
    >>> node = parse_one("DATE_SUB(DATE '2026-12-06', INTERVAL 2 DAY)", read="bigquery")
    >>> fold(node, {}, dt.datetime(2026, 12, 6, tzinfo=dt.UTC))
    datetime.datetime(2026, 12, 4, 0, 0, tzinfo=datetime.timezone.utc)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict
from sqlglot import exp

UTC = dt.UTC
_UNITS = {"DAY": dt.timedelta(days=1), "HOUR": dt.timedelta(hours=1), "WEEK": dt.timedelta(7)}


class PartitionStatistics(BaseModel):
    """One partition (``start`` None for an unpartitioned table)."""

    model_config = ConfigDict(frozen=True)

    start: dt.datetime | None
    rows: int
    column_bytes: dict[str, int]


class TableStatistics(BaseModel):
    """Row counts and per-column logical bytes of one table, per partition."""

    model_config = ConfigDict(frozen=True)

    ref: str
    partitions: tuple[PartitionStatistics, ...]

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions)

    @property
    def logical_bytes(self) -> int:
        return sum(sum(p.column_bytes.values()) for p in self.partitions)


class Statistics(BaseModel):
    """Statistics of many tables, by ``dataset.table``."""

    model_config = ConfigDict(frozen=True)

    tables: dict[str, TableStatistics]

    @classmethod
    def of(cls, tables: Iterable[TableStatistics]) -> Statistics:
        return cls(tables={t.ref: t for t in tables})

    def row_counts(self) -> dict[str, int]:
        return {ref: t.rows for ref, t in self.tables.items()}


def _as_instant(value: Any, zone: dt.tzinfo = UTC) -> dt.datetime | None:
    """A date/datetime/ISO text as an aware UTC datetime (a date is its midnight in ``zone``)."""
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=zone)
        return aware.astimezone(UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=zone).astimezone(UTC)
    if isinstance(value, str):
        text = value.strip().replace(" UTC", "+00:00").replace("T", " ")
        try:
            return _as_instant(dt.datetime.fromisoformat(text), zone)
        except ValueError:
            try:
                return _as_instant(dt.date.fromisoformat(text), zone)
            except ValueError:
                return None
    return None


def _zone(node: exp.Expression | None, params: Mapping[str, Any]) -> dt.tzinfo | None:
    if node is None:
        return UTC
    raw = params.get(node.name) if isinstance(node, exp.Parameter | exp.Placeholder) else None
    name = raw if raw is not None else (node.this if isinstance(node, exp.Literal) else None)
    if not isinstance(name, str):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def fold(  # noqa: PLR0911 (one branch per constant shape)
    node: exp.Expression, params: Mapping[str, Any], now: dt.datetime
) -> dt.datetime | None:
    """The instant a constant date/time expression stands for (None: not a known constant)."""
    if isinstance(node, exp.Paren):
        return fold(node.this, params, now)
    if isinstance(node, exp.Literal) and node.is_string:
        return _as_instant(node.this)
    if isinstance(node, exp.Parameter | exp.Placeholder):
        return _as_instant(params.get(node.name)) if node.name in params else None
    if isinstance(node, exp.CurrentDate):
        return _as_instant(now.astimezone(UTC).date())
    if isinstance(node, exp.CurrentTimestamp):
        return now.astimezone(UTC)
    if isinstance(node, exp.Cast):
        return fold(node.this, params, now)
    if isinstance(node, exp.Date | exp.TsOrDsToDate | exp.Timestamp | exp.TimeStrToTime):
        zone = _zone(node.args.get("zone"), params)
        inner = fold(node.this, params, now)
        if inner is None or zone is None:
            return None
        if isinstance(node, exp.Timestamp) and node.args.get("zone") is not None:
            return _as_instant(inner.date(), zone)
        if isinstance(node, exp.Date | exp.TsOrDsToDate):
            return _as_instant(inner.astimezone(zone).date())
        return inner
    if isinstance(node, exp.DateAdd | exp.DateSub | exp.TimestampAdd | exp.TimestampSub):
        base = fold(node.this, params, now)
        amount = node.expression
        unit = node.args.get("unit")
        step = _UNITS.get(unit.name.upper()) if unit is not None else None
        if base is None or step is None or not isinstance(amount, exp.Literal):
            return None
        sign = -1 if isinstance(node, exp.DateSub | exp.TimestampSub) else 1
        return base + sign * int(amount.this) * step
    return None
