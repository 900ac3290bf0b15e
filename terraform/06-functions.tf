# Stage 6: the Cloud Run functions (2nd gen), all built from one archive of functions/
# (the edp package + main.py + requirements.txt) and told what to do by environment variables
# that map 1:1 onto edp.settings.Settings.

locals {
  common_env = {
    GOOGLE_CLOUD_PROJECT           = var.project_id
    EDP_REGION                     = var.region
    EDP_ENVIRONMENT                = var.environment
    EDP_WAREHOUSE                  = "bigquery"
    EDP_BIGQUERY_LOCATION          = var.bigquery_location
    EDP_DATASET_RAW                = local.datasets.raw
    EDP_DATASET_STAGING            = local.datasets.staging
    EDP_DATASET_MART               = local.datasets.mart
    EDP_DATASET_MONITORING         = local.datasets.monitoring
    EDP_MAXIMUM_BYTES_BILLED       = tostring(var.maximum_bytes_billed)
    EDP_METRICS_EXPORTER           = "cloud_monitoring"
    EDP_TRACES_EXPORTER            = "cloud_trace"
    EDP_TOPIC_EVENTS               = var.pubsub.topic_events
    EDP_TOPIC_BAD_EVENTS           = var.pubsub.topic_bad_events
    EDP_TOPIC_EVENTS_DEAD_LETTER   = var.pubsub.topic_events_dead_letter
    EDP_SUBSCRIPTION_EVENTS_LOADER = var.pubsub.subscription_events_loader
    EDP_CDC_TOPIC_PREFIX           = var.pubsub.cdc_topic_prefix
    EDP_CDC_DEAD_LETTER_TOPIC      = var.pubsub.cdc_dead_letter_topic
    EDP_CDC_SUBSCRIPTION_PREFIX    = var.pubsub.cdc_subscription_prefix
    EDP_CDC_TABLES                 = join(",", local.cdc_tables)
    EDP_MAX_DELIVERY_ATTEMPTS      = tostring(var.pubsub.max_delivery_attempts)
  }

  functions = {
    ingest = {
      entry_point = "ingest"
      description = "HTTPS event ingest (native + Segment-compatible API); publishes to Pub/Sub."
      sa          = "ingest"
      env = {
        EDP_CORS_ORIGINS        = join(",", var.cors_origins)
        EDP_TRACES_SAMPLE_RATIO = tostring(var.ingest_trace_sample_ratio)
      }
      secrets = { EDP_WRITE_KEYS = google_secret_manager_secret.secret["ingest-write-keys"].secret_id }
      ingress = "ALLOW_ALL"
      # Public on purpose: apps call it directly; the write key is checked in the app.
      iam = { "roles/run.invoker" = ["allUsers"] }
    }
    cdc_flush = {
      entry_point = "cdc_flush"
      description = "Drains the Debezium CDC subscriptions into raw.cdc_* (flush at N rows or T seconds)."
      sa          = "cdc-flush"
      env         = {}
      secrets     = {}
      ingress     = "ALLOW_INTERNAL_ONLY"
      iam         = { "roles/run.invoker" = [local.sa.scheduler] }
    }
    etl = {
      entry_point = "etl"
      description = "Runs one SQL model or layer for a date; records the run in monitoring.pipeline_runs."
      sa          = "etl"
      env         = { EDP_ETL_TIMEZONE = var.etl_time_zone }
      secrets     = {}
      ingress     = "ALLOW_INTERNAL_ONLY"
      # workflows runs the models; scheduler calls the freshness probe (POST /freshness)
      iam = { "roles/run.invoker" = [local.sa.workflows, local.sa.scheduler] }
    }
    sql_review = {
      entry_point = "sql_review"
      description = "SQL cost review: POST a query for priced findings; daily, reviews the costliest jobs and reports to Slack."
      sa          = "sql-review"
      env = {
        EDP_SQL_REVIEW_USD_PER_TIB = tostring(var.alerting.bigquery_usd_per_tib)
        EDP_SQL_REVIEW_TOP_JOBS    = tostring(var.sql_review.top_jobs)
      }
      secrets = { EDP_SLACK_WEBHOOK_WARNING = google_secret_manager_secret.secret["slack-webhook-warning"].secret_id }
      ingress = "ALLOW_INTERNAL_ONLY"
      iam     = { "roles/run.invoker" = [local.sa.scheduler] }
    }
    # --- data-quality agent ---
    quality_check = {
      entry_point = "quality_check"
      description = "Runs every declared data-quality check, stores results, reports and alerts incidents."
      sa          = "quality"
      env = {
        EDP_QUALITY_LLM          = var.quality.llm
        EDP_QUALITY_LLM_MODEL    = var.quality.llm_model
        EDP_QUALITY_LLM_LOCATION = var.quality.llm_location
      }
      # Secret Manager references: the webhook URLs never enter the Terraform state.
      secrets = {
        EDP_SLACK_WEBHOOK_CRITICAL = google_secret_manager_secret.secret["slack-webhook-critical"].secret_id
        EDP_SLACK_WEBHOOK_WARNING  = google_secret_manager_secret.secret["slack-webhook-warning"].secret_id
      }
      ingress = "ALLOW_INTERNAL_ONLY"
      iam     = { "roles/run.invoker" = [local.sa.scheduler] }
    }
  }
}

