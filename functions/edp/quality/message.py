"""The Slack message of an incident decision (opened, re-alerted, resolved).

Example:
    >>> from datetime import UTC, datetime
    >>> from edp.quality.incidents import Decision, IncidentState
    >>> now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    >>> state = IncidentState("id-1", "cdc", "resolved", "critical", ("raw.cdc_orders.freshness",),
    ...                       3.0, now, now, now)
    >>> msg = incident_message(Decision("resolved", state, ()), None)
    >>> msg.text
    '[RESOLVED] data-quality incident in cdc (raw.cdc_orders.freshness)'
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block

from edp.alerting.slack import (
    SlackMessage,
    blocks_json,
    context,
    divider,
    header,
    section,
)
from edp.quality.incidents import Decision
from edp.quality.report import IncidentReport

_ICON = {"critical": ":rotating_light:", "warning": ":warning:"}
MAX_CHECK_BLOCKS = 20


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:,.4g}"


def incident_message(decision: Decision, report: IncidentReport | None) -> SlackMessage:
    """One message for the whole incident (all its failing checks)."""
    s = decision.state
    checks = ", ".join(s.checks[:5]) + (" …" if len(s.checks) > 5 else "")
    if decision.action == "resolved":
        text = f"[RESOLVED] data-quality incident in {s.group_name} ({checks})"
        blocks = blocks_json(
            header(f":white_check_mark: Resolved: data quality, {s.group_name}"),
            section(
                f"All checks of *{s.group_name}* pass again. Open since "
                f"{s.opened_at:%Y-%m-%d %H:%M} UTC, resolved {s.resolved_at:%H:%M} UTC."
            ),
            context(f"incident {s.incident_id}"),
        )
        return SlackMessage(text=text, blocks=blocks, severity=s.severity)
    verb = "worse" if decision.action == "realerted" else "new"
    text = f"[{s.severity.upper()}] data-quality incident in {s.group_name} ({verb}): {checks}"
    parts: list[Block] = [
        header(f"{_ICON.get(s.severity, '')} Data quality: {s.group_name} ({verb})")
    ]
    if report is not None:
        parts.append(section(f"*Summary* {report.summary}"))
    for r in decision.failing[:MAX_CHECK_BLOCKS]:
        parts.append(
            section(
                fields=[
                    f"*Check*\n{r.check_name}",
                    f"*Status*\n{r.status} ({r.severity})",
                    f"*Observed*\n{_fmt(r.metric_value)}",
                    f"*Expected / threshold*\n{_fmt(r.expected_value)} / {_fmt(r.threshold)}"
                    + (f" (score {r.score:.2f})" if r.score is not None else ""),
                ]
            )
        )
    if report is not None:
        parts.append(divider())
        causes = "\n".join(
            f"{i}. {c.cause} ({c.likelihood:.0%}) — {'; '.join(c.evidence[:2])}"
            for i, c in enumerate(report.likely_causes[:3], 1)
        )
        parts.append(section(f"*Likely causes*\n{causes}"))
        figures = "\n".join(
            f"• {f.name}: {f.value:,.6g} {f.unit}" for f in report.business_impact.figures[:6]
        )
        parts.append(section(f"*Business impact* {report.business_impact.summary}\n{figures}"))
        actions = "\n".join(f"• {a}" for a in report.immediate_actions[:5])
        parts.append(section(f"*Immediate actions*\n{actions}"))
        parts.append(context(f"report by {report.author} · confidence {report.confidence:.0%}"))
    parts.append(context(f"incident {s.incident_id} · opened {s.opened_at:%Y-%m-%d %H:%M} UTC"))
    return SlackMessage(text=text, blocks=blocks_json(*parts), severity=s.severity)
