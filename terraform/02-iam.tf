# Stage 2: one service account per workload, each with only the roles its code uses.
# Bindings are declared as {role => [members]} maps next to the resource they grant on; the
# project-level ones live here. No key is ever created: Cloud Run uses the attached account,
# GKE workloads use Workload Identity.

locals {
  service_accounts = {
    ingest    = "Cloud Run function ingest: validates events and publishes them."
    cdc-flush = "Cloud Run function cdc_flush: drains CDC subscriptions into raw.cdc_*."
    etl       = "Cloud Run function etl: runs the SQL models for a date."
    quality   = "Cloud Run function quality_check: data-quality checks, reports and Slack alerts."
    workflows = "Cloud Workflows daily_etl: calls the etl function with OIDC."
    scheduler = "Cloud Scheduler: starts the workflow and the CDC flush."
    gke-nodes = "GKE node pools: logs, metrics and image pulls only."
    collector = "GKE event collector (Workload Identity): same rights as ingest."
    debezium  = "GKE Debezium Server (Workload Identity): reads Cloud SQL, publishes CDC topics."
    beam      = "GKE Flink/Beam stream load (Workload Identity): reads events, writes raw."

    # SQL cost review: dry runs (jobUser + dataViewer on the datasets, 03-bigquery.tf), the
    # project's job history (resourceViewer: INFORMATION_SCHEMA.JOBS_BY_PROJECT needs
    # bigquery.jobs.listAll), the Slack webhook secret (05-secrets.tf).
    sql-review = "Cloud Run function sql_review: dry-runs SQL, reviews the day's costly jobs."
  }

  sa = { for k, v in google_service_account.workload : k => "serviceAccount:${v.email}" }

  # Project-level roles: only those that cannot be granted on a narrower resource.
  project_iam = {
    "roles/bigquery.jobUser"        = [local.sa["cdc-flush"], local.sa.etl, local.sa.beam, local.sa["sql-review"], local.sa.quality]
    "roles/bigquery.resourceViewer" = [local.sa["sql-review"]] # INFORMATION_SCHEMA.JOBS_BY_PROJECT
    "roles/monitoring.metricWriter" = [local.sa.ingest, local.sa["cdc-flush"], local.sa.etl, local.sa["gke-nodes"], local.sa.collector, local.sa.debezium, local.sa.beam, local.sa["sql-review"], local.sa.quality]
    "roles/logging.logWriter"       = [local.sa.ingest, local.sa["cdc-flush"], local.sa.etl, local.sa.workflows, local.sa["gke-nodes"], local.sa["sql-review"], local.sa.quality]
    # quality_check asks Gemini on Vertex AI for incident reports (generateContent).
    "roles/aiplatform.user"                     = [local.sa.quality]
    "roles/monitoring.viewer"                   = [local.sa["gke-nodes"]]
    "roles/cloudtrace.agent"                    = [local.sa.ingest, local.sa.collector, local.sa["cdc-flush"], local.sa.etl]
    "roles/stackdriver.resourceMetadata.writer" = [local.sa["gke-nodes"]]
    "roles/cloudsql.client"                     = [local.sa.debezium]
  }

  # Kubernetes service accounts (namespace/name) bound to Google service accounts.
  workload_identity = {
    collector = "edp/event-collector"
    debezium  = "edp/debezium-server"
    beam      = "edp/flink"
  }

  pubsub_service_agent = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_service_account" "workload" {
  for_each     = local.service_accounts
  project      = var.project_id
  account_id   = "${local.prefix}-${each.key}"
  display_name = "${local.prefix} ${each.key}"
  description  = each.value
}

resource "google_project_iam_member" "workload" {
  for_each = merge([
    for role, members in local.project_iam : { for m in members : "${role}|${m}" => { role = role, member = m } }
  ]...)
  project = var.project_id
  role    = each.value.role
  member  = each.value.member
}

resource "google_service_account_iam_member" "workload_identity" {
  for_each           = local.workload_identity
  service_account_id = google_service_account.workload[each.key].name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${each.value}]"
}
