"""The quality agent: one scheduled run end to end.

run the checks -> group failing checks into incidents -> decide per group (open, re-alert,
quiet, resolve) against the stored state -> write a report for new/worse incidents (Gemini or
the offline analyst) -> one Slack message per incident -> store the incident state.

Example (needs a warehouse)::

    >>> from datetime import UTC, datetime  # doctest: +SKIP
    >>> from edp.warehouse import get_warehouse  # doctest: +SKIP
    >>> outcome = run_agent(get_warehouse(), datetime.now(UTC))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from edp.alerting.slack import SlackNotifier, notifier_from_settings
from edp.contracts.catalog import Catalog, load_catalog
from edp.errors import EdpError
from edp.quality.calendar import PromotionCalendar, load_calendar
from edp.quality.evidence import gather
from edp.quality.gemini import write_report
from edp.quality.incidents import Decision, decide, group_failing, load_states, save_state
from edp.quality.message import incident_message
from edp.quality.model import as_utc
from edp.quality.report import IncidentReport
from edp.quality.runner import RunResult, run_checks
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)


@dataclass
class AgentOutcome:
    """What a run did."""

    run: RunResult
    decisions: list[Decision] = field(default_factory=list)
    reports: dict[str, IncidentReport] = field(default_factory=dict)
    sent: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "checked_at": self.run.checked_at.isoformat(),
            "seconds": round(self.run.seconds, 3),
            "checks": self.run.counts(),
            "failing": [r.check_name for r in self.run.failing],
            "incidents": [
                {
                    "incident_id": d.state.incident_id,
                    "group": d.state.group_name,
                    "action": d.action,
                    "severity": d.state.severity,
                    "checks": list(d.state.checks),
                    "report": self.reports[d.state.incident_id].model_dump()
                    if d.state.incident_id in self.reports
                    else None,
                }
                for d in self.decisions
            ],
            "slack_messages": self.sent,
        }


def run_agent(
    warehouse: Warehouse,
    now: datetime,
    *,
    settings: Settings | None = None,
    catalog: Catalog | None = None,
    calendar: PromotionCalendar | None = None,
    notifier: SlackNotifier | None = None,
    tables: Sequence[str] | None = None,
    llm_credentials: Any | None = None,
) -> AgentOutcome:
    """One run of the agent as of ``now``."""
    settings = settings or get_settings()
    catalog = catalog or load_catalog()
    calendar = calendar if calendar is not None else load_calendar()
    notifier = notifier if notifier is not None else notifier_from_settings(settings)
    now = as_utc(now)
    run = run_checks(warehouse, now, catalog=catalog, calendar=calendar, tables=tables)
    outcome = AgentOutcome(run=run)
    states = load_states(warehouse, now)
    failing = group_failing(catalog, run.results)
    quiet = timedelta(minutes=settings.quality_quiet_minutes)
    for group in sorted(set(failing) | set(states)):
        decision = decide(group, failing.get(group, []), states.get(group), now, quiet)
        if decision is None:
            continue
        outcome.decisions.append(decision)
        report = None
        if decision.action in ("opened", "realerted"):
            evidence = gather(
                warehouse, catalog, calendar, group, decision.failing, run.results, now
            )
            report = write_report(evidence, settings, llm_credentials)
            outcome.reports[decision.state.incident_id] = report
        if decision.alerts and notifier.configured:
            try:
                outcome.sent += int(notifier.send(incident_message(decision, report)))
            except EdpError as exc:
                log.error("quality: Slack message for %s failed: %s", group, exc)
                if decision.action != "resolved":  # not delivered: the next run sends it
                    decision = replace(
                        decision, state=replace(decision.state, last_alerted_at=None)
                    )
        save_state(warehouse, decision, run.run_id, now, report.model_dump() if report else None)
    return outcome
