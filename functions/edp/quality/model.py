"""What a check produces: one :class:`CheckResult` per check, table and run.

Statuses: ``pass``, ``warn``, ``fail``, ``error`` (the check could not run),
``insufficient_history`` (too little training data for a verdict, instead of a guess) and
``expected`` (a declared promotion explains the change). Only ``warn`` and ``fail`` raise incidents.

Example:
    >>> r = CheckResult(check_name="raw.t.freshness", check_type="freshness", table_ref="raw.t",
    ...                 status="fail", severity="critical", metric_value=45.0, threshold=30.0)
    >>> r.failing, round(r.badness, 2)
    (True, 1.5)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

Status = Literal["pass", "warn", "fail", "error", "insufficient_history", "expected"]
Severity = Literal["info", "warning", "critical"]
STATUS_CODE: dict[str, int] = {
    "pass": 0,
    "expected": 0,
    "insufficient_history": 0,
    "warn": 1,
    "fail": 2,
    "error": 3,
}


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check on one table (one row of ``monitoring.data_quality_checks``)."""

    check_name: str
    check_type: str
    table_ref: str
    status: Status
    severity: Severity = "info"
    column_name: str | None = None
    metric_value: float | None = None
    threshold: float | None = None
    expected_value: float | None = None
    score: float | None = None
    window_start: datetime | None = None
    window_end: datetime | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def failing(self) -> bool:
        """Whether this result raises an incident (warn or fail)."""
        return self.status in ("warn", "fail")

    @property
    def badness(self) -> float:
        """How far past its threshold the check is (1.0 = at the threshold): ranks and re-alerts.

        For a scored check (volume z, PSI) it is ``|score| / threshold``, else
        ``value / threshold``.
        """
        if self.threshold in (None, 0):
            return 1.0 if self.failing else 0.0
        base = self.score if self.score is not None else self.metric_value
        if base is None or not math.isfinite(base):
            return 1.0 if self.failing else 0.0
        return abs(base) / abs(self.threshold)

    def row(self, run_id: str, check_id: str, checked_at: datetime) -> dict[str, Any]:
        """The warehouse row."""

        def finite(x: float | None) -> float | None:
            return x if x is None or math.isfinite(x) else None

        return {
            "check_id": check_id,
            "run_id": run_id,
            "check_name": self.check_name,
            "check_type": self.check_type,
            "table_ref": self.table_ref,
            "column_name": self.column_name,
            "partition_date": (self.window_start or checked_at).date(),
            "status": self.status,
            "severity": self.severity,
            "metric_value": finite(self.metric_value),
            "threshold": finite(self.threshold),
            "expected_value": finite(self.expected_value),
            "score": finite(self.score),
            "window_start": self.window_start,
            "window_end": self.window_end,
            "details": self.details,
            "checked_at": checked_at,
        }


def floor_time(at: datetime, step: timedelta) -> datetime:
    """``at`` rounded down to a multiple of ``step`` since the Unix epoch (UTC).

    Example:
        >>> floor_time(datetime(2026, 12, 6, 10, 47, tzinfo=UTC), timedelta(minutes=30))
        datetime.datetime(2026, 12, 6, 10, 30, tzinfo=datetime.timezone.utc)
    """
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((at - epoch) // step) * step


def as_utc(at: datetime) -> datetime:
    """An aware UTC datetime (naive values are taken as UTC)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
