"""Refused share at ingest: refused events (``raw.bad_events``) per accepted event.

Example:
    >>> from edp.contracts.catalog import RefusedShareCheck
    >>> evaluate("raw.bad_events", RefusedShareCheck(), refused=50, accepted=1000).status
    'fail'
"""

from __future__ import annotations

from dataclasses import replace

from edp.contracts.catalog import RefusedShareCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.quality.sql import window_filter


def evaluate(table: str, check: RefusedShareCheck, refused: int, accepted: int) -> CheckResult:
    share = refused / accepted if accepted else (None if refused == 0 else float("inf"))
    bad = share is not None and share > check.max_share
    return CheckResult(
        check_name=f"{table}.refused_share",
        check_type="refused_share",
        table_ref=table,
        status="fail" if bad else "pass",
        severity="warning" if bad else "info",
        metric_value=share,
        threshold=check.max_share,
        details={"refused": refused, "accepted": accepted},
    )


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    checks = spec.checks
    if checks is None or checks.refused_share is None or checks.time_column is None:
        return []
    check = checks.refused_share
    lo, hi = ctx.window(spec)
    where, params = window_filter(spec, checks.time_column, lo, hi)
    refused = int(
        ctx.warehouse.query(f"SELECT COUNT(*) AS n FROM {spec.ref} WHERE {where}", params).scalar()
    )
    accepted_spec = ctx.catalog.table(check.accepted_table)
    where, params = window_filter(accepted_spec, check.accepted_column, lo, hi)
    accepted = int(
        ctx.warehouse.query(
            f"SELECT COUNT(*) AS n FROM {accepted_spec.ref} WHERE {where}", params
        ).scalar()
    )
    return [replace(evaluate(spec.ref, check, refused, accepted), window_start=lo, window_end=hi)]
