"""CDC lag: seconds from the source commit to the raw write, over the recent window.

Fails when the average exceeds the SLA (10 s); snapshot rows (whose source time is the
snapshot's) are left out.

Example:
    >>> from edp.contracts.catalog import CdcLagCheck
    >>> evaluate("raw.cdc_orders", CdcLagCheck(), rows=10, avg_s=2.8, max_s=6.0).status
    'pass'
"""

from __future__ import annotations

from dataclasses import replace

from edp.contracts.catalog import CdcLagCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.quality.sql import window_filter


def evaluate(
    table: str, check: CdcLagCheck, rows: int, avg_s: float | None, max_s: float | None
) -> CheckResult:
    bad = rows > 0 and avg_s is not None and avg_s > check.sla_seconds
    return CheckResult(
        check_name=f"{table}.cdc_lag",
        check_type="cdc_lag",
        table_ref=table,
        column_name="source_ts",
        status="fail" if bad else "pass",
        severity="critical" if bad else "info",
        metric_value=avg_s,
        threshold=check.sla_seconds,
        details={"rows": rows, "max_seconds": max_s},
    )


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    checks = spec.checks
    if checks is None or checks.cdc_lag is None or checks.time_column is None:
        return []
    lo, hi = ctx.window(spec)
    where, params = window_filter(spec, checks.time_column, lo, hi)
    row = ctx.warehouse.query(
        "SELECT COUNT(*) AS n_rows, "
        "AVG(TIMESTAMP_DIFF(ingested_at, source_ts, MILLISECOND)) / 1000 AS avg_s, "
        "MAX(TIMESTAMP_DIFF(ingested_at, source_ts, MILLISECOND)) / 1000 AS max_s "
        f"FROM {spec.ref} WHERE {where} AND NOT snapshot",
        params,
    ).rows[0]
    avg_s = None if row["avg_s"] is None else float(row["avg_s"])
    max_s = None if row["max_s"] is None else float(row["max_s"])
    result = evaluate(spec.ref, checks.cdc_lag, int(row["n_rows"]), avg_s, max_s)
    return [replace(result, window_start=lo, window_end=hi)]
