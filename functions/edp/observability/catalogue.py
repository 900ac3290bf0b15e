"""Every metric the platform emits, declared once: name, type, unit, labels, owner, meaning.

Components create their instruments through :func:`instrument` (a name missing here is an
error), `docs/metrics.md` is generated from :data:`METRICS`, and the Terraform alert/dashboard
test checks every query against what the owners write. The same names serve both backends:

* locally (and from the GKE collector, scraped by Managed Service for Prometheus) the Prometheus
  exposition name is the metric name itself; histograms add ``_bucket``/``_count``/``_sum``;
* through the Cloud Monitoring exporter (Cloud Run functions) the metric type is
  ``workload.googleapis.com/<name>``, which Cloud Monitoring's PromQL spells
  ``workload_googleapis_com:<name>`` (histograms again with ``_bucket``/``_count``/``_sum``).

Owners name the deployed component that knows the value: ``ingest`` (the Cloud Run function and
the GKE event collector run the same app), ``cdc_flush``, ``etl`` (which also runs the freshness
probe), ``quality agent`` and ``sql review``; ``local`` marks laptop-only emitters (the local
stream loader and CDC reader stand in for the Beam job and Debezium Server, which report
through their own platforms).

Example:
    >>> spec = metric("events_received_total")
    >>> spec.kind, spec.labels
    ('observable_counter', ('event_type', 'device_type', 'result'))
    >>> promql_name("request_latency_seconds", "_bucket")
    'workload_googleapis_com:request_latency_seconds_bucket'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from opentelemetry.metrics import CallbackT, Meter

Kind = Literal["counter", "histogram", "gauge", "observable_counter", "observable_gauge"]

#: Cloud Monitoring metric type prefix of OpenTelemetry metrics (the exporter's default).
WORKLOAD_PREFIX = "workload.googleapis.com"

#: Components that run in GCP (the rest are laptop tooling standing in for a managed service).
DEPLOYED_OWNERS = ("ingest", "cdc_flush", "etl", "quality agent", "sql review")


@dataclass(frozen=True)
class MetricSpec:
    """One metric: how it is named, typed, labelled, who writes it and what it means."""

    name: str
    kind: Kind
    unit: str
    labels: tuple[str, ...]
    owner: str
    meaning: str

    @property
    def is_histogram(self) -> bool:
        return self.kind == "histogram"

    @property
    def deployed(self) -> bool:
        """True when a deployed component writes it (Cloud Monitoring sees it in GCP)."""
        return self.owner in DEPLOYED_OWNERS


def _m(name: str, kind: Kind, unit: str, labels: str, owner: str, meaning: str) -> MetricSpec:  # noqa: PLR0917 - one table row
    return MetricSpec(name, kind, unit, tuple(labels.split()) if labels else (), owner, meaning)


# fmt: off
METRICS: tuple[MetricSpec, ...] = (
    # --- ingest (Cloud Run function `ingest` and the GKE event collector) ----------------------
    _m("events_received_total", "observable_counter", "1", "event_type device_type result",
       "ingest", "Events received, by event type, device type and result (accepted or the "
       "refusal reason)."),
    _m("http_requests_total", "observable_counter", "1", "route code", "ingest",
       "HTTP requests by route and status code; the collector's HPA scales on its rate per pod."),
    _m("ingest_unauthenticated_requests_total", "observable_counter", "1", "route reason", "ingest",
       "Ingest requests refused without a valid write key, by route and reason (never stored)."),
    _m("request_latency_seconds", "histogram", "s", "route code", "ingest",
       "Request latency from the first byte read to the response (P99 target 50 ms)."),
    _m("pubsub_messages_published_total", "observable_counter", "1", "topic result", "ingest",
       "Pub/Sub messages published, by topic and result (ok, error)."),
    _m("pubsub_publish_latency_seconds", "histogram", "s", "topic", "ingest",
       "Latency of one Pub/Sub publish call (until the server acknowledged it)."),
    # --- pipelines: ETL tasks and CDC flush runs ------------------------------------------------
    _m("pipeline_runs_total", "counter", "1", "pipeline task status", "etl",
       "Pipeline task runs by status (success, failed). Written by the etl function per model "
       "and by cdc_flush per invocation (pipeline=cdc_flush)."),
    _m("pipeline_duration_seconds", "histogram", "s", "pipeline task", "etl",
       "Run time of one pipeline task: per ETL model (pipeline=etl) and per cdc_flush "
       "invocation (pipeline=cdc_flush)."),
    _m("pipeline_rows_processed_total", "counter", "1", "pipeline task", "etl",
       "Rows written by pipeline tasks (per ETL model)."),
    _m("bigquery_bytes_processed_total", "counter", "By", "pipeline task", "etl",
       "Bytes processed by the warehouse queries of a pipeline task (what on-demand pricing "
       "bills)."),
    _m("bigquery_query_duration_seconds", "histogram", "s", "pipeline task", "etl",
       "Wall time of the warehouse queries of one pipeline task."),
    _m("data_freshness_minutes", "gauge", "min", "table", "etl",
       "Freshness probe: now minus the newest ingested_at per raw table (SLA 30 min)."),
    # --- CDC flush ------------------------------------------------------------------------------
    _m("cdc_replication_lag_seconds", "histogram", "s", "table", "cdc_flush",
       "Source commit to row written in raw.cdc_* (per row; SLA 10 s)."),
    _m("cdc_rows_flushed_total", "counter", "1", "table", "cdc_flush",
       "Rows written to raw.cdc_* by cdc_flush."),
    _m("cdc_dead_letter_total", "counter", "1", "subscription error_type", "cdc_flush",
       "CDC messages parked on the dead-letter topic, by subscription and error type."),
    _m("cdc_flush_batch_size", "histogram", "{row}", "", "cdc_flush",
       "Rows per cdc_flush warehouse write (flush at 100 rows or 5 s)."),
    _m("cdc_flush_duration_seconds", "histogram", "s", "", "cdc_flush",
       "Duration of one flush (warehouse write + ack)."),
    # --- quality agent --------------------------------------------------------------------------
    _m("data_quality_check_status", "gauge", "1", "table check check_name", "quality agent",
       "Result of the last run of a data-quality check: 0 pass, 1 warn, 2 fail, 3 error."),
    _m("data_null_rate", "gauge", "1", "table column", "quality agent",
       "Null rate of a key column in the last checked window (fails above 5 %)."),
    _m("data_volume_zscore", "gauge", "1", "table", "quality agent",
       "Volume z-score of the last bucket against its seasonal baseline (|z| > 2 fails)."),
    _m("slack_notifications_sent_total", "counter", "1", "channel severity result",
       "quality agent", "Slack notifications sent, by channel, severity and result."),
    _m("llm_calls_total", "counter", "1", "model result", "quality agent",
       "LLM (Gemini) report calls by model and result (ok, error, offline)."),
    _m("llm_call_latency_seconds", "histogram", "s", "model", "quality agent",
       "Latency of one LLM report call."),
    # --- local stand-ins (the Beam job and Debezium Server report through their platforms) ------
    _m("load_rows_total", "counter", "1", "pipeline outcome", "local",
       "Local stream loader: rows by outcome (loaded, duplicate, dead_letter)."),
    _m("load_dead_letters_total", "counter", "1", "pipeline error_type", "local",
       "Local stream loader: rows refused, by failure type."),
    _m("load_freshness_seconds", "histogram", "s", "pipeline", "local",
       "Local stream loader freshness: ingested_at to queryable in raw, per row."),
    _m("load_end_to_end_lag_seconds", "histogram", "s", "pipeline", "local",
       "Local stream loader: event_timestamp to queryable in raw, per row."),
    _m("cdc_events_published_total", "counter", "1", "op", "local",
       "Local CDC reader: Debezium change events published, by operation (Debezium's op: r "
       "snapshot read, c, u, d, t)."),
    _m("cdc_reader_lag_seconds", "histogram", "s", "", "local",
       "Local CDC reader: source commit to published."),
)
# fmt: on

_BY_NAME = {spec.name: spec for spec in METRICS}


def metric(name: str) -> MetricSpec:
    """The declaration of ``name``.

    Raises:
        KeyError: ``name`` is not declared (declare it in :data:`METRICS` first).
    """
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"metric {name!r} is not declared in edp.observability.catalogue") from None


def instrument(meter: Meter, name: str, callbacks: list[CallbackT] | None = None) -> Any:
    """Create the OTel instrument declared as ``name`` on ``meter`` (unit/description from here).

    Observable kinds need ``callbacks``.
    """
    spec = metric(name)
    common: dict[str, Any] = {"unit": spec.unit, "description": spec.meaning}
    if spec.kind == "counter":
        return meter.create_counter(name, **common)
    if spec.kind == "histogram":
        return meter.create_histogram(name, **common)
    if spec.kind == "gauge":
        return meter.create_gauge(name, **common)
    if not callbacks:
        raise ValueError(f"metric {name!r} is observable: pass its callbacks")
    if spec.kind == "observable_counter":
        return meter.create_observable_counter(name, callbacks=callbacks, **common)
    return meter.create_observable_gauge(name, callbacks=callbacks, **common)


def promql_name(name: str, suffix: str = "") -> str:
    """Cloud Monitoring PromQL name of an OTel-exported metric (``suffix``: ``_bucket`` ...).

    Example:
        >>> promql_name("data_freshness_minutes")
        'workload_googleapis_com:data_freshness_minutes'
    """
    return f"{WORKLOAD_PREFIX.replace('.', '_')}:{name}{suffix}"


def markdown_table() -> str:
    """The catalogue as the Markdown table in ``docs/metrics.md``.

    Example:
        >>> markdown_table().splitlines()[0]
        '| metric | type | unit | labels | owner | meaning |'
    """
    kinds = {"observable_counter": "counter", "observable_gauge": "gauge"}
    lines = ["| metric | type | unit | labels | owner | meaning |", "|---|---|---|---|---|---|"]
    for s in METRICS:
        labels = ", ".join(f"`{label}`" for label in s.labels) or "-"
        kind = kinds.get(s.kind, s.kind)
        lines.append(f"| `{s.name}` | {kind} | {s.unit} | {labels} | {s.owner} | {s.meaning} |")
    return "\n".join(lines) + "\n"
