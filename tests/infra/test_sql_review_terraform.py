"""Terraform of the SQL cost review: the function, its daily schedule, the $25/day cost alert.

Static checks on the HCL (python-hcl2), like the rest of ``tests/infra``.
"""

from __future__ import annotations

import json

from tests.infra.test_terraform import _locals, _resources, _variable_defaults

from edp.settings import Settings


def test_sql_review_function_entry() -> None:
    fn = _locals()["functions"]["sql_review"]
    assert fn["entry_point"] == '"sql_review"'
    assert fn["sa"] == '"sql-review"'
    assert "slack-webhook-warning" in fn["secrets"]["EDP_SLACK_WEBHOOK_WARNING"]
    assert fn["iam"] == {'"roles/run.invoker"': ["${local.sa.scheduler}"]}
    assert "sql_review" in _variable_defaults()["functions"]


def test_daily_schedule_calls_the_scheduled_mode_with_oidc() -> None:
    job = _resources("google_cloud_scheduler_job")["sql_review"]
    target = job["http_target"][0]
    assert target["uri"] == '${module.function["sql_review"].uri}'
    assert 'mode = "scheduled"' in target["body"]
    assert target["oidc_token"][0]["audience"] == target["uri"]
    assert _variable_defaults()["sql_review.schedule"] == "30 0 * * *"
    assert (
        _variable_defaults()["sql_review.top_jobs"] == Settings(_env_file=None).sql_review_top_jobs
    )


def test_cost_alert_at_25_usd_a_day_from_bytes_billed_goes_to_slack() -> None:
    alert = _locals()["alerts"]["bigquery-daily-cost"]
    assert "query_scanned_bytes_billed" in alert["query"]
    assert "[1d]" in alert["query"] and "1099511627776" in alert["query"]
    assert _variable_defaults()["alerting.daily_bigquery_cost_usd"] == 25
    # priced like the reviewer prices findings
    assert (
        _variable_defaults()["alerting.bigquery_usd_per_tib"]
        == Settings(_env_file=None).sql_review_usd_per_tib
    )
    # WARNING alerts route to the Slack alerts channel (09-monitoring.tf)
    policy = _resources("google_monitoring_alert_policy")["alert"]
    assert "local.warning_channels" in json.dumps(policy["notification_channels"])
    assert alert["severity"] == '"WARNING"'
