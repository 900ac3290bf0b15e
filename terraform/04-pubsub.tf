# Stage 4: the message bus. Names and policies mirror edp.bus.topology (tests/infra compares
# them): events in, refused events kept for audit, one Debezium topic per captured table, and a
# dead-letter topic behind every subscription that can meet a poison message.

locals {
  # The captured tables come from their declaration in schemas/tables (cdc_source), like the
  # code's settings: adding a raw/cdc_<t>.yaml + staging/<t>.yaml adds the topic and subscription.
  cdc_tables = var.cdc_tables != null ? var.cdc_tables : sort(compact([for k, t in local.tables : try(t.cdc_source, "")]))
  cdc_topics = { for t in local.cdc_tables : t => "${var.pubsub.cdc_topic_prefix}.${t}" }

  topics = merge(
    {
      events             = var.pubsub.topic_events
      events-bad         = var.pubsub.topic_bad_events
      events-dead-letter = var.pubsub.topic_events_dead_letter
      cdc-dead-letter    = var.pubsub.cdc_dead_letter_topic
    },
    { for t, name in local.cdc_topics : "cdc:${t}" => name },
    # Debezium Server also publishes transaction metadata and heartbeats; its Pub/Sub sink fails
    # on a topic that does not exist. Nothing subscribes: they are kept for inspection only.
    {
      "debezium:transaction"     = "${var.pubsub.cdc_topic_prefix}.transaction"
      "debezium:heartbeat"       = "debezium-heartbeat.${var.pubsub.cdc_topic_prefix}"
      "debezium:heartbeat-table" = "${var.pubsub.cdc_topic_prefix}.shop.debezium_heartbeat"
    }
  )

  subscriptions = merge(
    {
      events-loader = {
        topic        = "events"
        name         = var.pubsub.subscription_events_loader
        dead_letter  = "events-dead-letter"
        ordering     = false
        ack_deadline = 60
      }
      events-bad-archive = {
        topic        = "events-bad"
        name         = var.pubsub.subscription_bad_events_archive
        dead_letter  = null
        ordering     = false
        ack_deadline = 60
      }
      events-dead-letter-archive = {
        topic        = "events-dead-letter"
        name         = "${var.pubsub.topic_events_dead_letter}-archive"
        dead_letter  = null
        ordering     = false
        ack_deadline = 60
      }
      cdc-dead-letter-archive = {
        topic        = "cdc-dead-letter"
        name         = "${var.pubsub.cdc_dead_letter_topic}-archive"
        dead_letter  = null
        ordering     = false
        ack_deadline = 60
      }
    },
    {
      # Unordered on purpose (as edp.bus.topology): the flush is idempotent by (pk, LSN) and
      # staging orders by (lsn, tx position); ordered delivery would only add head-of-line
      # blocking behind a nacked message. Debezium still sets ordering key = row key.
      for t, name in local.cdc_topics : "cdc-flush:${t}" => {
        topic        = "cdc:${t}"
        name         = "${var.pubsub.cdc_subscription_prefix}.${t}"
        dead_letter  = "cdc-dead-letter"
        ordering     = false
        ack_deadline = 120
      }
    }
  )

  # Who may publish to / pull from what ({topic or subscription key => {role => [members]}}).
  topic_iam = merge(
    {
      events     = { "roles/pubsub.publisher" = [local.sa.ingest, local.sa.collector] }
      events-bad = { "roles/pubsub.publisher" = [local.sa.ingest, local.sa.collector] }
      # The Pub/Sub service agent forwards dead letters; cdc_flush also parks poison messages
      # itself with the decoding error attached.
      events-dead-letter = { "roles/pubsub.publisher" = [local.pubsub_service_agent] }
      cdc-dead-letter    = { "roles/pubsub.publisher" = [local.pubsub_service_agent, local.sa["cdc-flush"]] }
    },
    { for t in keys(local.cdc_topics) : "cdc:${t}" => { "roles/pubsub.publisher" = [local.sa.debezium] } },
    { for k in ["debezium:transaction", "debezium:heartbeat", "debezium:heartbeat-table"] : k => { "roles/pubsub.publisher" = [local.sa.debezium] } }
  )
  subscription_iam = merge(
    {
      events-loader = {
        "roles/pubsub.subscriber" = [local.sa.beam, local.pubsub_service_agent]
        "roles/pubsub.viewer"     = [local.sa.beam]
      }
    },
    {
      for t in keys(local.cdc_topics) : "cdc-flush:${t}" => {
        "roles/pubsub.subscriber" = [local.sa["cdc-flush"], local.pubsub_service_agent]
        "roles/pubsub.viewer"     = [local.sa["cdc-flush"]]
      }
    }
  )
}

resource "google_pubsub_topic" "topic" {
  for_each                   = local.topics
  project                    = var.project_id
  name                       = each.value
  labels                     = local.labels
  message_retention_duration = var.pubsub.message_retention
  kms_key_name               = var.kms_key_name
  depends_on                 = [google_project_service.apis]
}

resource "google_pubsub_subscription" "subscription" {
  for_each                   = local.subscriptions
  project                    = var.project_id
  name                       = each.value.name
  topic                      = google_pubsub_topic.topic[each.value.topic].id
  labels                     = local.labels
  ack_deadline_seconds       = each.value.ack_deadline
  message_retention_duration = var.pubsub.message_retention
  retain_acked_messages      = false
  enable_message_ordering    = each.value.ordering

  expiration_policy {
    ttl = "" # never expire: an idle night must not delete the subscription
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dynamic "dead_letter_policy" {
    for_each = each.value.dead_letter == null ? [] : [each.value.dead_letter]
    content {
      dead_letter_topic     = google_pubsub_topic.topic[dead_letter_policy.value].id
      max_delivery_attempts = var.pubsub.max_delivery_attempts
    }
  }
}

resource "google_pubsub_topic_iam_member" "topic" {
  for_each = merge([
    for topic, roles in local.topic_iam : merge([
      for role, members in roles : { for m in members : "${topic}|${role}|${m}" => { topic = topic, role = role, member = m } }
    ]...)
  ]...)
  project = var.project_id
  topic   = google_pubsub_topic.topic[each.value.topic].name
  role    = each.value.role
  member  = each.value.member
}

resource "google_pubsub_subscription_iam_member" "subscription" {
  for_each = merge([
    for sub, roles in local.subscription_iam : merge([
      for role, members in roles : { for m in members : "${sub}|${role}|${m}" => { sub = sub, role = role, member = m } }
    ]...)
  ]...)
  project      = var.project_id
  subscription = google_pubsub_subscription.subscription[each.value.sub].name
  role         = each.value.role
  member       = each.value.member
}
