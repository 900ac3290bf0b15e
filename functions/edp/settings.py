"""One frozen settings model, read from the environment once.

Every knob of the platform is a field here, so the README's configuration table, the Terraform
env blocks and the code cannot disagree (a test checks the README lists every variable).
Names are ``EDP_<FIELD>`` unless an alias says otherwise (Google's own variables such as
``GOOGLE_CLOUD_PROJECT`` and ``PUBSUB_EMULATOR_HOST`` keep their usual names, and the CDC flush
knobs keep their historical names).

Example:
    >>> from edp.settings import Settings
    >>> Settings(_env_file=None).warehouse
    'duckdb'
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from edp.errors import ConfigError


def _catalog_cdc_sources() -> list[str]:
    """The captured tables as declared once in ``schemas/tables/raw/cdc_*.yaml``."""
    from edp.contracts.catalog import load_catalog

    return list(load_catalog().cdc_sources())


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


#: Marks a setting Terraform must pass to every deployed function whose code reads it (its default
#: is a laptop value or a per-deployment choice); tests/deploy checks both directions.
_TERRAFORM: dict[str, Any] = {"deploy": "terraform"}
#: Marks a setting that only makes sense on a laptop or in tests; Terraform never sets it.
_LOCAL_ONLY: dict[str, Any] = {"deploy": "local"}


def deploy_scope(field: str) -> str | None:
    """``"terraform"``, ``"local"`` or None (a default that suits production) for a setting.

    Example:
        >>> deploy_scope("warehouse"), deploy_scope("duckdb_path"), deploy_scope("cdc_batch_size")
        ('terraform', 'local', None)
    """
    extra = Settings.model_fields[field].json_schema_extra
    return str(extra["deploy"]) if isinstance(extra, dict) and "deploy" in extra else None


class Settings(BaseSettings):
    """Platform configuration; see the README's "Configuration" table."""

    model_config = SettingsConfigDict(
        env_prefix="EDP_", frozen=True, extra="ignore", populate_by_name=True
    )

    # --- where we run -------------------------------------------------------------------------
    project: str = Field(
        "edp-local",
        validation_alias=AliasChoices("GOOGLE_CLOUD_PROJECT", "EDP_PROJECT"),
        description="GCP project id (BigQuery, Pub/Sub, Vertex AI).",
        json_schema_extra=_TERRAFORM,
    )
    region: str = Field(
        "asia-northeast3",
        description="GCP region of every regional resource.",
        json_schema_extra=_TERRAFORM,
    )
    environment: str = Field(
        "local",
        description="Deployment name: local, dev, prod, ...",
        json_schema_extra=_TERRAFORM,
    )
    state_dir: Path = Field(
        Path(".edp"),
        description="Local state folder (DuckDB file, PostgreSQL cluster, logs).",
        json_schema_extra=_LOCAL_ONLY,
    )

    # --- warehouse ----------------------------------------------------------------------------
    warehouse: Literal["duckdb", "bigquery"] = Field(
        "duckdb",
        description="Warehouse backend: embedded DuckDB locally, BigQuery in GCP.",
        json_schema_extra=_TERRAFORM,
    )
    duckdb_path: Path | None = Field(
        None,
        description="DuckDB database file; default <state_dir>/warehouse.duckdb.",
        json_schema_extra=_LOCAL_ONLY,
    )
    duckdb_memory_limit: str = Field(
        "1GB",
        description=(
            "Most memory the local warehouse engine (DuckDB) holds; bigger intermediate results "
            "spill to <state_dir>/duckdb-tmp instead of growing the process."
        ),
        json_schema_extra=_LOCAL_ONLY,
    )
    duckdb_threads: int | None = Field(
        None,
        ge=1,
        description="DuckDB worker threads (default: one per core).",
        json_schema_extra=_LOCAL_ONLY,
    )
    duckdb_checkpoint_threshold: str | None = Field(
        None,
        description="Write-ahead-log size at which a commit checkpoints the DuckDB file inline "
        "(DuckDB's default: 16 MiB); larger keeps checkpoints off a continuous writer's commits.",
        json_schema_extra=_LOCAL_ONLY,
    )
    bigquery_location: str = Field(
        "asia-northeast3",
        description="BigQuery dataset location.",
        json_schema_extra=_TERRAFORM,
    )
    bigquery_api_endpoint: str | None = Field(
        None,
        description="Override of the BigQuery REST endpoint (emulators, tests).",
        json_schema_extra=_LOCAL_ONLY,
    )
    dataset_raw: str = Field(
        "raw",
        description="BigQuery dataset of the append-only raw layer.",
        json_schema_extra=_TERRAFORM,
    )
    dataset_staging: str = Field(
        "staging",
        description="BigQuery dataset of the staging layer.",
        json_schema_extra=_TERRAFORM,
    )
    dataset_mart: str = Field(
        "mart",
        description="BigQuery dataset of the marts.",
        json_schema_extra=_TERRAFORM,
    )
    dataset_monitoring: str = Field(
        "monitoring",
        description="BigQuery dataset of run/quality logs.",
        json_schema_extra=_TERRAFORM,
    )
    maximum_bytes_billed: int = Field(
        50 * 1024**3,
        ge=10_485_760,
        description="Per-query cap on bytes billed: a runaway scan fails instead of billing "
        "(BigQuery rejects caps under 10485760).",
        json_schema_extra=_TERRAFORM,
    )

    # --- message bus --------------------------------------------------------------------------
    pubsub_emulator_host: str | None = Field(
        None,
        validation_alias=AliasChoices("PUBSUB_EMULATOR_HOST"),
        description="host:port of the Pub/Sub emulator; unset in GCP.",
        json_schema_extra=_LOCAL_ONLY,
    )
    topic_events: str = Field(
        "events",
        description="Topic of accepted behaviour events.",
        json_schema_extra=_TERRAFORM,
    )
    topic_bad_events: str = Field(
        "events-bad",
        description="Topic of refused events (with reason).",
        json_schema_extra=_TERRAFORM,
    )
    topic_events_dead_letter: str = Field(
        "events-dead-letter",
        description="Dead-letter topic of the events subscription.",
        json_schema_extra=_TERRAFORM,
    )
    subscription_events_loader: str = Field(
        "events-loader",
        description="Subscription the stream loader (Beam or local) reads.",
        json_schema_extra=_TERRAFORM,
    )
    subscription_bad_events_archive: str = Field(
        "events-bad-archive", description="Subscription that archives refused events."
    )
    cdc_topic_prefix: str = Field(
        "cdc",
        description="Debezium topic prefix: topics are <prefix>.<schema>.<table>.",
        json_schema_extra=_TERRAFORM,
    )
    cdc_dead_letter_topic: str = Field(
        "cdc-dead-letter",
        description="CDC dead-letter topic.",
        json_schema_extra=_TERRAFORM,
    )
    cdc_subscription_prefix: str = Field(
        "cdc-flush",
        description="CDC flush subscriptions are <prefix>.<schema>.<table>.",
        json_schema_extra=_TERRAFORM,
    )
    cdc_tables: Annotated[list[str], NoDecode] = Field(
        default_factory=_catalog_cdc_sources,
        description=(
            "Captured source tables (schema.table, comma-separated): one topic each. Default: "
            "every raw.cdc_* table's cdc_source in schemas/tables."
        ),
        json_schema_extra=_TERRAFORM,
    )
    max_delivery_attempts: int = Field(
        5,
        ge=5,
        le=100,
        description="Deliveries before Pub/Sub dead-letters a message.",
        json_schema_extra=_TERRAFORM,
    )

    # --- ingest -------------------------------------------------------------------------------
    write_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accepted write keys (comma-separated; from Secret Manager in GCP).",
        json_schema_extra=_TERRAFORM,
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Allowed browser origins (comma-separated).",
        json_schema_extra=_TERRAFORM,
    )
    max_batch_events: int = Field(500, ge=1, description="Most events in one request.")
    max_request_bytes: int = Field(512 * 1024, ge=1024, description="Largest request body.")
    max_event_bytes: int = Field(32 * 1024, ge=256, description="Largest single event.")
    # event semantics: client time bounds and the client IP
    clock_skew_tolerance_seconds: float = Field(
        60.0,
        ge=0,
        description="How far after received_at a corrected event time may be before it is "
        "replaced by received_at (client value kept in params.original_timestamp).",
    )
    max_event_age_days: float = Field(
        30.0,
        gt=0,
        description="Oldest plausible event time, in days before received_at (older: "
        "received_at, client value kept in params.original_timestamp).",
    )
    ip_privacy: Literal["full", "truncated", "dropped"] = Field(
        "truncated",
        description="Client IP kept as sent (full), cut to IPv4 /24 or IPv6 /48 (truncated), "
        "or not stored (dropped).",
    )

    # --- request hardening (every HTTP function) ----------------------------------------------
    max_json_depth: int = Field(
        64, ge=8, le=250, description="Deepest JSON nesting accepted in a request body."
    )
    body_read_timeout_sec: float = Field(
        10.0, gt=0, le=60, description="Deadline for receiving a whole request body (then 408)."
    )
    max_concurrent_uploads: int = Field(
        4,
        ge=1,
        description="Request bodies read at once per worker process (more: 503 + Retry-After); "
        "keep it below the worker's threads so health checks always find one.",
    )
    cors_origins_by_key: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Per write key, the browser origins allowed to use it (JSON object "
        "{key: [origin, ...]}); a key not listed is allowed from EDP_CORS_ORIGINS.",
    )

    # --- CDC ----------------------------------------------------------------------------------
    cdc_batch_size: int = Field(
        100,
        ge=1,
        validation_alias=AliasChoices("CDC_BATCH_SIZE", "EDP_CDC_BATCH_SIZE"),
        description="Flush the CDC buffer at this many rows ...",
    )
    cdc_flush_interval_sec: float = Field(
        5.0,
        gt=0,
        validation_alias=AliasChoices("CDC_FLUSH_INTERVAL_SEC", "EDP_CDC_FLUSH_INTERVAL_SEC"),
        description="... or after this many seconds, whichever comes first.",
    )
    # --- CDC staging refresh (incremental MERGE, periodic full rebuild as a check) ---
    cdc_staging_rebuild_every_min: int = Field(
        1440,
        ge=1,
        description="Every this many minutes (of the epoch) a cdc_flush run rebuilds the staging "
        "tables from the whole change log instead of merging what changed (the check).",
    )
    cdc_checkpoint_days: int = Field(
        30,
        ge=1,
        description="The full rebuild re-appends live keys whose newest raw copy is older than "
        "this; must stay below raw.cdc_* partition expiry minus the rebuild interval.",
    )
    cdc_flush_max_run_sec: float = Field(
        50.0,
        gt=0,
        le=480,  # edp.cdc.app.MAX_RUN_S: the function's 540 s timeout minus the drain margin
        description="How long one cdc_flush invocation pulls before it drains and returns "
        "(Cloud Scheduler calls it every minute).",
    )
    cdc_source_dsn: SecretStr | None = Field(
        None,
        description="libpq DSN of the shop database the local CDC reader streams from.",
        json_schema_extra=_LOCAL_ONLY,
    )
    cdc_slot_name: str = Field(
        "edp_cdc",
        description="Logical replication slot of CDC.",
        json_schema_extra=_LOCAL_ONLY,
    )
    cdc_heartbeat_interval_sec: float = Field(
        10.0, gt=0, description="CDC heartbeat interval (Debezium heartbeat.interval.ms)."
    )
    cdc_confirm_delay_sec: float = Field(
        0.0,
        ge=0,
        description="Local CDC reader: confirm the slot this long after Pub/Sub acknowledged a "
        "transaction, so a restart re-publishes what an emulator restart may have lost (0: at "
        "once, as Debezium).",
        json_schema_extra=_LOCAL_ONLY,
    )

    # --- daily ETL ----------------------------------------------------------------------------
    etl_timezone: str = Field(
        "Asia/Seoul",
        description="Time zone of reporting days (staging event_date, mart days).",
        json_schema_extra=_TERRAFORM,
    )
    etl_lookback_days: int = Field(
        3, ge=0, le=30, description="Days before the run date re-processed to pick up late events."
    )
    etl_session_timeout_minutes: int = Field(
        30, ge=1, description="Inactivity that ends a derived session (client sent no session)."
    )
    etl_bot_events_per_day: int = Field(
        5000, ge=1, description="More events than this from one user in a day flags it as a bot."
    )
    etl_retention_max_days: int = Field(
        35, ge=1, description="Largest day-N kept in mart.retention_cohorts (daily cohorts)."
    )
    etl_retention_max_weeks: int = Field(
        12, ge=1, description="Largest week-N kept in mart.retention_cohorts (weekly cohorts)."
    )
    etl_reporting_currency: str = Field(
        "KRW",
        pattern="^[A-Z]{3}$",
        description="ISO 4217 currency assumed for events that carry none (as GA4 assumes the "
        "property's currency); marts report money per currency, never converted.",
    )

    # --- lineage (OpenLineage run events of SQL model runs) ------------------------------------
    openlineage_transport: Literal["auto", "file", "http", "none"] = Field(
        "auto",
        description="Where model runs' OpenLineage events go: auto = http when "
        "EDP_OPENLINEAGE_URL is set, else file on DuckDB and none on BigQuery.",
    )
    openlineage_url: str | None = Field(
        None, description="Base URL of an OpenLineage HTTP endpoint (Marquez, a Dataplex bridge)."
    )
    openlineage_endpoint: str = Field(
        "api/v1/lineage", description="Path of the OpenLineage endpoint under the base URL."
    )
    openlineage_file: Path | None = Field(
        None,
        description="JSON-lines file of events; default <state_dir>/lineage/openlineage.jsonl.",
    )

    # --- SQL cost review ----------------------------------------------------------------------
    sql_review_usd_per_tib: float = Field(
        6.25, gt=0, description="On-demand BigQuery price the SQL reviewer prices findings at."
    )
    sql_review_top_jobs: int = Field(
        20, ge=1, le=1000, description="How many of the day's most expensive jobs get reviewed."
    )
    sql_review_mv_min_repeats: int = Field(
        3, ge=2, description="Repeats of one aggregate in a day before a materialized view pays."
    )
    query_log_path: Path | None = Field(
        None,
        description="Local JSON-lines query log the DuckDB warehouse appends to (the local "
        "stand-in of INFORMATION_SCHEMA.JOBS); unset: no log.",
    )

    # --- data-quality agent ------------------------------------------------------------------
    quality_llm: Literal["vertex", "offline"] = Field(
        "offline",
        description="Who writes incident reports: Gemini on Vertex AI, or the offline rule-based "
        "analyst (also the fallback when Vertex fails).",
    )
    quality_llm_model: str = Field("gemini-2.5-flash", description="Gemini model of reports.")
    quality_llm_location: str = Field("global", description="Vertex AI location of the model.")
    quality_llm_base_url: str | None = Field(
        None, description="Override of the Vertex AI endpoint (tests, private endpoints)."
    )
    quality_llm_timeout_s: float = Field(30.0, gt=0, description="Timeout of one report call.")
    slack_webhook_critical: SecretStr | None = Field(
        None, description="Slack incoming webhook of the critical channel (Secret Manager)."
    )
    slack_webhook_warning: SecretStr | None = Field(
        None,
        description="Slack incoming webhook of the warning channel (Secret Manager): quality "
        "warnings and the SQL reviewer's daily cost report.",
    )
    quality_quiet_minutes: int = Field(
        120, ge=0, description="No repeat alert for an open incident within this unless it worsens."
    )

    # --- observability ------------------------------------------------------------------------
    metrics_exporter: Literal["prometheus", "cloud_monitoring", "none"] = Field(
        "prometheus",
        description="Where OpenTelemetry metrics go.",
        json_schema_extra=_TERRAFORM,
    )
    metrics_api_endpoint: str | None = Field(
        None,
        pattern=r"^(127\.0\.0\.1|localhost|\[::1\]):[0-9]+$",
        description=(
            "Loopback host:port of a plaintext gRPC stand-in of the Cloud Monitoring API "
            "(tests); unset in GCP, where the exporter talks to monitoring.googleapis.com."
        ),
    )
    service_name: str = Field(
        "edp",
        validation_alias=AliasChoices("OTEL_SERVICE_NAME", "K_SERVICE", "EDP_SERVICE_NAME"),
        description=(
            "Telemetry service name (the Cloud Monitoring generic_task job); Cloud Run sets "
            "K_SERVICE."
        ),
    )
    traces_exporter: Literal["none", "console", "file", "cloud_trace"] = Field(
        "none", description="Where OpenTelemetry spans go (file: one JSON span per line)."
    )
    traces_sample_ratio: float = Field(
        1.0,
        ge=0.0,
        le=1.0,
        description=(
            "Share of new traces recorded (a trace started here without a sampled parent); "
            "downstream hops follow the parent's decision, so a trace is whole or absent. The "
            "traceparent travels with every event either way."
        ),
    )
    traces_api_endpoint: str | None = Field(
        None,
        description="Loopback host:port of a plaintext gRPC stand-in of the Cloud Trace API "
        "(tests); unset in GCP.",
        json_schema_extra=_LOCAL_ONLY,
    )
    traces_file: Path | None = Field(
        None, description="Span file of traces_exporter=file (default <state_dir>/traces.jsonl)."
    )
    metrics_export_interval_sec: float = Field(
        60.0, gt=0, description="Cloud Monitoring export period (a series takes a point per 5 s)."
    )

    @field_validator("write_keys", "cors_origins", "cdc_tables", mode="before")
    @classmethod
    def _csv(cls, value: object) -> object:
        return _split_csv(value)

    @property
    def duckdb_file(self) -> Path:
        """The DuckDB database file (explicit path, else inside the state folder)."""
        return self.duckdb_path or self.state_dir / "warehouse.duckdb"

    def dataset_name(self, logical: str) -> str:
        """Physical dataset name for a logical layer name (raw, staging, mart, monitoring).

        Example:
            >>> Settings(_env_file=None, dataset_raw="raw_dev").dataset_name("raw")
            'raw_dev'
        """
        names = {
            "raw": self.dataset_raw,
            "staging": self.dataset_staging,
            "mart": self.dataset_mart,
            "monitoring": self.dataset_monitoring,
        }
        try:
            return names[logical]
        except KeyError:
            raise ConfigError(
                f"unknown dataset layer {logical!r}; expected one of {sorted(names)}"
            ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
