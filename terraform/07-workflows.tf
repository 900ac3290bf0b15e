# Stage 7: orchestration. Cloud Workflows runs workflows/daily_etl.yaml (plain YAML, values via
# sys.get_env, never templated); Cloud Scheduler starts it at 03:00 Asia/Seoul and drives the CDC
# flush cadence.

resource "google_workflows_workflow" "daily_etl" {
  project         = var.project_id
  region          = var.region
  name            = "${local.prefix}-daily-etl"
  description     = "Daily ETL: raw -> staging -> marts for one date (default yesterday, Asia/Seoul)."
  service_account = google_service_account.workload["workflows"].id
  source_contents = file("${path.module}/../workflows/daily_etl.yaml")
  call_log_level  = "LOG_ERRORS_ONLY"
  labels          = local.labels
  crypto_key_name = var.kms_key_name

  user_env_vars = {
    ETL_URL       = module.function["etl"].uri
    ETL_TIME_ZONE = var.etl_time_zone
  }

  depends_on = [google_project_service.apis]
}

resource "google_project_iam_member" "scheduler_invokes_workflows" {
  project = var.project_id
  role    = "roles/workflows.invoker"
  member  = local.sa.scheduler
}

resource "google_cloud_scheduler_job" "daily_etl" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-daily-etl"
  description = "Starts the daily ETL workflow."
  schedule    = var.etl_schedule
  time_zone   = var.etl_time_zone

  retry_config {
    retry_count          = 2
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = "https://workflowexecutions.googleapis.com/v1/${google_workflows_workflow.daily_etl.id}/executions"
    body        = base64encode(jsonencode({ argument = jsonencode({}), callLogLevel = "LOG_ERRORS_ONLY" }))
    oauth_token {
      service_account_email = google_service_account.workload["scheduler"].email
      scope                 = "https://www.googleapis.com/auth/cloud-platform"
    }
  }
}

resource "google_cloud_scheduler_job" "cdc_flush" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-cdc-flush"
  description = "Runs cdc_flush, which drains the CDC subscriptions for up to its timeout."
  schedule    = var.cdc_flush_schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 0 # the next tick is the retry
  }

  http_target {
    http_method = "POST"
    uri         = module.function["cdc_flush"].uri
    oidc_token {
      service_account_email = google_service_account.workload["scheduler"].email
      audience              = module.function["cdc_flush"].uri
    }
  }
}

# The freshness probe: now minus the newest ingested_at per raw table, written as the
# data_freshness_minutes gauge the freshness alert watches (edp.etl.freshness).
resource "google_cloud_scheduler_job" "freshness_probe" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-freshness-probe"
  description = "Calls the etl function's freshness probe (data_freshness_minutes per raw table)."
  schedule    = var.freshness_probe_schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 0 # the next tick is the retry
  }

  http_target {
    http_method = "POST"
    uri         = "${module.function["etl"].uri}/freshness"
    oidc_token {
      service_account_email = google_service_account.workload["scheduler"].email
      audience              = module.function["etl"].uri
    }
  }
}
