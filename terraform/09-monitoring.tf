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
    var.alerting.pager_channel_ids,
  )
  warning_channels = [for k, c in google_monitoring_notification_channel.slack : c.id if k == "warning"]

  runbook = var.alerting.runbook_url
  ingest  = module.function["ingest"].service
  # Dead letters land on these topics: the subscriptions' dead-letter policies forward there,
  # and cdc_flush and the stream load park poison messages there themselves.
  dead_letter_topics = join("|", [var.pubsub.topic_events_dead_letter, var.pubsub.cdc_dead_letter_topic])

  # PromQL over Cloud Monitoring. Metrics of the Cloud Run functions are OpenTelemetry metrics
  # (workload.googleapis.com/<name>, read as workload_googleapis_com:<name>, histograms with
  # _bucket/_count/_sum); the GKE collector's /metrics is scraped by Managed Service for
  # Prometheus and keeps its Prometheus names. docs/metrics.md lists every metric; a test runs
  # the exporter against a stand-in of the Monitoring API and checks each query below.
  alerts = {
    ingest-error-rate = {
      severity = "CRITICAL"
      duration = "300s"
      doc      = "More than ${var.alerting.ingest_error_rate * 100} % of ingest requests answered 5xx for 5 minutes (Cloud Run function or GKE collector)."
      runbook  = "ingest-error-rate"
      query    = "(sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=\"${local.ingest}\",response_code_class=\"5xx\"}[5m])) / sum(rate(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",service_name=\"${local.ingest}\"}[5m]))) > ${var.alerting.ingest_error_rate} or (sum(rate(http_requests_total{namespace=\"edp\",code=~\"5..\"}[5m])) / sum(rate(http_requests_total{namespace=\"edp\"}[5m]))) > ${var.alerting.ingest_error_rate}"
    }
    data-freshness = {
      severity = "CRITICAL"
      duration = "0s"
      doc      = "A raw table's newest ingested_at is more than ${var.alerting.freshness_minutes} minutes old, or the freshness probe itself stopped reporting."
      runbook  = "data-freshness"
      query    = "max by (table) (max_over_time(workload_googleapis_com:data_freshness_minutes[10m])) > ${var.alerting.freshness_minutes} or absent_over_time(workload_googleapis_com:data_freshness_minutes[20m])"
    }
    pipeline-failed = {
      severity = "WARNING"
      duration = "0s"
      doc      = "A pipeline run failed: the daily ETL workflow, an ETL model or a cdc_flush invocation."
      runbook  = "pipeline-failed"
      query    = "sum(increase(workflows_googleapis_com:finished_execution_count{monitored_resource=\"workflows.googleapis.com/Workflow\",status=\"FAILED\"}[10m])) > 0 or sum by (pipeline, task) (increase(workload_googleapis_com:pipeline_runs_total{status=\"failed\"}[10m])) > 0"
    }
    pod-restarts = {
      severity = "WARNING"
      duration = "0s"
      doc      = "A platform pod restarted more than ${var.alerting.pod_restarts_per_hour} times in an hour."
      runbook  = "pod-restarts"
      query    = "max by (pod_name) (increase(kubernetes_io:container_restart_count{monitored_resource=\"k8s_container\",namespace_name=\"edp\"}[1h])) > ${var.alerting.pod_restarts_per_hour}"
    }
    cdc-lag = {
      severity = "WARNING"
      duration = "300s"
      doc      = "CDC replication lag (source commit to raw.cdc_*) P99 is over its ${var.alerting.cdc_lag_seconds} s SLA for 5 minutes."
      runbook  = "cdc-lag"
      query    = "histogram_quantile(0.99, sum by (le) (rate(workload_googleapis_com:cdc_replication_lag_seconds_bucket[5m]))) > ${var.alerting.cdc_lag_seconds}"
    }
    dead-letters = {
      severity = "WARNING"
      duration = "0s"
      doc      = "Messages reached a dead-letter topic (${local.dead_letter_topics}) in the last 15 minutes."
      runbook  = "dead-letters"
      query    = "sum(increase(pubsub_googleapis_com:topic_send_message_operation_count{monitored_resource=\"pubsub_topic\",topic_id=~\"${local.dead_letter_topics}\"}[15m])) > 0 or sum by (subscription, error_type) (increase(workload_googleapis_com:cdc_dead_letter_total[15m])) > 0"
    }
    quality-check-failing = {
      severity = "WARNING"
      duration = "0s"
      doc      = "A data-quality check fails (data_quality_check_status 2 = fail, 3 = error). The quality agent posts the incident and its report to Slack; details in monitoring.data_quality_checks (docs/quality.md: Runbook)."
      runbook  = "quality-check-failing"
      query    = "max by (table, check_name) (workload_googleapis_com:data_quality_check_status) >= 2"
    }
    bigquery-daily-cost = {
      severity = "WARNING"
      duration = "0s"
      doc      = "BigQuery on-demand spend over the last 24 h exceeds $${var.alerting.daily_bigquery_cost_usd} (typically a query without a partition filter)."
      runbook  = "bigquery-daily-cost"
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
    content   = "${each.value.doc}\n\nRunbook: [${each.key}](${local.runbook}#${each.value.runbook})"
    mime_type = "text/markdown"
  }

  alert_strategy {
    auto_close = "1800s"
  }

  notification_channels = each.value.severity == "CRITICAL" ? local.critical_channels : local.warning_channels
}

# Eight dashboards, one JSON file each (the same files `edp dev` renders locally).
resource "google_monitoring_dashboard" "dashboard" {
  for_each       = fileset("${path.module}/dashboards", "*.json")
  project        = var.project_id
  dashboard_json = file("${path.module}/dashboards/${each.value}")
}
