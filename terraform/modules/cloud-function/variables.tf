variable "project_id" {
  description = "Project of the function."
  type        = string
}

variable "region" {
  description = "Region of the function."
  type        = string
}

variable "name" {
  description = "Function (Cloud Run service) name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,61}[a-z0-9]$", var.name))
    error_message = "name must be a valid Cloud Run service name."
  }
}

variable "entry_point" {
  description = "Python callable in functions/main.py (functions-framework --target)."
  type        = string
}

variable "description" {
  description = "What the function does."
  type        = string
}

variable "source_bucket" {
  description = "Bucket holding the source archive."
  type        = string
}

variable "source_object" {
  description = "Object name of the source archive (zip of functions/)."
  type        = string
}

variable "service_account_email" {
  description = "Runtime service account (one per function)."
  type        = string
}

variable "environment" {
  description = "Plain environment variables (settings; never secrets)."
  type        = map(string)
  default     = {}
}

variable "secret_environment" {
  description = "Environment variables read from Secret Manager: {ENV_NAME => secret_id} (latest version)."
  type        = map(string)
  default     = {}
}

variable "sizing" {
  description = "Instances, concurrency, CPU, memory and timeout."
  type = object({
    min_instances = number
    max_instances = number
    concurrency   = number
    cpu           = string
    memory        = string
    timeout_s     = number
  })
}

variable "ingress" {
  description = "ALLOW_ALL for the public ingest endpoint, ALLOW_INTERNAL_ONLY otherwise."
  type        = string
  default     = "ALLOW_INTERNAL_ONLY"
  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress)
    error_message = "ingress must be ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "iam" {
  description = "{role => [members]} on the function's Cloud Run service (e.g. roles/run.invoker)."
  type        = map(list(string))
  default     = {}
}

variable "labels" {
  description = "Labels."
  type        = map(string)
  default     = {}
}
