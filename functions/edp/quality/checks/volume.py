"""Volume check: slot counts of the ranges the detector needs, then :mod:`edp.quality.volume`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from edp.contracts.catalog import TableSpec, VolumeCheck
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.quality.sql import slot_counts
from edp.quality.volume import (
    VolumeVerdict,
    needed_ranges,
    score_volume,
    scored_window,
    slot_of,
)


def evaluate(
    table: str,
    check: VolumeCheck,
    counts: Mapping[datetime, float],
    now: datetime,
    *,
    flagged: Iterable[datetime] = (),
    promotions: Iterable[str] = (),
    history_start: datetime | None = None,
) -> CheckResult:
    """The detector's verdict as a check result (critical when the change is -50 % or +100 %)."""
    v: VolumeVerdict = score_volume(
        counts, now, check, flagged=flagged, promotions=promotions, history_start=history_start
    )
    critical = v.status == "fail" and (v.relative_change <= -0.5 or v.relative_change >= 1.0)
    return CheckResult(
        check_name=f"{table}.volume",
        check_type="volume",
        table_ref=table,
        column_name=check.column,
        status=v.status,
        severity="critical" if critical else "warning" if v.status == "fail" else "info",
        metric_value=v.value,
        threshold=v.threshold,
        expected_value=v.expected,
        score=v.score,
        window_start=v.window[0] if v.window else None,
        window_end=v.window[1] if v.window else None,
        details={
            **v.details,
            "relative_change": round(v.relative_change, 4) if v.expected else None,
            "direction": v.direction,
            "training_points": v.training_points,
            "slots": [s.isoformat() for s in v.slots],
        },
    )


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    assert spec.checks is not None
    check = spec.checks.volume
    if check is None:
        return []
    if ctx.volume_method == "mean14":
        check = check.model_copy(update={"method": "mean14", "threshold": 2.0})
    ranges = needed_ranges(ctx.now, check)
    counts = {
        slot: n
        for (slot, _), n in slot_counts(
            ctx.warehouse, spec, check.column, ranges, slot_of(check)
        ).items()
    }
    lo, hi = scored_window(ctx.now, check)
    promos = [p.name for p in ctx.calendar.overlapping(spec.ref, lo, hi)]
    flagged = ctx.flagged.get(spec.ref, frozenset())
    return [evaluate(spec.ref, check, counts, ctx.now, flagged=flagged, promotions=promos)]
