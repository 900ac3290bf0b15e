"""Category-mix shift: population stability index of a categorical column in the recent window
against the same window 1..``training_weeks`` weeks earlier (same hour of the week), so the
evening's different event mix is not a shift.

PSI = sum over categories of (p - q) * ln(p / q), shares smoothed by half a row so a new or
vanished category scores finitely. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large.

Example:
    >>> round(psi({"a": 50, "b": 50}, {"a": 50, "b": 50}), 6)
    0.0
    >>> # 0.4 ln(0.9/0.5) + 0.4 ln(0.5/0.1) = 0.8789 (by hand; smoothing is negligible here)
    >>> round(psi({"a": 9000, "b": 1000}, {"a": 5000, "b": 5000}), 3)
    0.879
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from edp.contracts.catalog import CategoryMixCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.quality.sql import slot_counts

WEEK = timedelta(days=7)
SLOT = timedelta(minutes=30)
TRAINING_WEEKS = 4


def psi(current: Mapping[str, float], baseline: Mapping[str, float]) -> float:
    """Population stability index of two count maps."""
    keys = set(current) | set(baseline)
    n_cur = sum(current.values()) + 0.5 * len(keys)
    n_base = sum(baseline.values()) + 0.5 * len(keys)
    total = 0.0
    for k in keys:
        p = (current.get(k, 0.0) + 0.5) / n_cur
        q = (baseline.get(k, 0.0) + 0.5) / n_base
        total += (p - q) * math.log(p / q)
    return total


def evaluate(
    table: str,
    column: str,
    check: CategoryMixCheck,
    current: Mapping[str, float],
    baseline: Mapping[str, float],
    *,
    window: tuple[datetime, datetime] | None = None,
) -> CheckResult:
    rows = sum(current.values())
    base = {
        "check_name": f"{table}.category_mix.{column}",
        "check_type": "category_mix",
        "table_ref": table,
        "column_name": column,
        "threshold": check.max_psi,
        "window_start": window[0] if window else None,
        "window_end": window[1] if window else None,
    }
    if rows < check.min_rows or sum(baseline.values()) < check.min_rows:
        return CheckResult(status="insufficient_history", details={"rows": rows}, **base)  # type: ignore[arg-type]
    score = psi(current, baseline)
    n_base = sum(baseline.values())
    moved = sorted(
        (
            (k, current.get(k, 0.0) / rows - baseline.get(k, 0.0) / n_base)
            for k in set(current) | set(baseline)
        ),
        key=lambda kv: -abs(kv[1]),
    )[:3]
    bad = score > check.max_psi
    return CheckResult(
        status="fail" if bad else "pass",
        severity="warning" if bad else "info",
        metric_value=score,
        score=score,
        details={"rows": rows, "largest_share_changes": {k: round(d, 4) for k, d in moved}},
        **base,  # type: ignore[arg-type]
    )


def windows(now: datetime, minutes: int) -> list[tuple[datetime, datetime]]:
    """The recent window and its seasonal lags (oldest first)."""
    from edp.quality.model import floor_time

    hi = floor_time(now, SLOT)
    lo = hi - timedelta(minutes=minutes)
    return [(lo - k * WEEK, hi - k * WEEK) for k in range(TRAINING_WEEKS, -1, -1)]


def split(
    counts: Mapping[tuple[datetime, str | None], float],
    recent: tuple[datetime, datetime],
    flagged: Iterable[datetime] = (),
) -> tuple[dict[str, float], dict[str, float]]:
    """Counts per category in the recent window and in the (unflagged) seasonal lags."""
    skip = frozenset(flagged)
    current: dict[str, float] = {}
    baseline: dict[str, float] = {}
    for (slot, value), n in counts.items():
        key = "<null>" if value is None else str(value)
        if recent[0] <= slot < recent[1]:
            current[key] = current.get(key, 0.0) + n
        elif slot not in skip:
            baseline[key] = baseline.get(key, 0.0) + n
    return current, baseline


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    checks = spec.checks
    if checks is None or checks.category_mix is None or checks.time_column is None:
        return []
    ranges = windows(ctx.now, checks.window_minutes)
    out = []
    for column in checks.category_mix.columns:
        counts = slot_counts(ctx.warehouse, spec, checks.time_column, ranges, SLOT, by=column)
        current, baseline = split(counts, ranges[-1], ctx.flagged.get(spec.ref, ()))
        out.append(
            evaluate(spec.ref, column, checks.category_mix, current, baseline, window=ranges[-1])
        )
    return out
