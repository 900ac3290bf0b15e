"""The offline analyst: an :class:`~edp.quality.report.IncidentReport` from rules, no LLM.

Used when Vertex AI is not configured (locally) and whenever the Gemini call fails. Its
causes come from the pattern of failing checks (a drop with stale freshness is a stalled
loader; a drop alone an upstream outage; a spike during a promotion expected; ...), ranked by
a fixed likelihood per pattern, each citing the checks it rests on; the impact figures are
computed from the evidence.

Example:
    >>> from edp.quality.report import CheckEvidence, Evidence
    >>> ev = Evidence(group="events", run_time="2026-12-06T12:00:00+00:00", failing=[
    ...     CheckEvidence(check_name="raw.user_events.volume", check_type="volume",
    ...                   table="raw.user_events", status="fail", severity="critical",
    ...                   value=120.0, expected=1000.0, threshold=4.5, score=-9.0,
    ...                   details={"direction": "drop", "relative_change": -0.88})])
    >>> report = rule_based_report(ev)
    >>> report.likely_causes[0].cause.startswith("Upstream outage")
    True
    >>> report.business_impact.figures[0].value
    880.0
"""

from __future__ import annotations

from edp.quality.report import (
    BusinessImpact,
    CheckEvidence,
    Evidence,
    ImpactFigure,
    IncidentReport,
    LikelyCause,
)

AUTHOR = "offline rule-based analyst (no LLM"


def _by_type(ev: Evidence) -> dict[str, list[CheckEvidence]]:
    out: dict[str, list[CheckEvidence]] = {}
    for c in ev.failing:
        out.setdefault(c.check_type, []).append(c)
    return out


def _names(checks: list[CheckEvidence]) -> list[str]:
    return [
        f"{c.check_name}: value {c.value:g} vs threshold {c.threshold:g}"
        if c.value is not None and c.threshold is not None
        else f"{c.check_name}: {c.status}"
        for c in checks
    ]


def _causes(ev: Evidence) -> list[LikelyCause]:
    kinds = _by_type(ev)
    causes: list[LikelyCause] = []
    drops = [c for c in kinds.get("volume", []) if c.details.get("direction") == "drop"]
    spikes = [c for c in kinds.get("volume", []) if c.details.get("direction") == "spike"]
    stale = kinds.get("freshness", [])
    if drops and stale:
        causes.append(
            LikelyCause(
                cause="Loader or CDC flush stalled: rows stopped arriving while the source went on",
                likelihood=0.7,
                evidence=_names(drops + stale),
            )
        )
    elif stale:
        causes.append(
            LikelyCause(
                cause="Pipeline stalled (loader, CDC flush or the daily ETL did not write)",
                likelihood=0.65,
                evidence=_names(stale),
            )
        )
    if drops:
        causes.append(
            LikelyCause(
                cause="Upstream outage: clients or ingest stopped sending events (SDK release, "
                "ingest errors, tracking consent change)",
                likelihood=0.6 if not stale else 0.25,
                evidence=_names(drops),
            )
        )
    if spikes:
        dupes = kinds.get("duplicate_rate", [])
        if dupes:
            causes.append(
                LikelyCause(
                    cause="Client retry storm: the same events re-sent (duplicates inflate volume)",
                    likelihood=0.7,
                    evidence=_names(spikes + dupes),
                )
            )
        causes.append(
            LikelyCause(
                cause="Unannounced promotion, campaign or bot traffic"
                if not ev.promotions
                else f"Promotion {', '.join(ev.promotions)}",
                likelihood=0.5,
                evidence=_names(spikes),
            )
        )
    rules = [
        (
            "duplicate_rate",
            "Duplicate delivery: client retries or loader redelivery without idempotent writes",
            0.6,
        ),
        ("null_rate", "A client or mapping release stopped filling key columns", 0.65),
        ("schema_drift", "Schema change deployed to the warehouse without updating schemas/", 0.8),
        (
            "category_mix",
            "Tracking change: events mislabelled or one category lost (release, consent, bot)",
            0.55,
        ),
        ("cdc_lag", "CDC replication lagging (Debezium, Pub/Sub backlog or flush throughput)", 0.7),
        (
            "referential_integrity",
            "Child rows written before their parents (CDC ordering or a missed parent change)",
            0.5,
        ),
        ("refused_share", "Ingest refusing more events: a client sends off-contract events", 0.7),
        ("volume", "", 0.0),
        ("freshness", "", 0.0),
    ]
    for kind, text, p in rules:
        if text and kind in kinds and not (kind == "duplicate_rate" and spikes):
            causes.append(LikelyCause(cause=text, likelihood=p, evidence=_names(kinds[kind])))
    if ev.recent_runs:
        causes.append(
            LikelyCause(
                cause="A recent pipeline run failed",
                likelihood=0.4,
                evidence=[
                    f"{r.get('pipeline')} {r.get('task')}: {r.get('error')}"
                    for r in ev.recent_runs[:3]
                ],
            )
        )
    causes.sort(key=lambda c: -c.likelihood)
    return causes or [LikelyCause(cause="Unknown", likelihood=0.1, evidence=_names(ev.failing))]


