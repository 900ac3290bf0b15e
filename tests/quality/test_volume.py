"""The volume detector against the failure modes of common detectors (REFERENCES.md 2.1, 2.4).

Expected values are computed by hand in the comments, from the definitions (sample stddev,
median), not taken from the code.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from edp.contracts.catalog import VolumeCheck
from edp.quality.volume import needed_ranges, score_volume

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)  # scores [11:00, 12:00)
HALF = timedelta(minutes=30)
WEEK = timedelta(days=7)
HOURLY = VolumeCheck(column="ts", min_relative_change=0.1)


def flat(value_per_window: float = 1000.0, days: int = 36) -> dict[datetime, float]:
    """Every 30-minute slot holds half a window's rows."""
    return {NOW - i * HALF: value_per_window / 2 for i in range(1, days * 48)}


def put(series: dict[datetime, float], window_start: datetime, total: float) -> None:
    series[window_start] = series[window_start + HALF] = total / 2


def test_mean14_includes_the_scored_bucket_so_a_drop_scores_low() -> None:
    # 13 earlier days: six at 105, six at 95, one at 100 -> mean 100, sample sd 5.
    # Scored day 80, included: mean = 1380/14 = 98.571; sum of squares about it
    # = 300 + 13 * 1.4286^2 + 18.571^2 = 671.43; sd = sqrt(671.43 / 13) = 7.187;
    # z = (80 - 98.571) / 7.187 = -2.584.
    series = flat(100.0, days=15)
    start = NOW - timedelta(hours=1)
    for d, v in enumerate([105] * 6 + [95] * 6 + [100], start=1):
        put(series, start - d * timedelta(days=1), v)
    put(series, start, 80)
    v = score_volume(series, NOW, VolumeCheck(column="ts", method="mean14", threshold=2.0))
    assert v.score == pytest.approx(-2.584, abs=1e-3)
    assert v.status == "fail"
    # and its ceiling: with the point inside, |z| <= (n - 1) / sqrt(n) = 13 / sqrt(14) = 3.474
    put(series, start, 0)
    v0 = score_volume(series, NOW, VolumeCheck(column="ts", method="mean14", threshold=2.0))
    assert abs(v0.score or 0) <= 13 / math.sqrt(14) + 1e-9


def test_the_scored_window_is_never_in_its_own_baseline() -> None:
    series = flat(1000.0)
    start = NOW - timedelta(hours=1)
    for k, v in zip((1, 2, 3, 4), (1000, 1040, 960, 980), strict=True):
        put(series, start - k * WEEK, v)
    put(series, start, 0)
    v = score_volume(series, NOW, HOURLY)
    # median(1000, 1040, 960, 980) = 990; the other windows sit on their medians: level 0
    assert v.expected == pytest.approx(990.0)
    assert v.value == 0
    assert (v.status, v.direction) == ("fail", "drop")
    assert v.training_points == 4


def test_flagged_slots_leave_training_so_a_repeat_incident_is_still_flagged() -> None:
    series = flat(1000.0)
    start = NOW - timedelta(hours=1)
    put(series, start - WEEK, 0)  # last week's outage in the same hour
    put(series, start, 0)  # and again now
    unflagged = score_volume(series, NOW, HOURLY)
    flagged = score_volume(series, NOW, HOURLY, flagged=[start - WEEK, start - WEEK + HALF])
    # with last week's zero in training: median(0, 1000, 1000, 1000) = 1000 still, but the
    # zero enters the spread; without it: 3 samples, expected 1000
    assert flagged.training_points == 3
    assert flagged.expected == pytest.approx(1000.0)
    assert flagged.status == "fail"
    assert unflagged.training_points == 4


def test_a_seasonal_pattern_is_no_anomaly() -> None:
    # Monday 11:00 is twice as busy as every other hour, every week: no alarm on Monday.
    series = flat(1000.0)
    start = NOW - timedelta(hours=1)
    for k in range(5):
        put(series, start - k * WEEK, 2000)
    v = score_volume(series, NOW, HOURLY)
    assert v.status == "pass"
    assert v.expected == pytest.approx(2000.0)
    # the 14-day moving average alarms on it
    mean14 = score_volume(series, NOW, VolumeCheck(column="ts", method="mean14", threshold=2.0))
    assert mean14.status == "fail"


@pytest.mark.parametrize(
    ("direction", "now_value", "status"),
    [
        ("both", 0, "fail"),
        ("spike", 0, "pass"),
        ("drop", 0, "fail"),
        ("drop", 3000, "pass"),
        ("spike", 3000, "fail"),
    ],
)
def test_direction(direction: str, now_value: float, status: str) -> None:
    series = flat(1000.0)
    put(series, NOW - timedelta(hours=1), now_value)
    check = HOURLY.model_copy(update={"direction": direction})
    assert score_volume(series, NOW, check).status == status


def test_small_relative_changes_stay_quiet_on_a_tiny_table() -> None:
    series = flat(4.0)  # four rows an hour
    put(series, NOW - timedelta(hours=1), 5)  # +25 %: below 30 %
    assert score_volume(series, NOW, VolumeCheck(column="ts")).status == "pass"
    put(series, NOW - timedelta(hours=1), 0)  # -100 %: four rows missing is not significant
    assert score_volume(series, NOW, VolumeCheck(column="ts")).status == "pass"


def test_insufficient_history_is_not_a_verdict() -> None:
    series = {NOW - i * HALF: 500.0 for i in range(1, 48 * 8)}  # 8 days: one seasonal sample
    v = score_volume(series, NOW, VolumeCheck(column="ts", min_training_points=2))
    assert (v.status, v.training_points) == ("insufficient_history", 1)


def test_a_declared_promotion_makes_a_spike_expected() -> None:
    series = flat(1000.0)
    put(series, NOW - timedelta(hours=1), 2500)
    v = score_volume(series, NOW, HOURLY, promotions=["Black Friday"])
    assert v.status == "expected"
    assert v.details["promotions"] == ["Black Friday"]
    put(series, NOW - timedelta(hours=1), 0)  # a drop is still an incident
    assert score_volume(series, NOW, HOURLY, promotions=["Black Friday"]).status == "fail"


def test_daily_buckets_use_the_same_weekday() -> None:
    day = timedelta(days=1)
    now = datetime(2026, 12, 7, 0, 30, tzinfo=UTC)  # scores 2026-12-06 (a Sunday)
    series = {datetime(2026, 12, 6, tzinfo=UTC) - i * day: 100.0 for i in range(1, 60)}
    for k in range(1, 5):
        series[datetime(2026, 12, 6, tzinfo=UTC) - k * 7 * day] = 150.0  # busy Sundays
    series[datetime(2026, 12, 6, tzinfo=UTC)] = 150.0
    check = VolumeCheck(column="d", bucket="day", min_relative_change=0.1)
    v = score_volume(series, now, check)
    assert (v.status, v.expected) == ("pass", pytest.approx(150.0))


def test_needed_ranges_cover_only_the_training_weeks() -> None:
    ranges = needed_ranges(NOW, VolumeCheck(column="ts", training_weeks=4))
    # five spans (this week and four earlier), each one day of noise windows + the hour
    assert len(ranges) == 5
    assert all(hi - lo == timedelta(hours=25) for lo, hi in ranges)
    assert ranges[0][0] == NOW - timedelta(hours=1) - 4 * WEEK - timedelta(days=1)
    assert ranges[-1][1] == NOW
