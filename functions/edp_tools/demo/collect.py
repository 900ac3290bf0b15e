"""Everything the report shows, read back from the warehouse (or measured by the demo).

Nothing here is computed from what the demo *meant* to do: counts, lags and marts are queries
over ``raw``, ``staging``, ``mart`` and ``monitoring``; client-side figures (events sent per
second, request latency) come from the replay's own measurements and are labelled so.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edp.warehouse.port import Warehouse

CDC_TABLES = ("orders", "order_items", "inventory", "shipments")


def percentiles(values: list[float] | np.ndarray, qs: tuple[float, ...] = (50, 99)) -> list[float]:
    """The ``qs`` percentiles of ``values`` (NaN when empty).

    Example:
        >>> percentiles([1.0, 2.0, 3.0, 4.0], (50,))
        [2.5]
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(arr, qs)]


@dataclass
class Accounting:
    """The loss accounting of the replayed day (see :mod:`edp_tools.demo.replay`)."""

    sent: int
    accepted: int
    refused: int
    unanswered: int
    malformed: int
    accepted_distinct: int
    duplicates_accepted: int
    bad_topic_messages: int
    raw_rows: int
    raw_distinct: int
    missing_in_raw: int
    unexpected_in_raw: int
    loader_dead_letters: int

    @property
    def ingest_balances(self) -> bool:
        """sent = accepted + refused (and nothing unanswered)."""
        return self.sent == self.accepted + self.refused and self.unanswered == 0

    @property
    def raw_balances(self) -> bool:
        """The accepted event_ids are exactly the event_ids in raw (after dedup)."""
        return (
            self.accepted_distinct == self.raw_distinct
            and self.missing_in_raw == 0
            and self.unexpected_in_raw == 0
        )

    @property
    def balances(self) -> bool:
        return self.ingest_balances and self.raw_balances


@dataclass
class ReportData:
    """What :mod:`edp_tools.demo.render` draws."""

    first_day: dt.date
    last_day: dt.date
    history_rows: int
    live_rows: int
    throughput: dict[str, tuple[list[float], list[int]]] = field(default_factory=dict)
    freshness_ms: list[float] = field(default_factory=list)
    cdc_lag_ms: dict[str, list[float]] = field(default_factory=dict)
    cdc_changes: list[dict[str, Any]] = field(default_factory=list)
    dau: list[dict[str, Any]] = field(default_factory=list)
    funnel: list[dict[str, Any]] = field(default_factory=list)
    retention: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    etl_runs: list[dict[str, Any]] = field(default_factory=list)
    orders_daily: list[dict[str, Any]] = field(default_factory=list)

    @property
    def freshness_p(self) -> list[float]:
        return percentiles(self.freshness_ms)

    @property
    def cdc_lag_p(self) -> list[float]:
        return percentiles([v for vs in self.cdc_lag_ms.values() for v in vs])


def _live_filter() -> str:
    # event_timestamp bounds the partitions read (require_partition_filter on BigQuery)
    return "event_timestamp >= @lo AND received_at >= @replay_start"


def live_event_ids(wh: Warehouse, replay_start: dt.datetime, lo: dt.datetime) -> list[str]:
    """event_id of every row the replay put into raw.user_events (duplicates included)."""
    sql = f"SELECT event_id FROM raw.user_events WHERE {_live_filter()}"
    table = wh.query_arrow(sql, {"lo": lo, "replay_start": replay_start})
    return [str(v) for v in table.column("event_id").to_pylist()]


def live_distinct_count(wh: Warehouse, replay_start: dt.datetime, lo: dt.datetime) -> int:
    """COUNT(DISTINCT event_id) of the replayed rows in raw (the catch-up check)."""
    sql = f"SELECT COUNT(DISTINCT event_id) AS n FROM raw.user_events WHERE {_live_filter()}"
    table = wh.query_arrow(sql, {"lo": lo, "replay_start": replay_start})
    return int(table.column("n")[0].as_py() or 0)


def recent_freshness_ms(wh: Warehouse, since: dt.datetime, lo: dt.datetime) -> list[float]:
    """loaded_at - received_at (ms) of rows loaded since ``since`` (the live display)."""
    sql = (
        "SELECT TIMESTAMP_DIFF(loaded_at, received_at, MILLISECOND) AS ms "
        "FROM raw.user_events WHERE event_timestamp >= @lo AND loaded_at >= @since"
    )
    table = wh.query_arrow(sql, {"lo": lo, "since": since})
    return [float(v) for v in table.column("ms").to_pylist() if v is not None]


def cdc_lag_ms(wh: Warehouse, since: dt.datetime) -> dict[str, list[float]]:
    """Per CDC table: ingested_at - source_ts (ms) of streamed (not snapshot) changes whose
    source commit is after ``since``."""
    out: dict[str, list[float]] = {}
    for table in CDC_TABLES:
        sql = (
            "SELECT TIMESTAMP_DIFF(ingested_at, source_ts, MILLISECOND) AS ms "
            f"FROM raw.cdc_{table} WHERE source_ts >= @since AND NOT snapshot"
        )
        col = wh.query_arrow(sql, {"since": since}).column("ms").to_pylist()
        out[table] = [float(v) for v in col if v is not None]
    return out


