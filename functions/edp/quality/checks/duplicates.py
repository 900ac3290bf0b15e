"""Duplicate rate by primary key over the recent window: (rows - distinct keys) / rows.

Fails above ``max_rate`` (1 % by default).

Example:
    >>> from edp.contracts.catalog import DuplicatesCheck
    >>> r = evaluate("raw.t", ("id",), DuplicatesCheck(), rows=1000, distinct=950)
    >>> r.status, r.metric_value
    ('fail', 0.05)
"""

from __future__ import annotations

from dataclasses import replace

from edp.contracts.catalog import DuplicatesCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.quality.sql import window_filter


def evaluate(
    table: str, key: tuple[str, ...], check: DuplicatesCheck, rows: int, distinct: int
) -> CheckResult:
    rate = (rows - distinct) / rows if rows else None
    bad = rate is not None and rate > check.max_rate
    return CheckResult(
        check_name=f"{table}.duplicate_rate",
        check_type="duplicate_rate",
        table_ref=table,
        column_name=",".join(key),
        status="fail" if bad else "pass",
        severity="warning" if bad else "info",
        metric_value=rate,
        threshold=check.max_rate,
        details={"rows": rows, "distinct_keys": distinct},
    )


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    checks = spec.checks
    if checks is None or checks.duplicates is None or checks.time_column is None:
        return []
    lo, hi = ctx.window(spec)
    where, params = window_filter(spec, checks.time_column, lo, hi)
    key = ", ".join(spec.primary_key)
    row = ctx.warehouse.query(
        "SELECT COALESCE(SUM(copies), 0) AS n_rows, COUNT(*) AS n_keys FROM ("
        f"SELECT COUNT(*) AS copies FROM {spec.ref} WHERE {where} GROUP BY {key})",
        params,
    ).rows[0]
    result = evaluate(
        spec.ref, spec.primary_key, checks.duplicates, int(row["n_rows"]), int(row["n_keys"])
    )
    return [replace(result, window_start=lo, window_end=hi)]
