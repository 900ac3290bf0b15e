"""Volume anomaly: the row count of the latest bucket against a seasonal, robust baseline.

Counts are kept per *slot* (30 minutes for hourly tables, a day for daily ones); the scored
window is the last ``window`` of complete slots before ``now - delay`` (the last hour, or the
last day), so a run every 30 minutes scores a fresh hour each time.

``seasonal`` (default), built against the known failure modes of common detectors:

1. **Seasonal baseline**: the same window 1..``training_weeks`` weeks earlier (same hour of the
   week; same day of the week for daily tables). Its median is the expectation.
2. **The scored window is never in its own baseline** (with it inside, |z| can never exceed
   (n-1)/sqrt(n): 2.27 for n = 7, so real drops are missed).
3. **Flagged slots are left out of training**: a past incident does not widen the band, so a
   repeat is still flagged.
4. **Robust spread**: log-ratio residuals of the previous day's windows against their own
   seasonal medians, scaled by MAD (1.4826 x median absolute deviation), plus the Poisson
   floor 1/expected, so quiet hours are not over-sensitive. Their median is the level shift
   of this week against the training weeks (growth, a busy week), removed before scoring.
5. **Direction** (spike, drop, both) and a **minimum relative change**.
6. **Insufficient history** instead of pass/fail when fewer than ``min_training_points``
   seasonal samples exist.

``mean14``: z = (value - mean) / stddev over the same window on the last 14 days including the
scored one, |z| > threshold (2.0) fails: the common moving-average rule, kept as a configuration
so both can be run on the same data.

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from edp.contracts.catalog import VolumeCheck
    >>> now = datetime(2026, 12, 7, 12, tzinfo=UTC)
    >>> slots = {now - timedelta(minutes=30 * i): 100.0 + (i % 5) for i in range(1, 2100)}
    >>> slots[now - timedelta(minutes=30)] = slots[now - timedelta(minutes=60)] = 10.0
    >>> v = score_volume(slots, now, VolumeCheck(column="ts"))
    >>> v.status, v.direction, round(v.relative_change, 2)
    ('fail', 'drop', -0.9)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edp.contracts.catalog import VolumeCheck
from edp.quality.model import Status, floor_time

WEEK = timedelta(days=7)
DAY = timedelta(days=1)
MAD_SCALE = 1.4826  # MAD of a normal sample times this estimates its standard deviation
MEAN14_DAYS = 14


def slot_of(check: VolumeCheck) -> timedelta:
    """Counting slot: 30 minutes for hourly buckets, a day for daily ones."""
    return timedelta(minutes=30) if check.bucket == "hour" else DAY


def window_of(check: VolumeCheck) -> timedelta:
    """Length of the scored window: one bucket."""
    return timedelta(hours=1) if check.bucket == "hour" else DAY


def scored_window(now: datetime, check: VolumeCheck) -> tuple[datetime, datetime]:
    """``[start, end)`` of the window a run at ``now`` scores (complete slots only)."""
    end = floor_time(now - timedelta(minutes=check.delay_minutes), slot_of(check))
    return end - window_of(check), end


def _noise_span(check: VolumeCheck) -> timedelta:
    # windows of the day before (hourly) or the two weeks before (daily) give the spread
    return DAY if check.bucket == "hour" else timedelta(days=14)


def needed_ranges(now: datetime, check: VolumeCheck) -> list[tuple[datetime, datetime]]:
    """The time ranges whose slot counts the detector needs (merged, sorted).

    Only these are read, so a run touches a few days' partitions, not the whole history.

    Example:
        >>> from datetime import UTC, datetime
        >>> rs = needed_ranges(datetime(2026, 12, 7, 12, tzinfo=UTC),
        ...                    VolumeCheck(column="ts", training_weeks=2))
        >>> [(a.isoformat(), b.isoformat()) for a, b in rs][0]
        ('2026-11-22T11:00:00+00:00', '2026-11-23T12:00:00+00:00')
        >>> len(rs)
        3
    """
    start, end = scored_window(now, check)
    if check.method == "mean14":
        ranges = [(start - d * DAY, end - d * DAY) for d in range(MEAN14_DAYS)]
    else:
        span = _noise_span(check)
        ranges = [
            (start - k * WEEK - span, end - k * WEEK) for k in range(check.training_weeks + 1)
        ]
    ranges.sort()
    merged: list[tuple[datetime, datetime]] = []
    for lo, hi in ranges:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


@dataclass(frozen=True)
class VolumeVerdict:
    """The detector's answer for one window."""

    status: Status
    value: float
    expected: float | None = None
    score: float | None = None
    relative_change: float = 0.0
    direction: str = "none"
    threshold: float = 0.0
    training_points: int = 0
    window: tuple[datetime, datetime] | None = None
    slots: tuple[datetime, ...] = ()
    details: dict[str, object] = field(default_factory=dict)


