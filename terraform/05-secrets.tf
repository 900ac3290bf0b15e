# Stage 5: secrets. Terraform creates the containers and who may read them; the values are added
# out of band (README "Deploy", step 4) so no secret value ever sits in tfvars, state or the repo
# (the one exception the Google provider forces, the Slack bot token of Cloud Monitoring's
# notification channels, is a sensitive variable: 09-monitoring.tf).

locals {
  secrets = {
    ingest-write-keys    = { description = "Comma-separated ingest write keys (EDP_WRITE_KEYS).", readers = [local.sa.ingest, local.sa.collector] }
    debezium-db-password = { description = "Password of the Debezium replication user on Cloud SQL.", readers = [local.sa.debezium] }
    # One webhook (channel) per severity: the quality agent's incidents go to either, the SQL
    # reviewer's daily cost report to the warning channel.
    slack-webhook-critical = { description = "Slack incoming webhook of the critical channel (EDP_SLACK_WEBHOOK_CRITICAL).", readers = [local.sa.quality] }
    slack-webhook-warning  = { description = "Slack incoming webhook of the warning channel (EDP_SLACK_WEBHOOK_WARNING).", readers = [local.sa.quality, local.sa["sql-review"]] }
  }
}

resource "google_secret_manager_secret" "secret" {
  for_each  = local.secrets
  project   = var.project_id
  secret_id = "${local.prefix}-${each.key}"
  labels    = local.labels

  replication {
    user_managed {
      replicas {
        location = var.region
        dynamic "customer_managed_encryption" {
          for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
          content {
            kms_key_name = customer_managed_encryption.value
          }
        }
      }
    }
  }
  depends_on = [google_project_service.apis]
}

resource "google_secret_manager_secret_iam_member" "reader" {
  for_each = merge([
    for name, s in local.secrets : { for m in s.readers : "${name}|${m}" => { secret = name, member = m } }
  ]...)
  project   = var.project_id
  secret_id = google_secret_manager_secret.secret[each.value.secret].secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = each.value.member
}

# First values without a second apply and without the values in state: on the first apply, pass
# the names in bootstrap_secrets and the values in the ephemeral secret_values (TF_VAR_*); the
# provider writes them as write-only data (Terraform >= 1.11), so Cloud Run finds a version to
# mount when it creates the functions in the same apply. Later applies drop the names: the
# versions are abandoned in Secret Manager, not destroyed. Rotate with `gcloud secrets versions
# add` (README "Deploy").
resource "google_secret_manager_secret_version" "bootstrap" {
  for_each               = var.bootstrap_secrets
  secret                 = google_secret_manager_secret.secret[each.key].id
  secret_data_wo         = var.secret_values[each.key]
  secret_data_wo_version = 1
  deletion_policy        = "ABANDON"
}
