# Stage 5: secrets. Terraform creates the containers and who may read them; the values are added
# out of band (README "Deploy", step 4) so no secret ever sits in tfvars, state or the repo.

locals {
  secrets = {
    ingest-write-keys    = { description = "Comma-separated ingest write keys (EDP_WRITE_KEYS).", readers = [local.sa.ingest, local.sa.collector] }
    slack-webhook-url    = { description = "Slack incoming webhook of the alert channel.", readers = [local.sa.etl] }
    slack-auth-token     = { description = "Slack bot token for the Cloud Monitoring Slack channels.", readers = [] }
    debezium-db-password = { description = "Password of the Debezium replication user on Cloud SQL.", readers = [local.sa.debezium] }
    # The data-quality agent's incident messages, one webhook (channel) per severity.
    slack-webhook-critical = { description = "Slack incoming webhook of the critical channel (EDP_SLACK_WEBHOOK_CRITICAL).", readers = [local.sa.quality] }
    slack-webhook-warning  = { description = "Slack incoming webhook of the warning channel (EDP_SLACK_WEBHOOK_WARNING).", readers = [local.sa.quality] }
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
