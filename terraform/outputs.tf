output "ingest_url" {
  description = "Public HTTPS endpoint apps send events to (POST /v1/events, Segment-compatible /v1/*)."
  value       = module.function["ingest"].uri
}

output "function_urls" {
  description = "URL of every Cloud Run function."
  value       = { for k, m in module.function : k => m.uri }
}

output "service_accounts" {
  description = "Email of each workload's service account."
  value       = { for k, v in google_service_account.workload : k => v.email }
}

output "datasets" {
  description = "BigQuery dataset id of each layer."
  value       = { for k, v in google_bigquery_dataset.layer : k => v.dataset_id }
}

output "tables" {
  description = "Every BigQuery table created from schemas/tables."
  value       = sort([for k, v in google_bigquery_table.table : "${v.dataset_id}.${v.table_id}"])
}

output "topics" {
  description = "Pub/Sub topic names."
  value       = { for k, v in google_pubsub_topic.topic : k => v.name }
}

output "gke_cluster" {
  description = "GKE cluster name (gcloud container clusters get-credentials ...)."
  value       = google_container_cluster.platform.name
}

output "artifact_registry" {
  description = "Docker repository for the collector, Beam and Debezium images."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "workflow" {
  description = "Daily ETL workflow id."
  value       = google_workflows_workflow.daily_etl.id
}