def _window_sum(
    counts: Mapping[datetime, float], start: datetime, slot: timedelta, n: int
) -> float:
    return float(sum(counts.get(start + i * slot, 0.0) for i in range(n)))


def _clean(start: datetime, slot: timedelta, n: int, flagged: frozenset[datetime]) -> bool:
    return not any(start + i * slot in flagged for i in range(n))


def _seasonal_samples(
    counts: Mapping[datetime, float],
    start: datetime,
    check: VolumeCheck,
    flagged: frozenset[datetime],
    first: datetime,
) -> list[float]:
    slot, n = slot_of(check), int(window_of(check) / slot_of(check))
    out = []
    for k in range(1, check.training_weeks + 1):
        lag = start - k * WEEK
        if lag >= first and _clean(lag, slot, n, flagged):
            out.append(_window_sum(counts, lag, slot, n))
    return out


def _sigma(residuals: list[tuple[float, float]], level: float, expected: float) -> float:
    """Standard deviation of the log ratio at ``expected``: a multiplicative part (day-level
    noise, same at every volume) plus an over-dispersed counting part ``phi / expected``
    (events come in sessions, so quiet hours vary far more than Poisson says).

    Both are robust fits over the residuals: the multiplicative part from the MAD of the
    residuals of the busiest half of the windows, ``phi`` from the median of
    ``r**2 * expected / 0.455`` (0.455 is the median of a chi-square with one degree of freedom).
    """
    if not residuals:
        return math.sqrt(1.0 / (expected + 1.0))
    centred = [(r - level, e) for r, e in residuals]
    busy = sorted(centred, key=lambda re: -re[1])[: max(len(centred) // 2, 1)]
    mult = MAD_SCALE * statistics.median(abs(r) for r, _ in busy)
    phi = max(statistics.median(r * r * (e + 1.0) for r, e in centred) / 0.455, 1.0)
    return max(math.sqrt(mult**2 + phi / (expected + 1.0)), 0.01)


def _direction_ok(direction: str, rel: float) -> bool:
    return direction == "both" or (direction == "spike") == (rel > 0)


def score_volume(
    counts: Mapping[datetime, float],
    now: datetime,
    check: VolumeCheck,
    *,
    flagged: Iterable[datetime] = (),
    promotions: Iterable[str] = (),
    history_start: datetime | None = None,
) -> VolumeVerdict:
    """Score the window a run at ``now`` looks at.

    Args:
        counts: rows per slot start (a slot absent from the mapping counted 0 rows).
        now: run time (UTC).
        check: the table's volume declaration.
        flagged: slot starts of earlier anomalous windows, left out of training.
        promotions: names of declared promotions overlapping the window: a spike then is
            ``expected``, not ``fail``.
        history_start: first slot with data (default: the earliest slot in ``counts``);
            windows before it are no history, not zero rows.
    """
    if check.method == "mean14":
        return _score_mean14(counts, now, check)
    first = history_start if history_start is not None else min(counts, default=now)
    flagged_set = frozenset(flagged)
    slot, n = slot_of(check), int(window_of(check) / slot_of(check))
    start, end = scored_window(now, check)
    window_slots = tuple(start + i * slot for i in range(n))
    value = _window_sum(counts, start, slot, n)
    samples = _seasonal_samples(counts, start, check, flagged_set, first)
    base = {
        "value": value,
        "threshold": check.threshold,
        "training_points": len(samples),
        "window": (start, end),
        "slots": window_slots,
    }
    if len(samples) < check.min_training_points:
        return VolumeVerdict(status="insufficient_history", **base)  # type: ignore[arg-type]
    median = statistics.median(samples)
    # residuals (log ratio, with the expectation they were scored against): the previous
    # windows of this week against their own seasonal medians, and each training sample
    # against the median of the others (leave-one-out)
    residuals: list[tuple[float, float]] = []
    steps = int(_noise_span(check) / slot)
    for j in range(n, steps + 1):
        t = start - j * slot
        if not _clean(t, slot, n, flagged_set):
            continue
        seasonal = _seasonal_samples(counts, t, check, flagged_set, first)
        if len(seasonal) >= check.min_training_points:
            own = _window_sum(counts, t, slot, n)
            expect = statistics.median(seasonal)
            residuals.append((math.log1p(own) - math.log1p(expect), expect))
    level = statistics.median(r for r, _ in residuals) if len(residuals) >= 6 else 0.0
    for i, sample in enumerate(samples):
        others = samples[:i] + samples[i + 1 :]
        if others:
            expect = statistics.median(others)
            residuals.append((math.log1p(sample) - math.log1p(expect) + level, expect))
    expected = math.expm1(math.log1p(median) + level)
    sigma = _sigma(residuals, level, expected)
    z = (math.log1p(value) - math.log1p(expected)) / sigma
    rel = value / expected - 1.0 if expected > 0 else (math.inf if value > 0 else 0.0)
    direction = "spike" if rel > 0 else "drop" if rel < 0 else "none"
    anomalous = (
        abs(z) > check.threshold
        and abs(rel) >= check.min_relative_change
        and _direction_ok(check.direction, rel)
    )
    details = {
        "method": "seasonal",
        "seasonal_samples": samples,
        "seasonal_median": median,
        "level_shift": round(level, 4),
        "sigma_log": round(sigma, 4),
        "noise_residuals": len(residuals),
    }
    status: Status = "pass"
    promos = sorted(set(promotions))
    if anomalous:
        status = "expected" if promos and direction == "spike" else "fail"
        if promos:
            details["promotions"] = promos
    return VolumeVerdict(
        status=status,
        value=value,
        expected=expected,
        score=z,
        relative_change=rel,
        direction=direction,
        threshold=check.threshold,
        training_points=len(samples),
        window=(start, end),
        slots=window_slots,
        details=details,
    )


def _score_mean14(
    counts: Mapping[datetime, float], now: datetime, check: VolumeCheck
) -> VolumeVerdict:
    slot, n = slot_of(check), int(window_of(check) / slot_of(check))
    start, end = scored_window(now, check)
    value = _window_sum(counts, start, slot, n)
    # the same window on each of the last 14 days, the scored one included
    sample = [_window_sum(counts, start - d * DAY, slot, n) for d in range(MEAN14_DAYS)]
    window_slots = tuple(start + i * slot for i in range(n))
    mean = statistics.fmean(sample)
    sd = statistics.stdev(sample)
    z = 0.0 if sd == 0 else (value - mean) / sd
    rel = value / mean - 1.0 if mean > 0 else 0.0
    anomalous = abs(z) > check.threshold and _direction_ok(check.direction, rel)
    return VolumeVerdict(
        status="fail" if anomalous else "pass",
        value=value,
        expected=mean,
        score=z,
        relative_change=rel,
        direction="spike" if rel > 0 else "drop" if rel < 0 else "none",
        threshold=check.threshold,
        training_points=len(sample),
        window=(start, end),
        slots=window_slots,
        details={"method": "mean14", "stddev": sd},
    )
