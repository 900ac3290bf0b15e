# Root module inputs. Defaults mirror edp.settings.Settings so local and cloud agree
# (tests/infra asserts they do).

variable "project_id" {
  description = "GCP project that hosts the platform."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{4,28}[a-z0-9]$", var.project_id))
    error_message = "project_id must be a valid GCP project id (6-30 chars, lowercase, digits, hyphens)."
  }
}

variable "region" {
  description = "Region of every regional resource (Cloud Run, GKE, Workflows, BigQuery location)."
  type        = string
  default     = "asia-northeast3"
  validation {
    condition     = can(regex("^[a-z]+-[a-z]+[0-9]$", var.region))
    error_message = "region must look like asia-northeast3."
  }
}

variable "environment" {
  description = "Deployment name, used in labels and resource names (dev, staging, prod)."
  type        = string
  default     = "prod"
  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lowercase letters/digits."
  }
}

variable "datasets" {
  description = "Physical BigQuery dataset name of each logical layer (EDP_DATASET_*)."
  type = object({
    raw        = optional(string, "raw")
    staging    = optional(string, "staging")
    mart       = optional(string, "mart")
    monitoring = optional(string, "monitoring")
  })
  default = {}
  validation {
    condition     = alltrue([for name in values(var.datasets) : can(regex("^[A-Za-z_][A-Za-z0-9_]{0,1023}$", name))])
    error_message = "Dataset names may contain letters, digits and underscores only."
  }
}

variable "bigquery_location" {
  description = "BigQuery location of the four datasets (EDP_BIGQUERY_LOCATION)."
  type        = string
  default     = "asia-northeast3"
}

variable "maximum_bytes_billed" {
  description = "Per-query cap on bytes billed, passed to every function (EDP_MAXIMUM_BYTES_BILLED)."
  type        = number
  default     = 53687091200
  validation {
    condition     = var.maximum_bytes_billed >= 10485760
    error_message = "maximum_bytes_billed must be at least 10 MiB (BigQuery's minimum billed per query)."
  }
}

variable "kms_key_name" {
  description = "Optional Cloud KMS key (projects/.../cryptoKeys/...) for CMEK on BigQuery, Pub/Sub, Artifact Registry and buckets. Null uses Google-managed keys."
  type        = string
  default     = null
}

variable "functions" {
  description = "Sizing of each Cloud Run function (2nd gen), from docs/benchmarks.md: one ingest instance takes ~1,180 RPS at p99 < 25 ms, so min 1 keeps the front door warm and max 10 matches the GKE collector's HPA ceiling."
  type = map(object({
    min_instances     = number
    max_instances     = number
    concurrency       = number
    cpu               = string
    memory            = string
    timeout_s         = number
    extra_environment = optional(map(string), {})
  }))
  default = {
    ingest = {
      min_instances = 1
      max_instances = 10
      concurrency   = 80
      cpu           = "1"
      memory        = "512Mi"
      timeout_s     = 30
    }
    cdc_flush = {
      min_instances = 0
      max_instances = 1
      concurrency   = 1
      cpu           = "1"
      memory        = "512Mi"
      timeout_s     = 540
    }
    etl = {
      min_instances = 0
      max_instances = 5
      concurrency   = 1
      cpu           = "1"
      memory        = "1Gi"
      timeout_s     = 1800
    }
    # a review parses and prices in milliseconds; the daily run reviews top_jobs queries
    sql_review = {
      min_instances = 0
      max_instances = 3
      concurrency   = 4
      cpu           = "1"
      memory        = "512Mi"
      timeout_s     = 300
    }
    quality_check = {
      min_instances = 0
      max_instances = 1
      concurrency   = 1
      cpu           = "1"
      memory        = "1Gi"
      timeout_s     = 300
    }
  }
  validation {
    condition     = alltrue([for f in values(var.functions) : f.min_instances >= 0 && f.max_instances >= f.min_instances && f.concurrency >= 1])
    error_message = "Each function needs 0 <= min_instances <= max_instances and concurrency >= 1."
  }
  validation {
    condition     = length(setsubtract(["ingest", "cdc_flush", "etl", "quality_check"], keys(var.functions))) == 0
    error_message = "functions must size at least ingest, cdc_flush, etl and quality_check."
  }
}

