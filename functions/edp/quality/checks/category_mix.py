"""Category-mix shift: population stability index of a categorical column in the recent window
against the same window 1..``training_weeks`` weeks earlier (same hour of the week), so the
evening's different event mix is not a shift.

PSI = sum over categories of (p - q) * ln(p / q), shares smoothed by half a row so a new or
vanished category scores finitely. Rule of thumb: < 0.1 stable, 0.1-0.25 moderate, > 0.25 large.

A shift fails when PSI exceeds ``max_psi`` **and** its sampling noise at this volume. Without
a shift, n * PSI is about chi-square with C - 1 degrees of freedom (C categories, n the
harmonic size of the two samples); events come in sessions (one session's events share its
platform and device), so the mix wanders ``phi`` times more than that. ``phi`` is the larger of
the design effect of the clusters (size-weighted mean rows per ``cluster_column`` value in the
window: sum(m^2) / sum(m)) and what the training weeks show (each week's PSI against the others,
over its chi-square expectation); the critical value is
``phi * chi2(C - 1, 0.9999) * (1/n_now + 1/n_baseline)``.

Example:
    >>> round(psi({"a": 50, "b": 50}, {"a": 50, "b": 50}), 6)
    0.0
    >>> # 0.4 ln(0.9/0.5) + 0.4 ln(0.5/0.1) = 0.8789 (by hand; smoothing is negligible here)
    >>> round(psi({"a": 9000, "b": 1000}, {"a": 5000, "b": 5000}), 3)
    0.879
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

from edp.contracts.catalog import CategoryMixCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.quality.sql import slot_counts, window_filter

WEEK = timedelta(days=7)
SLOT = timedelta(minutes=30)
TRAINING_WEEKS = 4
Z_9999 = 3.719  # standard normal quantile of 0.9999 (many columns x 48 runs a day)


def chi2_quantile(df: int, z: float = Z_9999) -> float:
    """Chi-square quantile by the Wilson-Hilferty approximation.

    Example:
        >>> round(chi2_quantile(2, 3.090), 1)  # tables: chi2(2, 0.999) = 13.82
        14.1
    """
    h = 2.0 / (9.0 * df)
    return df * (1.0 - h + z * math.sqrt(h)) ** 3


def dispersion(lags: Sequence[Mapping[str, float]]) -> float:
    """How many times more the mix varies week to week than multinomial sampling says (>= 1).

    Example:
        >>> dispersion([{"a": 50, "b": 50}] * 4)
        1.0
    """
    ratios = []
    for i, lag in enumerate(lags):
        others: dict[str, float] = {}
        for j, other in enumerate(lags):
            if j != i:
                for k, n in other.items():
                    others[k] = others.get(k, 0.0) + n
        n_lag, n_others = sum(lag.values()), sum(others.values())
        cats = len(set(lag) | set(others))
        if n_lag and n_others and cats > 1:
            expected = (cats - 1) * (1.0 / n_lag + 1.0 / n_others)
            ratios.append(psi(lag, others) / expected)
    return max(statistics.median(ratios), 1.0) if ratios else 1.0


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
    lags: Sequence[Mapping[str, float]] = (),
    design_effect: float = 1.0,
) -> CheckResult:
    """PSI of ``current`` against ``baseline``; ``lags`` (the training weeks one by one) give
    the noise level the shift must clear."""
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
    categories = max(len(set(current) | set(baseline)), 2)
    noise = (
        max(dispersion(lags), design_effect)
        * chi2_quantile(categories - 1)
        * (1.0 / rows + 1.0 / sum(baseline.values()))
    )
    n_base = sum(baseline.values())
    moved = sorted(
        (
            (k, current.get(k, 0.0) / rows - baseline.get(k, 0.0) / n_base)
            for k in set(current) | set(baseline)
        ),
        key=lambda kv: -abs(kv[1]),
    )[:3]
    bad = score > check.max_psi and score > noise
    return CheckResult(
        status="fail" if bad else "pass",
        severity="warning" if bad else "info",
        metric_value=score,
        score=score,
        details={
            "rows": rows,
            "critical_psi": round(max(noise, check.max_psi), 4),
            "largest_share_changes": {k: round(d, 4) for k, d in moved},
        },
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
) -> tuple[dict[str, float], dict[str, float], list[dict[str, float]]]:
    """Counts per category in the recent window, in the (unflagged) seasonal lags together,
    and in each lag week."""
    skip = frozenset(flagged)
    current: dict[str, float] = {}
    baseline: dict[str, float] = {}
    lags: dict[int, dict[str, float]] = {}
    for (slot, value), n in counts.items():
        key = "<null>" if value is None else str(value)
        if recent[0] <= slot < recent[1]:
            current[key] = current.get(key, 0.0) + n
        elif slot not in skip:
            baseline[key] = baseline.get(key, 0.0) + n
            week = lags.setdefault((recent[1] - slot - SLOT) // WEEK, {})
            week[key] = week.get(key, 0.0) + n
    return current, baseline, [lags[k] for k in sorted(lags)]


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    checks = spec.checks
    if checks is None or checks.category_mix is None or checks.time_column is None:
        return []
    ranges = windows(ctx.now, checks.window_minutes)
    deff = 1.0
    cluster = checks.category_mix.cluster_column
    if cluster:
        where, params = window_filter(spec, checks.time_column, *ranges[-1])
        deff = float(
            ctx.warehouse.query(
                "SELECT SUM(m * m) / SUM(m) AS deff FROM (SELECT COUNT(*) AS m "
                f"FROM {spec.ref} WHERE {where} AND {cluster} IS NOT NULL GROUP BY {cluster})",
                params,
            ).scalar()
            or 1.0
        )
    out = []
    for column in checks.category_mix.columns:
        counts = slot_counts(ctx.warehouse, spec, checks.time_column, ranges, SLOT, by=column)
        current, baseline, lags = split(counts, ranges[-1], ctx.flagged.get(spec.ref, ()))
        out.append(
            evaluate(
                spec.ref,
                column,
                checks.category_mix,
                current,
                baseline,
                window=ranges[-1],
                lags=lags,
                design_effect=deff,
            )
        )
    return out
