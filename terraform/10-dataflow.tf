# Stage 10: the Dataflow path of the Beam stream-load job (var.stream_load.runner = "dataflow"),
# beside the Flink one in 08-gke.tf. One image (beam/dataflow.Dockerfile) is both the Flex
# Template launcher and the SDK worker container; the template spec lives in the job's bucket;
# the job runs as its own service account with only the rights the pipeline uses.
# Whoever applies this needs roles/iam.serviceAccountUser on that account (launching a job as it).

locals {
  dataflow         = var.stream_load.runner == "dataflow"
  dataflow_image   = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}/beam-dataflow:${lookup(var.image_tags, "beam", "latest")}"
  dataflow_sa      = local.dataflow ? "serviceAccount:${google_service_account.dataflow[0].email}" : null
  dataflow_bucket  = "${var.project_id}-${local.prefix}-dataflow"
  bigquery_xlang   = "/opt/beam/jars/beam-sdks-java-io-google-cloud-platform-expansion-service.jar"
  dataflow_roles   = ["roles/dataflow.worker", "roles/monitoring.metricWriter", "roles/logging.logWriter"]
  stream_load_name = "edp-stream-load"

  # The job's own flags (edp_stream_load.options); project, region, temp/staging locations and
  # the worker image come from the launch itself.
  dataflow_parameters = {
    subscription               = google_pubsub_subscription.subscription["events-loader"].id
    sink                       = "bigquery"
    bigquery_expansion_service = local.bigquery_xlang
    allowed_lateness_seconds   = tostring(var.stream_load.allowed_lateness_seconds)
  }
  flex_template_spec = {
    image   = local.dataflow_image
    sdkInfo = { language = "PYTHON" }
    metadata = {
      name        = "edp stream load"
      description = "Pub/Sub events -> BigQuery raw.user_events (+ raw.user_events_errors)."
      streaming   = true
      parameters = [
        for name in keys(local.dataflow_parameters) : {
          name       = name
          label      = name
          helpText   = "edp_stream_load --${name} (python -m edp_stream_load --help)."
          isOptional = name != "subscription"
        }
      ]
    }
  }
}

resource "google_project_service" "dataflow" {
  count              = local.dataflow ? 1 : 0
  project            = var.project_id
  service            = "dataflow.googleapis.com"
  disable_on_destroy = false
}

resource "google_service_account" "dataflow" {
  count        = local.dataflow ? 1 : 0
  project      = var.project_id
  account_id   = "${local.prefix}-dataflow"
  display_name = "${local.prefix} dataflow"
  description  = "Dataflow stream load (launcher and workers): reads events, writes raw."
}

# Project level: only the roles that cannot be granted on a narrower resource.
resource "google_project_iam_member" "dataflow" {
  for_each = toset(local.dataflow ? local.dataflow_roles : [])
  project  = var.project_id
  role     = each.value
  member   = local.dataflow_sa
}

resource "google_pubsub_subscription_iam_member" "dataflow" {
  for_each     = toset(local.dataflow ? ["roles/pubsub.subscriber", "roles/pubsub.viewer"] : [])
  project      = var.project_id
  subscription = google_pubsub_subscription.subscription["events-loader"].name
  role         = each.value
  member       = local.dataflow_sa
}

resource "google_bigquery_dataset_iam_member" "dataflow" {
  count      = local.dataflow ? 1 : 0
  project    = var.project_id
  dataset_id = google_bigquery_dataset.layer["raw"].dataset_id
  role       = "roles/bigquery.dataEditor"
  member     = local.dataflow_sa
}

resource "google_artifact_registry_repository_iam_member" "dataflow" {
  count      = local.dataflow ? 1 : 0
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = local.dataflow_sa
}

# Temp and staging files of the job, and the template spec.
resource "google_storage_bucket" "dataflow" {
  count                       = local.dataflow ? 1 : 0
  project                     = var.project_id
  name                        = local.dataflow_bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  labels                      = local.labels

  versioning {
    enabled = true
  }

  logging {
    log_bucket = google_storage_bucket.access_logs.name
  }

  lifecycle_rule {
    condition {
      age = 14
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

resource "google_storage_bucket_iam_member" "dataflow" {
  count  = local.dataflow ? 1 : 0
  bucket = google_storage_bucket.dataflow[0].name
  role   = "roles/storage.objectAdmin"
  member = local.dataflow_sa
}

resource "google_storage_bucket_object" "flex_template" {
  count        = local.dataflow ? 1 : 0
  bucket       = google_storage_bucket.dataflow[0].name
  name         = "templates/stream-load.json"
  content_type = "application/json"
  content      = jsonencode(local.flex_template_spec)
}

resource "google_dataflow_flex_template_job" "stream_load" {
  count                   = local.dataflow ? 1 : 0
  provider                = google-beta
  project                 = var.project_id
  region                  = var.region
  name                    = local.stream_load_name
  container_spec_gcs_path = "gs://${google_storage_bucket.dataflow[0].name}/${google_storage_bucket_object.flex_template[0].name}"
  parameters              = local.dataflow_parameters
  sdk_container_image     = local.dataflow_image
  service_account_email   = google_service_account.dataflow[0].email
  temp_location           = "gs://${google_storage_bucket.dataflow[0].name}/tmp"
  staging_location        = "gs://${google_storage_bucket.dataflow[0].name}/staging"
  subnetwork              = google_compute_subnetwork.gke.self_link
  ip_configuration        = "WORKER_IP_PRIVATE"
  enable_streaming_engine = true
  max_workers             = var.stream_load.dataflow_max_workers
  machine_type            = var.stream_load.dataflow_machine_type
  kms_key_name            = var.kms_key_name
  labels                  = local.labels
  # A template change updates the running job in place; destroying drains it (no data lost).
  on_delete = "drain"

  depends_on = [
    google_project_service.dataflow,
    google_project_iam_member.dataflow,
    google_pubsub_subscription_iam_member.dataflow,
    google_bigquery_dataset_iam_member.dataflow,
    google_storage_bucket_iam_member.dataflow,
    google_artifact_registry_repository_iam_member.dataflow,
  ]
}