resource "google_storage_bucket" "artifacts" {
  project                     = var.project_id
  name                        = "${var.project_id}-${local.prefix}-artifacts"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false
  labels                      = local.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 5
    }
    action {
      type = "Delete"
    }
  }

  dynamic "encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      default_kms_key_name = encryption.value
    }
  }
}

# Access logs of the platform's buckets (a log bucket cannot log to itself).
resource "google_storage_bucket" "access_logs" {
  #checkov:skip=CKV_GCP_62: this is the access-log sink of the other buckets; logging it to itself is refused by GCS.
  project                     = var.project_id
  name                        = "${var.project_id}-${local.prefix}-access-logs"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }
}

# The deployed archive: functions/main.py, functions/requirements.txt and the production package
# functions/edp/ — nothing else. The laptop tooling (functions/edp_tools/) and build leftovers
# are excluded; tests/deploy builds the archive with these exact rules, installs only its
# requirements.txt into a clean venv and serves every entry point from it.
data "archive_file" "functions" {
  type        = "zip"
  source_dir  = "${path.module}/../functions"
  output_path = "${path.module}/.build/functions.zip"
  # Glob patterns (archive provider >= 2.5.0), matched against each path relative to source_dir;
  # a matching directory is skipped whole.
  excludes = [
    "edp_tools",
    "edp_tools/**",
    "*.egg-info",
    "*.egg-info/**",
    "**/__pycache__",
    "**/__pycache__/**",
    "**/*.pyc",
  ]
}

resource "google_storage_bucket_object" "functions" {
  # The content hash in the name makes every code change a new object, so Terraform redeploys.
  name   = "functions/${data.archive_file.functions.output_sha256}.zip"
  bucket = google_storage_bucket.artifacts.name
  source = data.archive_file.functions.output_path
}

module "function" {
  source   = "./modules/cloud-function"
  for_each = local.functions

  project_id            = var.project_id
  region                = var.region
  name                  = "${local.prefix}-${replace(each.key, "_", "-")}"
  entry_point           = each.value.entry_point
  description           = each.value.description
  source_bucket         = google_storage_bucket.artifacts.name
  source_object         = google_storage_bucket_object.functions.name
  service_account_email = google_service_account.workload[each.value.sa].email
  environment           = merge(local.common_env, each.value.env, var.functions[each.key].extra_environment)
  secret_environment    = each.value.secrets
  sizing = {
    min_instances = var.functions[each.key].min_instances
    max_instances = var.functions[each.key].max_instances
    concurrency   = var.functions[each.key].concurrency
    cpu           = var.functions[each.key].cpu
    memory        = var.functions[each.key].memory
    timeout_s     = var.functions[each.key].timeout_s
  }
  ingress = each.value.ingress
  iam     = each.value.iam
  labels  = local.labels

  depends_on = [google_project_service.apis, google_secret_manager_secret_iam_member.reader, google_secret_manager_secret_version.bootstrap]
}

# The scheduled SQL cost review: once a day, the previous UTC day's most expensive jobs.
resource "google_cloud_scheduler_job" "sql_review" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-sql-review"
  description = "Reviews the previous day's most expensive BigQuery jobs and posts to Slack."
  schedule    = var.sql_review.schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count          = 2
    min_backoff_duration = "60s"
    max_backoff_duration = "600s"
  }

  http_target {
    http_method = "POST"
    uri         = module.function["sql_review"].uri
    headers     = { "Content-Type" = "application/json" }
    body        = base64encode(jsonencode({ mode = "scheduled" }))
    oidc_token {
      service_account_email = google_service_account.workload["scheduler"].email
      audience              = module.function["sql_review"].uri
    }
  }
}

# --- data-quality agent: every 30 minutes (OIDC, like cdc_flush) ----------------------------
resource "google_cloud_scheduler_job" "quality_check" {
  project     = var.project_id
  region      = var.region
  name        = "${local.prefix}-quality-check"
  description = "Runs quality_check: every declared data-quality check, incident reports, Slack."
  schedule    = var.quality.schedule
  time_zone   = "Etc/UTC"

  retry_config {
    retry_count = 0 # the next run 30 minutes later is the retry
  }

  http_target {
    http_method = "POST"
    uri         = module.function["quality_check"].uri
    oidc_token {
      service_account_email = google_service_account.workload["scheduler"].email
      audience              = module.function["quality_check"].uri
    }
  }
}
