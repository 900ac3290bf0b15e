"""Freshness: minutes since the newest row was written, against the table's SLA.

A table with a load-time column is measured on it (``MAX(loaded_at)``, reading only the
partitions of the look-back); a table the ETL rebuilds is measured on its newest successful run
in ``monitoring.pipeline_runs``.

Example:
    >>> from datetime import UTC, datetime
    >>> from edp.contracts.catalog import FreshnessCheck
    >>> now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    >>> newest = datetime(2026, 12, 6, 11, tzinfo=UTC)
    >>> r = evaluate("raw.t", FreshnessCheck(sla_minutes=30), newest, now)
    >>> r.status, r.metric_value
    ('fail', 60.0)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from edp.contracts.catalog import FreshnessCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult, as_utc
from edp.quality.sql import window_filter


def evaluate(
    table: str, check: FreshnessCheck, newest: datetime | None, now: datetime
) -> CheckResult:
    """Minutes from ``newest`` to ``now``; no row in the look-back counts as the look-back."""
    if newest is None:
        minutes = check.lookback_hours * 60.0
    else:
        minutes = max((now - as_utc(newest)).total_seconds() / 60.0, 0.0)
    late = minutes > check.sla_minutes
    return CheckResult(
        check_name=f"{table}.freshness",
        check_type="freshness",
        table_ref=table,
        column_name=check.column,
        status="fail" if late else "pass",
        severity="critical" if late else "info",
        metric_value=round(minutes, 2),
        threshold=check.sla_minutes,
        details={"newest": newest.isoformat() if newest else None},
    )


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    assert spec.checks is not None
    check = spec.checks.freshness
    if check is None:
        return []
    since = ctx.now - timedelta(hours=check.lookback_hours)
    if check.column is None:
        newest = ctx.warehouse.query(
            "SELECT MAX(finished_at) AS newest FROM monitoring.pipeline_runs "
            "WHERE started_at >= @since AND task = @task AND status = 'success'",
            {"since": since, "task": spec.ref},
        ).scalar()
    else:
        part = spec.partitioning.field if spec.partitioning else None
        where: str = "TRUE"
        params: dict[str, object] = {}
        if part:
            where, params = window_filter(spec, part, since, ctx.now + timedelta(days=1))
        newest = ctx.warehouse.query(
            f"SELECT MAX({check.column}) AS newest FROM {spec.ref} WHERE {where}", params
        ).scalar()
    return [evaluate(spec.ref, check, newest, ctx.now)]