def _rows(wh: Warehouse, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    return [dict(r) for r in wh.query_arrow(sql, params).to_pylist()]


def collect(
    wh: Warehouse,
    *,
    first_day: dt.date,
    last_day: dt.date,
    replay_start: dt.datetime,
    execution_id: str,
    demo_start: dt.datetime,
    t0: dt.datetime | None = None,
) -> ReportData:
    """Read the report's data back from the warehouse (``t0``: the replay's first send, the
    zero of the throughput chart; default ``replay_start``)."""
    lo = dt.datetime.combine(first_day, dt.time(), dt.UTC) - dt.timedelta(days=1)
    live = {"lo": lo, "replay_start": replay_start}
    days = {"a": first_day, "b": last_day}
    counts = _rows(
        wh,
        "SELECT COUNTIF(received_at >= @replay_start) AS live, "
        "COUNTIF(received_at < @replay_start) AS history "
        "FROM raw.user_events WHERE event_timestamp >= @lo",
        live,
    )[0]
    data = ReportData(
        first_day=first_day,
        last_day=last_day,
        history_rows=int(counts["history"] or 0),
        live_rows=int(counts["live"] or 0),
    )
    for label, column in (("received by ingest", "received_at"), ("loaded into raw", "loaded_at")):
        rows = _rows(
            wh,
            f"SELECT TIMESTAMP_DIFF({column}, @t0, SECOND) AS s, COUNT(*) AS n "
            f"FROM raw.user_events WHERE {_live_filter()} GROUP BY s ORDER BY s",
            {**live, "t0": t0 or replay_start},
        )
        data.throughput[label] = ([float(r["s"]) for r in rows], [int(r["n"]) for r in rows])
    data.freshness_ms = [
        float(r["ms"])
        for r in _rows(
            wh,
            "SELECT TIMESTAMP_DIFF(loaded_at, received_at, MILLISECOND) AS ms "
            f"FROM raw.user_events WHERE {_live_filter()}",
            live,
        )
    ]
    data.cdc_lag_ms = cdc_lag_ms(wh, demo_start)
    for table in CDC_TABLES:
        for r in _rows(
            wh,
            f"SELECT op, snapshot, COUNT(*) AS n FROM raw.cdc_{table} "
            "WHERE source_ts >= @since OR snapshot GROUP BY op, snapshot",
            {"since": demo_start - dt.timedelta(days=1)},
        ):
            data.cdc_changes.append({"table": table, **r})
    data.dau = _rows(
        wh,
        "SELECT report_date, dau, wau, mau, new_users, returning_users "
        "FROM mart.daily_active_users WHERE device_type = 'all' AND platform = 'all' "
        "AND report_date BETWEEN @a AND @b ORDER BY report_date",
        days,
    )
    data.funnel = _rows(
        wh,
        "SELECT basis, SUM(viewed) AS viewed, SUM(added_to_cart) AS added_to_cart, "
        "SUM(began_checkout) AS began_checkout, SUM(purchased) AS purchased "
        "FROM mart.conversion_funnel WHERE device_type = 'all' "
        "AND report_date BETWEEN @a AND @b GROUP BY basis ORDER BY basis",
        days,
    )
    data.retention = _rows(
        wh,
        "SELECT cohort_start, period_number, cohort_size, retained_users, retention_rate "
        "FROM mart.retention_cohorts WHERE cohort_grain = 'day' "
        "AND activity_date BETWEEN @a AND @b AND cohort_start >= @a "
        "ORDER BY cohort_start, period_number",
        days,
    )
    data.products = _rows(
        wh,
        "SELECT item_id, MAX(item_name) AS item_name, MAX(item_category) AS item_category, "
        "SUM(views) AS views, SUM(purchases) AS purchases, SUM(units_sold) AS units_sold, "
        "CAST(SUM(net_revenue) AS FLOAT64) AS net_revenue "
        "FROM mart.product_performance WHERE report_date BETWEEN @a AND @b "
        "GROUP BY item_id ORDER BY net_revenue DESC, item_id LIMIT 10",
        days,
    )
    data.etl_runs = _rows(
        wh,
        "SELECT task, status, duration_s, rows_written, bytes_processed, started_at "
        "FROM monitoring.pipeline_runs WHERE started_at >= @since AND execution_id = @eid "
        "ORDER BY started_at",
        {"since": demo_start, "eid": execution_id},
    )
    data.orders_daily = _rows(
        wh,
        "SELECT report_date, orders, CAST(net_revenue AS FLOAT64) AS net_revenue, "
        "pending_orders, paid_orders, shipped_orders, delivered_orders, cancelled_orders, "
        "refunded_orders, other_status_orders FROM mart.orders_daily "
        "WHERE report_date BETWEEN @a AND @c ORDER BY report_date",
        {"a": first_day, "c": last_day + dt.timedelta(days=1)},
    )
    return data


def accounting(
    wh: Warehouse,
    *,
    replay: Any,
    bad_topic_messages: int,
    replay_start: dt.datetime,
    lo: dt.datetime,
) -> Accounting:
    """The loss accounting: the replay's per-event replies against the rows in raw."""
    ids = live_event_ids(wh, replay_start, lo)
    landed = set(ids)
    accepted_ids: set[str] = replay.accepted_ids
    dead = _rows(
        wh,
        "SELECT COUNT(*) AS n FROM raw.user_events_errors WHERE failed_at >= @replay_start",
        {"replay_start": replay_start},
    )[0]["n"]
    return Accounting(
        sent=replay.sent,
        accepted=replay.accepted,
        refused=replay.refused,
        unanswered=replay.unanswered,
        malformed=replay.malformed,
        accepted_distinct=len(accepted_ids),
        duplicates_accepted=replay.duplicates_accepted,
        bad_topic_messages=bad_topic_messages,
        raw_rows=len(ids),
        raw_distinct=len(landed),
        missing_in_raw=len(accepted_ids - landed),
        unexpected_in_raw=len(landed - accepted_ids),
        loader_dead_letters=int(dead or 0),
    )