variable "cors_origins" {
  description = "Browser origins allowed to call the ingest endpoint (EDP_CORS_ORIGINS)."
  type        = list(string)
  default     = ["*"]
}

variable "ingest_trace_sample_ratio" {
  description = "Share of ingest requests traced (EDP_TRACES_SAMPLE_RATIO of the ingest function and the GKE collector): a sampled request costs ~0.3 ms more CPU with the Cloud Trace exporter (0.01: ~3 us a request on average at the 1,180 RPS peak) and Cloud Trace bills per span; consumers record every batch."
  type        = number
  default     = 0.01
  validation {
    condition     = var.ingest_trace_sample_ratio >= 0 && var.ingest_trace_sample_ratio <= 1
    error_message = "ingest_trace_sample_ratio is a share between 0 and 1."
  }
}

variable "freshness_probe_schedule" {
  description = "Cloud Scheduler cron of the freshness probe (the freshness alert reads its last 10 minutes)."
  type        = string
  default     = "*/5 * * * *"
}

variable "cdc_flush_schedule" {
  description = "Cloud Scheduler cron of the CDC flush (each run drains for up to the function timeout)."
  type        = string
  default     = "* * * * *"
}

variable "sql_review" {
  description = "SQL cost review: when the daily review runs (UTC cron; it reviews the previous UTC day) and how many of the day's costliest jobs it reviews."
  type = object({
    schedule = optional(string, "30 0 * * *")
    top_jobs = optional(number, 20)
  })
  default = {}
  validation {
    condition     = var.sql_review.top_jobs >= 1 && var.sql_review.top_jobs <= 1000
    error_message = "top_jobs is between 1 and 1000."
  }
}

variable "etl_schedule" {
  description = "Cloud Scheduler cron of the daily ETL, in etl_time_zone."
  type        = string
  default     = "0 3 * * *"
}

variable "etl_time_zone" {
  description = "Time zone of the ETL schedule and of the default run date (yesterday)."
  type        = string
  default     = "Asia/Seoul"
}

variable "network" {
  description = "VPC ranges of the private GKE cluster."
  type = object({
    subnet_cidr             = optional(string, "10.10.0.0/20")
    pods_cidr               = optional(string, "10.20.0.0/14")
    services_cidr           = optional(string, "10.24.0.0/20")
    master_ipv4_cidr_block  = optional(string, "172.16.0.0/28")
    master_authorized_cidrs = optional(map(string), {})
  })
  default = {}
  validation {
    condition     = alltrue([for c in [var.network.subnet_cidr, var.network.pods_cidr, var.network.services_cidr, var.network.master_ipv4_cidr_block] : can(cidrhost(c, 0))])
    error_message = "All network ranges must be valid CIDR blocks."
  }
}

variable "node_pools" {
  description = "GKE node pools: general (on-demand) for the collector and Debezium, pipeline (spot, tainted) for Flink/Beam."
  type = map(object({
    machine_type = string
    min_nodes    = number
    max_nodes    = number
    spot         = bool
    taint        = optional(object({ key = string, value = string, effect = string }))
  }))
  default = {
    general = {
      machine_type = "e2-standard-2"
      min_nodes    = 1
      max_nodes    = 6
      spot         = false
    }
    pipeline = {
      machine_type = "e2-standard-4"
      min_nodes    = 0
      max_nodes    = 5
      spot         = true
      taint        = { key = "workload", value = "pipeline", effect = "NO_SCHEDULE" }
    }
  }
}

variable "alerting" {
  description = "Alert thresholds and routes (error rate > 5 % for 5 min, freshness > 30 min, restarts > 3/h, CDC lag > 10 s, cost > $25/day); pager_channel_ids are existing notification channels (e.g. PagerDuty) added to the critical route; runbook_url is where docs/runbook.md is published (set it to your repository's URL of that file so the alert links open)."
  type = object({
    ingest_error_rate       = optional(number, 0.05)
    freshness_minutes       = optional(number, 30)
    pod_restarts_per_hour   = optional(number, 3)
    daily_bigquery_cost_usd = optional(number, 25)
    bigquery_usd_per_tib    = optional(number, 6.25)
    pager_email             = optional(string)
    pager_channel_ids       = optional(list(string), [])
    cdc_lag_seconds         = optional(number, 10)
    runbook_url             = optional(string, "docs/runbook.md")
  })
  default = {}
  validation {
    condition     = var.alerting.ingest_error_rate > 0 && var.alerting.ingest_error_rate < 1
    error_message = "ingest_error_rate is a fraction between 0 and 1."
  }
}

