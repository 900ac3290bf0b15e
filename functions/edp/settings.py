"""One frozen settings model, read from the environment once.

Every knob of the platform is a field here, so the README's configuration table, the Terraform
env blocks and the code cannot disagree (a test checks the README lists every variable).
Names are ``EDP_<FIELD>`` unless an alias says otherwise (Google's own variables such as
``GOOGLE_CLOUD_PROJECT`` and ``PUBSUB_EMULATOR_HOST`` keep their usual names, and the CDC flush
knobs keep the names the seed used).

Example:
    >>> from edp.settings import Settings
    >>> Settings(_env_file=None).warehouse
    'duckdb'
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

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
    )
    region: str = Field("asia-northeast3", description="GCP region of every regional resource.")
    environment: str = Field("local", description="Deployment name: local, dev, prod, ...")
    state_dir: Path = Field(
        Path(".edp"), description="Local state folder (DuckDB file, PostgreSQL cluster, logs)."
    )

    # --- warehouse ----------------------------------------------------------------------------
    warehouse: Literal["duckdb", "bigquery"] = Field(
        "duckdb", description="Warehouse backend: embedded DuckDB locally, BigQuery in GCP."
    )
    duckdb_path: Path | None = Field(
        None, description="DuckDB database file; default <state_dir>/warehouse.duckdb."
    )
    bigquery_location: str = Field("asia-northeast3", description="BigQuery dataset location.")
    bigquery_api_endpoint: str | None = Field(
        None, description="Override of the BigQuery REST endpoint (emulators, tests)."
    )
    dataset_raw: str = Field("raw", description="BigQuery dataset of the append-only raw layer.")
    dataset_staging: str = Field("staging", description="BigQuery dataset of the staging layer.")
    dataset_mart: str = Field("mart", description="BigQuery dataset of the marts.")
    dataset_monitoring: str = Field(
        "monitoring", description="BigQuery dataset of run/quality logs."
    )
    maximum_bytes_billed: int = Field(
        50 * 1024**3, description="Per-query cap on bytes billed (the seed's cost incident)."
    )

    # --- message bus --------------------------------------------------------------------------
    pubsub_emulator_host: str | None = Field(
        None,
        validation_alias=AliasChoices("PUBSUB_EMULATOR_HOST"),
        description="host:port of the Pub/Sub emulator; unset in GCP.",
    )
    topic_events: str = Field("events", description="Topic of accepted behaviour events.")
    topic_bad_events: str = Field(
        "events-bad", description="Topic of refused events (with reason)."
    )
    topic_events_dead_letter: str = Field(
        "events-dead-letter", description="Dead-letter topic of the events subscription."
    )
    subscription_events_loader: str = Field(
        "events-loader", description="Subscription the stream loader (Beam or local) reads."
    )
    subscription_bad_events_archive: str = Field(
        "events-bad-archive", description="Subscription that archives refused events."
    )
    cdc_topic_prefix: str = Field(
        "cdc", description="Debezium topic prefix: topics are <prefix>.<schema>.<table>."
    )
    cdc_dead_letter_topic: str = Field("cdc-dead-letter", description="CDC dead-letter topic.")
    cdc_subscription_prefix: str = Field(
        "cdc-flush", description="CDC flush subscriptions are <prefix>.<schema>.<table>."
    )
    cdc_tables: Annotated[list[str], NoDecode] = Field(
        default_factory=_catalog_cdc_sources,
        description=(
            "Captured source tables (schema.table, comma-separated): one topic each. Default: "
            "every raw.cdc_* table's cdc_source in schemas/tables."
        ),
    )
    max_delivery_attempts: int = Field(
        5, ge=5, le=100, description="Deliveries before Pub/Sub dead-letters a message."
    )

    # --- ingest -------------------------------------------------------------------------------
    write_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Accepted write keys (comma-separated; from Secret Manager in GCP).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"], description="Allowed browser origins (comma-separated)."
    )
    max_batch_events: int = Field(500, ge=1, description="Most events in one request.")
    max_request_bytes: int = Field(512 * 1024, ge=1024, description="Largest request body.")
    max_event_bytes: int = Field(32 * 1024, ge=256, description="Largest single event.")

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
    cdc_flush_max_run_sec: float = Field(
        50.0,
        gt=0,
        le=480,  # edp.cdc.app.MAX_RUN_S: the function's 540 s timeout minus the drain margin
        description="How long one cdc_flush invocation pulls before it drains and returns "
        "(Cloud Scheduler calls it every minute).",
    )
    cdc_source_dsn: SecretStr | None = Field(
        None, description="libpq DSN of the shop database the local CDC reader streams from."
    )
    cdc_slot_name: str = Field("edp_cdc", description="Logical replication slot of CDC.")
    cdc_heartbeat_interval_sec: float = Field(
        10.0, gt=0, description="CDC heartbeat interval (Debezium heartbeat.interval.ms)."
    )

    # --- daily ETL ----------------------------------------------------------------------------
    etl_timezone: str = Field(
        "Asia/Seoul", description="Time zone of reporting days (staging event_date, mart days)."
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

    # --- observability ------------------------------------------------------------------------
    metrics_exporter: Literal["prometheus", "cloud_monitoring", "none"] = Field(
        "prometheus", description="Where OpenTelemetry metrics go."
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
