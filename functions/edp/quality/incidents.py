"""Incidents: the failing checks of a run grouped by cause, and the alert decision per group.

Checks of tables in one ``checks.group`` (events, cdc, marts, ...) that fail in the same run
share a likely cause (an events outage fails volume, freshness and the staging table together),
so they form **one** incident and one message. The decision per group is a pure function of
the run's failing checks and the group's previous state (stored in
``monitoring.quality_incidents``, newest row per group), so the agent itself keeps no state:

=========================  ===========================================  ==========
previous                   this run                                     action
=========================  ===========================================  ==========
none / resolved            failing checks                               opened
open                       worse (severity up, new check, badness x1.5) realerted
open                       the same, quiet period over (or never sent)  realerted
open                       the same, within the quiet period            quiet
open                       no failing check                             resolved
=========================  ===========================================  ==========

Example:
    >>> from datetime import UTC, datetime, timedelta
    >>> from edp.quality.model import CheckResult
    >>> now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    >>> fail = CheckResult(check_name="raw.t.volume", check_type="volume", table_ref="raw.t",
    ...                    status="fail", severity="warning", score=-6.0, threshold=4.5)
    >>> first = decide("events", [fail], None, now, timedelta(hours=2))
    >>> first.action
    'opened'
    >>> quiet = timedelta(hours=2)
    >>> decide("events", [fail], first.state, now + timedelta(minutes=30), quiet).action
    'quiet'
    >>> decide("events", [], first.state, now + timedelta(hours=1), quiet).action
    'resolved'
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from edp.contracts.catalog import Catalog
from edp.quality.model import CheckResult, as_utc
from edp.warehouse.port import Warehouse

INCIDENTS_TABLE = "monitoring.quality_incidents"
WORSENING_FACTOR = 1.5
Action = Literal["opened", "realerted", "quiet", "resolved"]
_SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True)
class IncidentState:
    """The newest state of a group's incident."""

    incident_id: str
    group_name: str
    state: Literal["open", "resolved"]
    severity: str
    checks: tuple[str, ...]
    worst_score: float
    opened_at: datetime
    last_alerted_at: datetime | None = None
    resolved_at: datetime | None = None


@dataclass(frozen=True)
class Decision:
    """What to do about one group after a run."""

    action: Action
    state: IncidentState
    failing: tuple[CheckResult, ...]

    @property
    def alerts(self) -> bool:
        """Whether a Slack message goes out (opened, realerted, resolved)."""
        return self.action != "quiet"


def group_of(catalog: Catalog, table_ref: str) -> str:
    """The incident group of a table: its ``checks.group``, else its dataset."""
    spec = catalog.table(table_ref)
    return (spec.checks.group if spec.checks else None) or spec.dataset


def group_failing(catalog: Catalog, results: Sequence[CheckResult]) -> dict[str, list[CheckResult]]:
    """Failing results per incident group."""
    out: dict[str, list[CheckResult]] = {}
    for r in results:
        if r.failing:
            out.setdefault(group_of(catalog, r.table_ref), []).append(r)
    return out


def decide(
    group: str,
    failing: Sequence[CheckResult],
    previous: IncidentState | None,
    now: datetime,
    quiet: timedelta,
) -> Decision | None:
    """The action for ``group`` (None: nothing open and nothing failing)."""
    is_open = previous is not None and previous.state == "open"
    if not failing:
        if not is_open:
            return None
        assert previous is not None
        return Decision("resolved", replace(previous, state="resolved", resolved_at=now), ())
    severity = max((r.severity for r in failing), key=lambda s: _SEVERITY_RANK.get(s, 0))
    worst = max(r.badness for r in failing)
    checks = tuple(sorted(r.check_name for r in failing))
    if not is_open:
        state = IncidentState(
            incident_id=str(uuid.uuid4()),
            group_name=group,
            state="open",
            severity=severity,
            checks=checks,
            worst_score=worst,
            opened_at=now,
            last_alerted_at=now,
        )
        return Decision("opened", state, tuple(failing))
    assert previous is not None
    worse = (
        _SEVERITY_RANK.get(severity, 0) > _SEVERITY_RANK.get(previous.severity, 0)
        or bool(set(checks) - set(previous.checks))
        or worst > previous.worst_score * WORSENING_FACTOR
    )
    # never delivered (Slack was down): try again now
    last = previous.last_alerted_at
    reminder = last is None or now - last >= quiet
    action: Action = "realerted" if worse or reminder else "quiet"
    state = replace(
        previous,
        severity=severity if worse else previous.severity,
        checks=tuple(sorted(set(checks) | set(previous.checks))) if worse else previous.checks,
        worst_score=max(worst, previous.worst_score),
        last_alerted_at=now if action == "realerted" else previous.last_alerted_at,
    )
    return Decision(action, state, tuple(failing))


def load_states(warehouse: Warehouse, now: datetime, days: int = 30) -> dict[str, IncidentState]:
    """The newest stored state per group (incidents untouched for ``days`` are forgotten)."""
    rows = warehouse.query(
        f"SELECT * FROM {INCIDENTS_TABLE} WHERE updated_at >= @since "
        "QUALIFY ROW_NUMBER() OVER (PARTITION BY group_name ORDER BY updated_at DESC) = 1",
        {"since": now - timedelta(days=days)},
    ).rows
    out = {}
    for row in rows:
        out[row["group_name"]] = IncidentState(
            incident_id=row["incident_id"],
            group_name=row["group_name"],
            state=row["state"],
            severity=row["severity"],
            checks=tuple(row["checks"] or ()),
            worst_score=float(row["worst_score"] or 0.0),
            opened_at=as_utc(row["opened_at"]),
            last_alerted_at=as_utc(row["last_alerted_at"]) if row["last_alerted_at"] else None,
            resolved_at=as_utc(row["resolved_at"]) if row["resolved_at"] else None,
        )
    return out


def save_state(
    warehouse: Warehouse,
    decision: Decision,
    run_id: str,
    now: datetime,
    report: Mapping[str, Any] | None = None,
) -> None:
    """Append the decision's state (insert id: incident id + run id)."""
    s = decision.state
    row = {
        "incident_id": s.incident_id,
        "group_name": s.group_name,
        "state": s.state,
        "severity": s.severity,
        "checks": list(s.checks),
        "worst_score": s.worst_score,
        "opened_at": s.opened_at,
        "last_alerted_at": s.last_alerted_at,
        "resolved_at": s.resolved_at,
        "run_id": run_id,
        "action": decision.action,
        "report": dict(report) if report is not None else None,
        "updated_at": now,
    }
    warehouse.insert_rows(INCIDENTS_TABLE, [row], row_ids=[f"{s.incident_id}:{run_id}"])
