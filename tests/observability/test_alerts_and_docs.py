"""Alert policies, dashboards and the metric docs say what they should.

Required (the platform's observability brief): critical alerts for ingest error rate > 5 % for
5 minutes and data freshness > 30 minutes, routed to the Slack critical channel plus the pager;
warnings for a failed pipeline, pods restarting > 3 times an hour, CDC lag over its 10 s SLA,
dead letters present, BigQuery cost over $25/day and a failing quality check, routed to Slack;
every policy documented with a link to its runbook section; eight dashboards.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import pytest

from edp.observability.catalogue import markdown_table
from edp_tools.observability.metrics_doc import DOC, with_table

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"

EXPECTED_ALERTS = {
    "ingest-error-rate": ("CRITICAL", "300s"),
    "data-freshness": ("CRITICAL", "0s"),
    "pipeline-failed": ("WARNING", "0s"),
    "pod-restarts": ("WARNING", "0s"),
    "cdc-lag": ("WARNING", "300s"),
    "dead-letters": ("WARNING", "0s"),
    "bigquery-daily-cost": ("WARNING", "0s"),
    "quality-check-failing": ("WARNING", "0s"),
}
EXPECTED_DASHBOARDS = {
    "event throughput",
    "quality checks",
    "conversion funnel",
    "AI quality reports",
    "pipeline status",
    "BigQuery cost trend",
    "autoscaling",
    "CDC lag",
}


def _monitoring() -> dict[str, Any]:
    with (TERRAFORM / "09-monitoring.tf").open(encoding="utf-8") as fh:
        return hcl2.load(fh)  # type: ignore[no-any-return]


def _unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _alerts() -> dict[str, dict[str, Any]]:
    (block,) = [b for b in _monitoring()["locals"] if "alerts" in b]
    return {
        _unquote(name): {k: _unquote(v) for k, v in alert.items()}
        for name, alert in block["alerts"].items()
    }


def _anchor(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_eight_alerts_with_their_severity_and_duration() -> None:
    alerts = _alerts()
    assert {k: (v["severity"], v["duration"]) for k, v in alerts.items()} == EXPECTED_ALERTS


@pytest.mark.parametrize(
    ("name", "threshold"),
    [
        ("ingest-error-rate", "${var.alerting.ingest_error_rate}"),
        ("data-freshness", "> ${var.alerting.freshness_minutes}"),
        ("pod-restarts", "> ${var.alerting.pod_restarts_per_hour}"),
        ("cdc-lag", "> ${var.alerting.cdc_lag_seconds}"),
        ("bigquery-daily-cost", "> ${var.alerting.daily_bigquery_cost_usd}"),
        # edp.quality.runner: data_quality_check_status 0 pass, 1 warn, 2 fail, 3 error
        ("quality-check-failing", ">= 2"),
        ("dead-letters", "> 0"),
        ("pipeline-failed", "> 0"),
    ],
)
def test_each_alert_compares_with_its_threshold(name: str, threshold: str) -> None:
    assert threshold in _alerts()[name]["query"]


def test_threshold_defaults_are_the_required_figures() -> None:
    text = (TERRAFORM / "variables.tf").read_text(encoding="utf-8")
    for line in (
        "ingest_error_rate       = optional(number, 0.05)",
        "freshness_minutes       = optional(number, 30)",
        "pod_restarts_per_hour   = optional(number, 3)",
        "daily_bigquery_cost_usd = optional(number, 25)",
        "cdc_lag_seconds         = optional(number, 10)",
    ):
        assert line in text


def test_critical_goes_to_slack_critical_and_the_pager_warning_to_slack() -> None:
    text = (TERRAFORM / "09-monitoring.tf").read_text(encoding="utf-8")
    critical = re.search(r"critical_channels = concat\((.*?)\n  \)", text, re.S)
    assert critical
    # Slack channels exist only when a bot token is given (slack_auth_token, 09-monitoring.tf)
    assert 'k == "critical"' in critical.group(1)
    assert "google_monitoring_notification_channel.pager[*].id" in critical.group(1)
    assert "var.alerting.pager_channel_ids" in critical.group(1)
    warning = '[for k, c in google_monitoring_notification_channel.slack : c.id if k == "warning"]'
    assert f"warning_channels = {warning}" in text
    assert (
        'each.value.severity == "CRITICAL" ? local.critical_channels : local.warning_channels'
        in text
    )


def test_every_alert_links_an_existing_runbook_section() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    anchors = {_anchor(h) for h in re.findall(r"^## (.+)$", runbook, re.M)}
    for name, alert in _alerts().items():
        assert alert["runbook"] in anchors, f"{name}: docs/runbook.md has no section for it"
    text = (TERRAFORM / "09-monitoring.tf").read_text(encoding="utf-8")
    assert "Runbook: [${each.key}](${local.runbook}#${each.value.runbook})" in text


def test_the_eight_dashboards() -> None:
    names = set()
    for path in (TERRAFORM / "dashboards").glob("*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["displayName"].startswith("EDP \u2014 ")
        names.add(doc["displayName"].removeprefix("EDP \u2014 "))
        assert doc["mosaicLayout"]["tiles"], path.name
    assert names == EXPECTED_DASHBOARDS


def test_metrics_doc_is_generated_from_the_catalogue() -> None:
    text = DOC.read_text(encoding="utf-8")
    assert with_table(text, markdown_table()) == text, (
        "docs/metrics.md is stale: run python -m edp_tools.observability.metrics_doc"
    )