def _impact(ev: Evidence) -> BusinessImpact:
    figures: list[ImpactFigure] = []
    for c in ev.failing:
        if c.check_type == "volume" and c.value is not None and c.expected:
            figures.append(
                ImpactFigure(
                    name=f"{c.table} rows missing in the window"
                    if c.value < c.expected
                    else f"{c.table} extra rows in the window",
                    value=round(abs(c.expected - c.value), 1),
                    unit="rows",
                )
            )
            figures.append(
                ImpactFigure(
                    name=f"{c.table} change against the seasonal baseline",
                    value=round(100 * (c.value / c.expected - 1), 1),
                    unit="%",
                )
            )
        elif c.check_type == "freshness" and c.value is not None:
            figures.append(ImpactFigure(name=f"{c.table} data age", value=c.value, unit="minutes"))
        elif c.value is not None and c.check_type in ("null_rate", "duplicate_rate"):
            rows = c.details.get("rows")
            if isinstance(rows, int | float):
                figures.append(
                    ImpactFigure(
                        name=f"{c.check_name} affected rows",
                        value=round(c.value * rows),
                        unit="rows",
                    )
                )
    orders = ev.related.get("purchase_events")
    if orders:
        figures.append(
            ImpactFigure(name="purchase events in the window", value=orders, unit="events")
        )
    tables = sorted({c.table for c in ev.failing})
    summary = (
        f"Dashboards and marts fed by {', '.join(tables)} are wrong or late until this clears; "
        "daily marts built meanwhile need a re-run."
    )
    return BusinessImpact(summary=summary, figures=figures)


def rule_based_report(ev: Evidence, why: str = "Vertex AI not configured") -> IncidentReport:
    """The report the rules give for ``ev``; ``why`` names the reason no LLM wrote it."""
    kinds = sorted({c.check_type for c in ev.failing})
    tables = sorted({c.table for c in ev.failing})
    worst = max(ev.failing, key=lambda c: {"critical": 2, "warning": 1}.get(c.severity, 0))
    causes = _causes(ev)
    actions = [
        f"Open the quality dashboard for {', '.join(tables)} and confirm the failing "
        f"{', '.join(kinds)} check(s) against the source.",
    ]
    if "freshness" in kinds or "cdc_lag" in kinds:
        actions.append(
            "Check the loader / cdc_flush logs and Pub/Sub subscription backlog; "
            "restart the stalled component."
        )
    if "volume" in kinds:
        actions.append(
            "Compare ingest request rates and 5xx in Cloud Monitoring with the drop "
            "or spike window; check the promotions calendar."
        )
    if "schema_drift" in kinds:
        actions.append(
            "Diff the live table schema against schemas/tables and revert or declare the change."
        )
    actions.append("Hold the next daily ETL for affected marts, or re-run them after the fix.")
    fixes = [
        "Add the missing guard as a declared check or a tighter threshold beside the schema.",
        "Record planned promotions in schemas/calendar/promotions.yaml before they start.",
    ]
    if "duplicate_rate" in kinds:
        fixes.append("Make every writer idempotent on the primary key (insert ids, MERGE).")
    return IncidentReport(
        summary=(
            f"{worst.severity.capitalize()} data-quality incident in group {ev.group}: "
            f"{len(ev.failing)} failing check(s) ({', '.join(kinds)}) on {', '.join(tables)} "
            f"as of {ev.run_time}."
        ),
        likely_causes=causes,
        business_impact=_impact(ev),
        immediate_actions=actions,
        long_term_fixes=fixes,
        confidence=round(min(0.9, causes[0].likelihood), 2),
        author=f"{AUTHOR}: {why})",
    )
