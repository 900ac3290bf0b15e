# Stage 0: project services and the shared locals every other file reads.

locals {
  prefix = "edp-${var.environment}"
  labels = merge({ platform = "edp", environment = var.environment, managed-by = "terraform" }, var.labels)

  # The code's logical layer names -> physical dataset ids (edp.settings dataset_*).
  datasets = {
    raw        = var.datasets.raw
    staging    = var.datasets.staging
    mart       = var.datasets.mart
    monitoring = var.datasets.monitoring
  }

  # Every table comes from schemas/tables/<dataset>/<table>.yaml: the one definition the code,
  # DuckDB and the docs also read (no second copy of a schema lives in Terraform).
  schemas_dir = "${path.module}/../schemas/tables"
  tables = {
    for f in fileset(local.schemas_dir, "*/*.yaml") :
    trimsuffix(replace(f, "/", "."), ".yaml") => merge(
      yamldecode(file("${local.schemas_dir}/${f}")),
      { dataset = dirname(f), name = trimsuffix(basename(f), ".yaml") }
    )
  }

  # Captured source tables (schema.table): every raw change log declares its source with
  # `cdc_source`, so adding a table to CDC is one YAML file (topics, subscriptions, grants and the
  # flush's EDP_CDC_TABLES follow).
  cdc_tables = sort([for ref, t in local.tables : t.cdc_source if try(t.cdc_source, null) != null])
}

resource "google_project_service" "apis" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    # the cluster's binary_authorization setting (08-gke.tf) needs the API enabled
    "binaryauthorization.googleapis.com",
    "bigquery.googleapis.com",
    "bigquerystorage.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "container.googleapis.com",
    "eventarc.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
    "workflowexecutions.googleapis.com",
    "workflows.googleapis.com",
    "aiplatform.googleapis.com",
  ])
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

data "google_project" "this" {
  project_id = var.project_id
}