variable "bootstrap_secrets" {
  description = "Secrets whose first version this apply writes from secret_values (first apply only; see 05-secrets.tf)."
  type        = set(string)
  default     = []
  validation {
    condition     = alltrue([for s in var.bootstrap_secrets : contains(["ingest-write-keys", "slack-webhook-critical", "slack-webhook-warning", "debezium-db-password"], s)])
    error_message = "bootstrap_secrets entries must name secrets of 05-secrets.tf."
  }
}

variable "secret_values" {
  description = "Values of the bootstrap_secrets, by secret name (TF_VAR_secret_values='{...}'): ephemeral, never stored in state or plan."
  type        = map(string)
  default     = {}
  sensitive   = true
  ephemeral   = true
}

variable "slack_auth_token" {
  description = "Slack bot token for Cloud Monitoring's Slack notification channels (null: no Slack channel). The provider stores it in state (sensitive): pass it with TF_VAR_slack_auth_token, never in a tfvars file."
  type        = string
  default     = null
  sensitive   = true
}

variable "slack_channels" {
  description = "Slack channel names of the two alert routes (the bot token: slack_auth_token)."
  type = object({
    critical = optional(string, "#data-platform-critical")
    warning  = optional(string, "#data-platform-alerts")
  })
  default = {}
}

variable "image_tags" {
  description = "Container image tags pushed to Artifact Registry (collector, beam, debezium)."
  type        = map(string)
  default = {
    collector = "latest"
    beam      = "latest"
  }
}

variable "labels" {
  description = "Extra labels on every labelled resource."
  type        = map(string)
  default     = {}
}

variable "pubsub" {
  description = "Topic and subscription names (EDP_TOPIC_*, EDP_SUBSCRIPTION_*, EDP_CDC_*), and delivery policy."
  type = object({
    topic_events                    = optional(string, "events")
    topic_bad_events                = optional(string, "events-bad")
    topic_events_dead_letter        = optional(string, "events-dead-letter")
    subscription_events_loader      = optional(string, "events-loader")
    subscription_bad_events_archive = optional(string, "events-bad-archive")
    cdc_topic_prefix                = optional(string, "cdc")
    cdc_subscription_prefix         = optional(string, "cdc-flush")
    cdc_dead_letter_topic           = optional(string, "cdc-dead-letter")
    max_delivery_attempts           = optional(number, 5)
    message_retention               = optional(string, "604800s")
  })
  default = {}
  validation {
    condition     = var.pubsub.max_delivery_attempts >= 5 && var.pubsub.max_delivery_attempts <= 100
    error_message = "Pub/Sub allows 5..100 delivery attempts before dead-lettering."
  }
}

variable "gke_security_group" {
  description = "Google Group (gke-security-groups@<your-domain>) for Kubernetes RBAC via Google Groups; null disables it."
  type        = string
  default     = null
}

variable "stream_load" {
  description = "Where the Beam stream-load job runs: flink (the GKE session cluster, gke/base/flink) or dataflow (a Flex Template job created here), plus the Dataflow worker shape."
  type = object({
    runner                   = optional(string, "flink")
    dataflow_max_workers     = optional(number, 3)
    dataflow_machine_type    = optional(string, "n2-standard-2")
    allowed_lateness_seconds = optional(number, 604800)
  })
  default = {}
  validation {
    condition     = contains(["flink", "dataflow"], var.stream_load.runner)
    error_message = "stream_load.runner is flink or dataflow."
  }
}

variable "quality" {
  description = "Data-quality agent: schedule (cron, UTC) and who writes incident reports (vertex or offline; EDP_QUALITY_LLM*)."
  type = object({
    schedule     = optional(string, "*/30 * * * *")
    llm          = optional(string, "vertex")
    llm_model    = optional(string, "gemini-2.5-flash")
    llm_location = optional(string, "global")
  })
  default = {}
  validation {
    condition     = contains(["vertex", "offline"], var.quality.llm)
    error_message = "quality.llm must be vertex or offline."
  }
}
