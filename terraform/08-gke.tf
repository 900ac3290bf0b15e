# Stage 8: the private GKE cluster that runs the event collector (HPA), Debezium Server and the
# Beam job on Flink, plus the Artifact Registry their images come from.

resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.region
  repository_id = "${local.prefix}-images"
  description   = "Container images: event collector, Beam job, Debezium Server."
  format        = "DOCKER"
  kms_key_name  = var.kms_key_name
  labels        = local.labels

  docker_config {
    immutable_tags = false
  }
  depends_on = [google_project_service.apis]
}

resource "google_artifact_registry_repository_iam_member" "reader" {
  for_each   = toset([local.sa["gke-nodes"]])
  project    = var.project_id
  location   = var.region
  repository = google_artifact_registry_repository.images.name
  role       = "roles/artifactregistry.reader"
  member     = each.value
}

resource "google_container_cluster" "platform" {
  #checkov:skip=CKV_GCP_12: NetworkPolicy is enforced by Dataplane V2 (ADVANCED_DATAPATH); the legacy Calico network_policy block cannot be combined with it.
  #checkov:skip=CKV_GCP_65: Google Groups for RBAC needs a Google Workspace domain; set var.gke_security_group to enable it (the block is rendered when set).
  provider = google-beta
  project  = var.project_id
  name     = "${local.prefix}-gke"
  location = var.region

  network         = google_compute_network.vpc.id
  subnetwork      = google_compute_subnetwork.gke.id
  networking_mode = "VPC_NATIVE"
  # Dataplane V2 enforces NetworkPolicy without the Calico add-on.
  datapath_provider = "ADVANCED_DATAPATH"

  # Node pools are managed below; the default one is removed at creation.
  remove_default_node_pool = true
  initial_node_count       = 1
  deletion_protection      = true

  ip_allocation_policy {
    cluster_secondary_range_name  = "pods"
    services_secondary_range_name = "services"
  }

  private_cluster_config {
    enable_private_nodes    = true
    enable_private_endpoint = false
    master_ipv4_cidr_block  = var.network.master_ipv4_cidr_block
    master_global_access_config {
      enabled = false
    }
  }

  master_authorized_networks_config {
    dynamic "cidr_blocks" {
      for_each = var.network.master_authorized_cidrs
      content {
        display_name = cidr_blocks.key
        cidr_block   = cidr_blocks.value
      }
    }
  }

  dynamic "authenticator_groups_config" {
    for_each = var.gke_security_group == null ? [] : [var.gke_security_group]
    content {
      security_group = authenticator_groups_config.value
    }
  }

  # Applies to the bootstrap pool that is removed at creation; the real pools set it too.
  node_config {
    workload_metadata_config {
      mode = "GKE_METADATA"
    }
    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }
  }

  # Secret Manager CSI driver: Debezium's DB password and the collector's write keys are mounted
  # from Secret Manager through Workload Identity, never stored as Kubernetes Secrets.
  secret_manager_config {
    enabled = true
  }

  workload_identity_config {
    workload_pool = "${var.project_id}.svc.id.goog"
  }

  release_channel {
    channel = "REGULAR"
  }

  binary_authorization {
    evaluation_mode = "PROJECT_SINGLETON_POLICY_ENFORCE"
  }

  enable_shielded_nodes       = true
  enable_intranode_visibility = true
  enable_legacy_abac          = false

  master_auth {
    client_certificate_config {
      issue_client_certificate = false
    }
  }

  # Managed Prometheus scrapes the collector's /metrics for the RPS-per-pod HPA metric.
  monitoring_config {
    enable_components = ["SYSTEM_COMPONENTS", "DEPLOYMENT", "HPA", "POD"]
    managed_prometheus {
      enabled = true
    }
  }

  logging_config {
    enable_components = ["SYSTEM_COMPONENTS", "WORKLOADS"]
  }

  addons_config {
    horizontal_pod_autoscaling {
      disabled = false
    }
    http_load_balancing {
      disabled = false
    }
  }

  dynamic "database_encryption" {
    for_each = var.kms_key_name == null ? [] : [var.kms_key_name]
    content {
      state    = "ENCRYPTED"
      key_name = database_encryption.value
    }
  }

  # Spelled out (not local.labels) so static checks can see the cluster is labelled.
  resource_labels = {
    platform    = "edp"
    environment = var.environment
    managed-by  = "terraform"
    component   = "gke"
  }
  depends_on = [google_project_service.apis]
}

resource "google_container_node_pool" "pool" {
  for_each = var.node_pools
  provider = google-beta
  project  = var.project_id
  name     = each.key
  location = var.region
  cluster  = google_container_cluster.platform.name

  autoscaling {
    total_min_node_count = each.value.min_nodes
    total_max_node_count = each.value.max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type      = each.value.machine_type
    spot              = each.value.spot
    image_type        = "COS_CONTAINERD"
    service_account   = google_service_account.workload["gke-nodes"].email
    oauth_scopes      = ["https://www.googleapis.com/auth/cloud-platform"]
    labels            = merge(local.labels, { pool = each.key })
    resource_labels   = local.labels
    boot_disk_kms_key = var.kms_key_name

    shielded_instance_config {
      enable_secure_boot          = true
      enable_integrity_monitoring = true
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }

    metadata = {
      disable-legacy-endpoints = "true"
    }

    dynamic "taint" {
      for_each = each.value.taint == null ? [] : [each.value.taint]
      content {
        key    = taint.value.key
        value  = taint.value.value
        effect = taint.value.effect
      }
    }
  }
}

# Flink checkpoints (the Pub/Sub acks ride on them) and savepoints.
resource "google_storage_bucket" "flink" {
  project                     = var.project_id
  name                        = "${var.project_id}-${local.prefix}-flink"
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

locals {
  flink_bucket_iam = { "roles/storage.objectAdmin" = [local.sa.beam] }
}

resource "google_storage_bucket_iam_member" "flink" {
  for_each = merge([
    for role, members in local.flink_bucket_iam : { for m in members : "${role}|${m}" => { role = role, member = m } }
  ]...)
  bucket = google_storage_bucket.flink.name
  role   = each.value.role
  member = each.value.member
}
