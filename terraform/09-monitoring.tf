# Stage 9: alerts and the platform dashboard. Critical alerts page and go to the critical Slack
# channel; warnings go to the alerts channel.

# Cloud Monitoring's Slack channel type takes the bot token as a sensitive label, which the
# provider keeps in state: that is the one secret in state, marked sensitive, and only when a
# token is given (README "Terraform state"). Without one, no Slack channel is created and the
# first apply needs no manual step.
resource "google_monitoring_notification_channel" "slack" {
  for_each     = var.slack_auth_token == null ? {} : { critical = var.slack_channels.critical, warning = var.slack_channels.warning }
  project      = var.project_id
  display_name = "EDP ${each.key} (${each.value})"
  type         = "slack"
  labels       = { channel_name = each.value }
  sensitive_labels {
    auth_token = var.slack_auth_token
  }
}

resource "google_monitoring_notification_channel" "pager" {
  count        = var.alerting.pager_email == null ? 0 : 1
  project      = var.project_id
  display_name = "EDP pager"
  type         = "email"
  labels       = { email_address = var.alerting.pager_email }
}

locals {
  critical_channels = concat(
    [for k, c in google_monitoring_notification_channel.slack : c.id if k == "critical"],
    google_monitoring_notification_channel.pager[*].id,
  )
  warning_channels = [for k, c in google_monitoring_notification_channel.slack : c.id if k == "warning"]

  # PromQL over Cloud Monitoring (Managed Service for Prometheus syntax). Our own metrics are the
  # OpenTelemetry instruments exported by edp.observability (workload.googleapis.com/*).
  alerts = {
    ingest-error-rate = {
      severity = "CRITICAL"
      duration = "300s"
      doc      = "More than ${var.alerting.ingest_error_rate * 100} % of ingest requests failed with 5xx for 5 minutes. Check the ingest function logs and Pub/Sub publish errors (README: Troubleshooting)."
      query    = "sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=\"${module.function["ingest"].service}\",response_code_class=\"5xx\"}[5m])) / sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=\"${module.function["ingest"].service}\"}[5m])) > ${var.alerting.ingest_error_rate}"
    }
    data-freshness = {
      severity = "CRITICAL"
      duration = "0s"
      doc      = "raw.user_events has not received data for more than ${var.alerting.freshness_minutes} minutes (now - MAX(ingested_at)). Check the Beam job on GKE and the events-loader backlog."
      query    = "max(data_freshness_seconds) > ${var.alerting.freshness_minutes * 60}"
    }
    pipeline-failed = {
      severity = "WARNING"
      duration = "0s"
      doc      = "A pipeline run failed (daily ETL workflow, etl or cdc_flush). See monitoring.pipeline_runs and the workflow execution."
      query    = "sum(increase(workflows_googleapis_com:finished_execution_count{monitored_resource=\"workflows.googleapis.com/Workflow\",status=\"FAILED\"}[10m])) > 0 or sum(increase(pipeline_runs_total{status=\"failed\"}[10m])) > 0"
    }
    pod-restarts = {
      severity = "WARNING"
      duration = "0s"
      doc      = "A platform pod restarted more than ${var.alerting.pod_restarts_per_hour} times in an hour (OOM? probe failures?)."
      query    = "max by (pod_name) (increase(kubernetes_io:container_restart_count{monitored_resource=\"k8s_container\",namespace_name=\"edp\"}[1h])) > ${var.alerting.pod_restarts_per_hour}"
    }
    data-quality-check-failed = {
      severity = "WARNING"
      duration = "0s"
      doc      = "A data-quality check fails (data_quality_check_status 2 = fail, 3 = error). The quality agent posts the incident and its report to Slack; details in monitoring.data_quality_checks (docs/quality.md: Runbook)."
      query    = "max by (table, check_name) (workload_googleapis_com:data_quality_check_status) >= 2"
    }
    bigquery-daily-cost = {
      severity = "WARNING"
      duration = "0s"
      doc      = "BigQuery on-demand spend over the last 24 h exceeds $${var.alerting.daily_bigquery_cost_usd} (typically a query without a partition filter)."
      query    = "sum(increase(bigquery_googleapis_com:query_scanned_bytes_billed{monitored_resource=\"global\"}[1d])) / 1099511627776 * ${var.alerting.bigquery_usd_per_tib} > ${var.alerting.daily_bigquery_cost_usd}"
    }
  }
}

resource "google_monitoring_alert_policy" "alert" {
  for_each     = local.alerts
  project      = var.project_id
  display_name = "EDP ${each.key}"
  combiner     = "OR"
  severity     = each.value.severity
  user_labels  = local.labels

  conditions {
    display_name = each.key
    condition_prometheus_query_language {
      query               = each.value.query
      duration            = each.value.duration
      evaluation_interval = "60s"
    }
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }

  alert_strategy {
    auto_close = "1800s"
  }

  notification_channels = each.value.severity == "CRITICAL" ? local.critical_channels : local.warning_channels
}

resource "google_monitoring_dashboard" "platform" {
  project        = var.project_id
  dashboard_json = file("${path.module}/dashboards/platform.json")
}
