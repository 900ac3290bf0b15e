# One Cloud Run function (2nd gen) built from the shared source archive. Every function of the
# platform is this module with another entry point, service account, environment and sizing.

resource "google_cloudfunctions2_function" "function" {
  #checkov:skip=CKV_GCP_124: ingress is a variable; only the public ingest endpoint (apps call it from the internet, write-key auth in-app) sets ALLOW_ALL, the others are ALLOW_INTERNAL_ONLY.
  project     = var.project_id
  location    = var.region
  name        = var.name
  description = var.description
  labels      = var.labels

  build_config {
    runtime     = "python311"
    entry_point = var.entry_point
    source {
      storage_source {
        bucket = var.source_bucket
        object = var.source_object
      }
    }
  }

  service_config {
    service_account_email            = var.service_account_email
    min_instance_count               = var.sizing.min_instances
    max_instance_count               = var.sizing.max_instances
    max_instance_request_concurrency = var.sizing.concurrency
    available_cpu                    = var.sizing.cpu
    available_memory                 = var.sizing.memory
    timeout_seconds                  = var.sizing.timeout_s
    ingress_settings                 = var.ingress
    all_traffic_on_latest_revision   = true
    environment_variables            = var.environment

    dynamic "secret_environment_variables" {
      for_each = var.secret_environment
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = secret_environment_variables.value
        version    = "latest"
      }
    }
  }
}

resource "google_cloud_run_service_iam_member" "member" {
  for_each = merge([
    for role, members in var.iam : { for m in members : "${role}|${m}" => { role = role, member = m } }
  ]...)
  project  = var.project_id
  location = var.region
  service  = google_cloudfunctions2_function.function.service_config[0].service
  role     = each.value.role
  member   = each.value.member
}
