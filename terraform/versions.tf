# Provider and Terraform versions for the whole root module.

terraform {
  required_version = ">= 1.11.0" # write-only secret data (05-secrets.tf)

  # State in a GCS bucket (versioned, access-restricted), configured at init time so no project
  # name is baked in: terraform init -backend-config="bucket=<bucket>" -backend-config="prefix=edp/<env>"
  # (README "Deploy"). State holds one sensitive value at most (slack_auth_token).
  backend "gcs" {}

  required_providers {
    google = {
      source = "hashicorp/google"
      # The runbook and the static checks were written against 6.x (write-only secret_data_wo
      # needs >= 6.23); .terraform.lock.hcl records the exact build on the first init and is
      # committed from then on.
      version = ">= 6.23.0, < 7.0.0"
    }
    google-beta = {
      source = "hashicorp/google-beta"
      # The runbook and the static checks were written against 6.x (write-only secret_data_wo
      # needs >= 6.23); .terraform.lock.hcl records the exact build on the first init and is
      # committed from then on.
      version = ">= 6.23.0, < 7.0.0"
    }
    archive = {
      source = "hashicorp/archive"
      # glob patterns in archive_file.excludes (06-functions.tf) arrived in 2.5.0
      version = "~> 2.5"
    }
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}

provider "google-beta" {
  project = var.project_id
  region  = var.region
}
