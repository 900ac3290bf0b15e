"""Evidence for an incident report: the failing checks, the run's other checks, related tables
(purchase events against CDC orders, ingest refusals), recent failed pipeline runs, promotions.

Each extra query is small (one hour of one partition, or a day of ``monitoring.pipeline_runs``)
and a failing one only leaves its part of the evidence out.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from edp.contracts.catalog import Catalog
from edp.errors import EdpError
from edp.quality.calendar import PromotionCalendar
from edp.quality.model import CheckResult
from edp.quality.report import CheckEvidence, Evidence
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)


def check_evidence(r: CheckResult) -> CheckEvidence:
    window = None
    if r.window_start and r.window_end:
        window = f"{r.window_start.isoformat()} .. {r.window_end.isoformat()}"
    return CheckEvidence(
        check_name=r.check_name,
        check_type=r.check_type,
        table=r.table_ref,
        column=r.column_name,
        status=r.status,
        severity=r.severity,
        value=r.metric_value,
        expected=r.expected_value,
        threshold=r.threshold,
        score=r.score,
        window=window,
        details={k: v for k, v in r.details.items() if k != "slots"},
    )


def gather(  # noqa: PLR0917 - the evidence has this many sources
    warehouse: Warehouse | None,
    catalog: Catalog,
    calendar: PromotionCalendar,
    group: str,
    failing: Sequence[CheckResult],
    all_results: Sequence[CheckResult],
    now: datetime,
) -> Evidence:
    """The evidence of one incident (``warehouse`` None: the run's results only)."""
    others: dict[str, int] = {}
    for r in all_results:
        if r not in failing:
            others[r.status] = others.get(r.status, 0) + 1
    series = {
        r.table_ref: [float(r.metric_value or 0.0), *r.details.get("seasonal_samples", [])]
        for r in failing
        if r.check_type == "volume"
    }
    promos = sorted({p.name for r in failing for p in calendar.active(r.table_ref, now)})
    ev = Evidence(
        group=group,
        run_time=now.isoformat(),
        failing=[check_evidence(r) for r in failing],
        other_checks=others,
        volume_series=series,
        promotions=promos,
    )
    if warehouse is not None:
        _related(warehouse, ev, now)
    return ev


def _related(warehouse: Warehouse, ev: Evidence, now: datetime) -> None:
    hour = {"lo": now - timedelta(hours=1), "hi": now, "plo": now - timedelta(days=2)}
    queries = {
        "purchase_events": "SELECT COUNT(*) AS n FROM raw.user_events WHERE event_timestamp >= "
        "@lo AND event_timestamp < @hi AND event_type = 'purchase'",
        "cdc_orders_created": "SELECT COUNT(*) AS n FROM raw.cdc_orders WHERE source_ts >= @lo "
        "AND source_ts < @hi AND op = 'c'",
        "refused_events": "SELECT COUNT(*) AS n FROM raw.bad_events WHERE received_at >= @lo "
        "AND received_at < @hi",
    }
    for name, sql in queries.items():
        try:
            ev.related[name] = float(warehouse.query(sql, hour).scalar() or 0)
        except EdpError as exc:
            log.info("evidence %s unavailable: %s", name, exc)
    try:
        ev.recent_runs = warehouse.query(
            "SELECT pipeline, task, status, error, started_at FROM monitoring.pipeline_runs "
            "WHERE started_at >= @since AND status = 'failed' ORDER BY started_at DESC LIMIT 5",
            {"since": now - timedelta(days=1)},
        ).rows
        for run in ev.recent_runs:
            run["started_at"] = str(run["started_at"])
    except EdpError as exc:
        log.info("evidence recent_runs unavailable: %s", exc)
