# Stage 3: the warehouse. Four datasets, and every table of schemas/tables/ with the
# partitioning, clustering, expiry and partition-filter rule its YAML declares. Field lists come
# from the generated schemas/bigquery/<dataset>/<table>.json (drift-tested against the YAML).

locals {
  dataset_meta = yamldecode(file("${path.module}/../schemas/datasets.yaml"))

  # {role => [members]} per dataset: writers write, readers read, nothing project-wide.
  dataset_iam = {
    raw = {
      "roles/bigquery.dataEditor" = [local.sa["cdc-flush"], local.sa.beam]
      "roles/bigquery.dataViewer" = [local.sa.etl]
    }
    staging = {
      # cdc_flush keeps the CDC current-state tables (MERGE after each run, periodic rebuild).
      "roles/bigquery.dataEditor" = [local.sa.etl, local.sa["cdc-flush"]]
    }
    mart = {
      "roles/bigquery.dataEditor" = [local.sa.etl]
    }
    monitoring = {
      "roles/bigquery.dataEditor" = [local.sa.etl]
    }
  }
}

resource "google_bigquery_dataset" "layer" {
  for_each    = local.datasets
  project     = var.project_id
  dataset_id  = each.value
  location    = var.bigquery_location
  description = try(local.dataset_meta.datasets[each.key].description, "EDP ${each.key} layer")
  labels      = merge(local.labels, { layer = each.key })

  default_table_expiration_ms     = try(local.dataset_meta.datasets[each.key].default_table_expiration_days * 86400000, null)
  default_partition_expiration_ms = try(local.dataset_meta.datasets[each.key].default_partition_expiration_days * 86400000, null)
  delete_contents_on_destroy      = false

  dynamic "default_encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = default_encryption_configuration.value
    }
  }

  depends_on = [google_project_service.apis]
}

resource "google_bigquery_dataset_iam_member" "layer" {
  for_each = merge([
    for layer, roles in local.dataset_iam : merge([
      for role, members in roles : { for m in members : "${layer}|${role}|${m}" => { layer = layer, role = role, member = m } }
    ]...)
  ]...)
  project    = var.project_id
  dataset_id = google_bigquery_dataset.layer[each.value.layer].dataset_id
  role       = each.value.role
  member     = each.value.member
}

resource "google_bigquery_table" "table" {
  for_each    = local.tables
  project     = var.project_id
  dataset_id  = google_bigquery_dataset.layer[each.value.dataset].dataset_id
  table_id    = each.value.name
  description = each.value.description
  schema      = file("${path.module}/../schemas/bigquery/${each.value.dataset}/${each.value.name}.json")
  clustering  = length(try(each.value.clustering, [])) > 0 ? each.value.clustering : null
  labels      = merge(local.labels, { layer = each.value.dataset }, try(each.value.labels, {}))

  require_partition_filter = try(each.value.partitioning.require_partition_filter, false)

  dynamic "time_partitioning" {
    for_each = try(each.value.partitioning, null) == null ? [] : [each.value.partitioning]
    content {
      type          = try(time_partitioning.value.type, "DAY")
      field         = time_partitioning.value.field
      expiration_ms = try(time_partitioning.value.expiration_days, null) == null ? null : time_partitioning.value.expiration_days * 86400000
    }
  }

  dynamic "encryption_configuration" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      kms_key_name = encryption_configuration.value
    }
  }

  deletion_protection = true
}
