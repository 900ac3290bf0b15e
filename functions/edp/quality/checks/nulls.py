"""Null rate of key columns over the recent window (fails above ``max_rate``, 5 % by default).

Example:
    >>> from edp.contracts.catalog import NullsCheck
    >>> check = NullsCheck(columns=("a", "b"))
    >>> [r.status for r in evaluate("raw.t", check, 1000, {"a": 0, "b": 80})]
    ['pass', 'fail']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from edp.contracts.catalog import NullsCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.quality.sql import window_filter


def evaluate(
    table: str, check: NullsCheck, rows: int, nulls: Mapping[str, int]
) -> list[CheckResult]:
    """One result per column; an empty window is ``pass`` with no rate (volume covers it)."""
    out = []
    for column in check.columns:
        rate = nulls.get(column, 0) / rows if rows else None
        bad = rate is not None and rate > check.max_rate
        out.append(
            CheckResult(
                check_name=f"{table}.null_rate.{column}",
                check_type="null_rate",
                table_ref=table,
                column_name=column,
                status="fail" if bad else "pass",
                severity="warning" if bad else "info",
                metric_value=rate,
                threshold=check.max_rate,
                details={"rows": rows, "nulls": nulls.get(column, 0)},
            )
        )
    return out


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    checks = spec.checks
    if checks is None or checks.nulls is None or checks.time_column is None:
        return []
    lo, hi = ctx.window(spec)
    where, params = window_filter(spec, checks.time_column, lo, hi)
    counts = ", ".join(f"COUNTIF({c} IS NULL) AS n_{c}" for c in checks.nulls.columns)
    row = ctx.warehouse.query(
        f"SELECT COUNT(*) AS n_rows, {counts} FROM {spec.ref} WHERE {where}", params
    ).rows[0]
    nulls = {c: int(row[f"n_{c}"] or 0) for c in checks.nulls.columns}
    results = evaluate(spec.ref, checks.nulls, int(row["n_rows"]), nulls)
    return [replace(r, window_start=lo, window_end=hi) for r in results]
