"""The schema catalogue: every warehouse table, as declared once in ``schemas/tables/``.

Source of truth: one YAML file per table, ``schemas/tables/<dataset>/<table>.yaml``
(mozilla/bigquery-etl's schema.yaml + metadata.yaml in one file)::

    description: Behaviour events as received, append-only (audit trail).
    fields:
      - {name: event_id, type: STRING, mode: REQUIRED, description: Client idempotency key.}
      - name: items
        type: RECORD
        mode: REPEATED
        description: GA4 items[] array.
        fields:
          - {name: item_id, type: STRING, description: Product id.}
    partitioning: {field: event_timestamp, type: DAY, expiration_days: 90,
                   require_partition_filter: true}
    clustering: [event_type, device_type]
    primary_key: [event_id]          # logical key (dedup, duplicate-rate checks); not enforced

At run time the package reads the compiled copy ``edp/contracts/generated/catalog.json``
(so a deployed function needs no ``schemas/`` folder); ``edp schemas build`` regenerates it and
the drift test fails when it and the YAML disagree.

Example:
    >>> catalog = load_catalog()
    >>> catalog.table("raw.user_events").partitioning.field
    'event_timestamp'
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from edp.errors import UnknownColumnError, UnknownTableError

BigQueryType = Literal[
    "STRING",
    "BYTES",
    "INT64",
    "FLOAT64",
    "NUMERIC",
    "BIGNUMERIC",
    "BOOL",
    "TIMESTAMP",
    "DATE",
    "TIME",
    "INTERVAL",
    "DATETIME",
    "JSON",
    "RECORD",
]
Mode = Literal["NULLABLE", "REQUIRED", "REPEATED"]
DATASETS = ("raw", "staging", "mart", "monitoring")

PACKAGED_CATALOG = Path(__file__).parent / "generated" / "catalog.json"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(_Frozen):
    """One column (BigQuery field)."""

    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    type: BigQueryType
    mode: Mode = "NULLABLE"
    description: str
    fields: tuple[FieldSpec, ...] = ()
    # NUMERIC/BIGNUMERIC precision and scale, kept so DuckDB DECIMAL matches BigQuery exactly.
    precision: int | None = None
    scale: int | None = None


class Partitioning(_Frozen):
    """Time partitioning of a table (BigQuery DAY partitions on one column)."""

    field: str
    type: Literal["DAY", "HOUR", "MONTH"] = "DAY"
    expiration_days: int | None = None
    require_partition_filter: bool = False


class FreshnessCheck(_Frozen):
    """Minutes since the newest row was written, against the table's SLA."""

    #: Column holding when a row was written (``loaded_at``, ``ingested_at``); None: the newest
    #: successful run of this table in ``monitoring.pipeline_runs`` (tables the ETL rebuilds).
    column: str | None = None
    sla_minutes: float = Field(gt=0)
    #: Rows older than this are not read (partition pruning); also the value reported when the
    #: table has no row at all in that span.
    lookback_hours: float = Field(48.0, gt=0)


class VolumeCheck(_Frozen):
    """Row count per time bucket against a seasonal, robust baseline (:mod:`edp.quality.volume`)."""

    column: str  # the time the rows are counted by (event time, change time, report day)
    bucket: Literal["hour", "day"] = "hour"
    #: ``seasonal`` (same hour of the week, robust, scored bucket and past anomalies out of
    #: training) or ``mean14`` (z against the mean/stddev of the same bucket on the last 14
    #: days including itself, |z| > ``threshold``; kept to compare the two on the same data).
    method: Literal["seasonal", "mean14"] = "seasonal"
    direction: Literal["both", "spike", "drop"] = "both"
    #: Smallest relative change that may fail (0.3 = 30 %): keeps tiny tables quiet.
    min_relative_change: float = Field(0.3, ge=0)
    #: Robust z (log scale, MAD) above which a bucket fails.
    threshold: float = Field(4.5, gt=0)
    training_weeks: int = Field(4, ge=1, le=12)
    #: Fewest seasonal samples (same hour of the week / day of the week) for a verdict;
    #: fewer gives ``insufficient_history`` instead of pass or fail.
    min_training_points: int = Field(2, ge=1)
    #: Rows arrive this late (loader/flush latency): the scored window ends this long before now.
    delay_minutes: int = Field(0, ge=0)


class NullsCheck(_Frozen):
    """Share of NULLs in key columns over the recent window."""

    columns: tuple[str, ...] = Field(min_length=1)
    max_rate: float = Field(0.05, ge=0, le=1)


class DuplicatesCheck(_Frozen):
    """Share of rows whose primary key repeats within the recent window."""

    max_rate: float = Field(0.01, ge=0, le=1)


class CategoryMixCheck(_Frozen):
    """Population stability index of categorical columns against the seasonal baseline."""

    columns: tuple[str, ...] = Field(min_length=1)
    max_psi: float = Field(0.1, gt=0)
    min_rows: int = Field(500, ge=1)
    #: Rows come in clusters of this column (a session's events share platform and device):
    #: the mix then varies by the size-weighted mean cluster size more than row counts say.
    cluster_column: str | None = None


class ReferenceCheck(_Frozen):
    """Rows whose ``column`` has no match in ``table.to_column`` (e.g. items without an order)."""

    column: str
    table: str
    to_column: str
    max_rate: float = Field(0.01, ge=0, le=1)


class CdcLagCheck(_Frozen):
    """Seconds from the source commit (``source_ts``) to the raw write (``ingested_at``)."""

    sla_seconds: float = Field(10.0, gt=0)


class RefusedShareCheck(_Frozen):
    """Refused events (this table) per accepted event (``accepted_table``) over the window."""

    accepted_table: str = "raw.user_events"
    accepted_column: str = "received_at"
    max_share: float = Field(0.02, ge=0)


class TableChecks(_Frozen):
    """The data-quality checks of one table, declared beside its schema (``checks:``)."""

    #: Column the recent-window checks (nulls, duplicates, mix, lag) filter on; the partition
    #: column when there is one, so those checks read only the partitions of the window.
    time_column: str | None = None
    window_minutes: int = Field(60, ge=30)
    freshness: FreshnessCheck | None = None
    volume: VolumeCheck | None = None
    nulls: NullsCheck | None = None
    duplicates: DuplicatesCheck | None = None
    schema_drift: bool = True
    category_mix: CategoryMixCheck | None = None
    references: tuple[ReferenceCheck, ...] = ()
    cdc_lag: CdcLagCheck | None = None
    refused_share: RefusedShareCheck | None = None
    #: Checks of tables in the same group that fail in one run form one incident (one alert).
    group: str | None = None


class TableSpec(_Frozen):
    """One table: its fields and its metadata."""

    dataset: Literal["raw", "staging", "mart", "monitoring"]
    name: str = Field(pattern=r"^[a-z_][a-z0-9_]*$")
    description: str
    fields: tuple[FieldSpec, ...]
    partitioning: Partitioning | None = None
    clustering: tuple[str, ...] = ()
    primary_key: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)
    #: For a CDC change log (``raw.cdc_<table>``): the captured source table ``schema.table``.
    #: This one declaration drives the Debezium table list, the Pub/Sub topics and flush
    #: subscriptions (settings and Terraform) and the staging table the flush refreshes.
    cdc_source: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*$")
    #: Data-quality checks (:mod:`edp.quality`); None: the table is not watched.
    checks: TableChecks | None = None

    @property
    def ref(self) -> str:
        """Logical reference ``<dataset>.<table>`` used in SQL models and code."""
        return f"{self.dataset}.{self.name}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def column(self, name: str) -> FieldSpec:
        """The field called ``name``; raises UnknownColumnError otherwise."""
        for field in self.fields:
            if field.name == name:
                return field
        raise UnknownColumnError(f"{self.ref} has no column {name!r}")


class Catalog(_Frozen):
    """All tables of the four datasets, looked up by ``dataset.table``."""

    tables: tuple[TableSpec, ...]

    def table(self, ref: str) -> TableSpec:
        """The table ``dataset.table``; raises UnknownTableError for anything else.

        This is the identifier check: code never splices a table name into SQL that did not
        come out of here.
        """
        for table in self.tables:
            if table.ref == ref:
                return table
        raise UnknownTableError(f"{ref!r} is not a table in schemas/tables")

    def __iter__(self) -> Iterator[TableSpec]:  # type: ignore[override]
        return iter(self.tables)

    def in_dataset(self, dataset: str) -> tuple[TableSpec, ...]:
        return tuple(t for t in self.tables if t.dataset == dataset)

    def cdc_sources(self) -> tuple[str, ...]:
        """The captured source tables (``schema.table``), in catalogue order.

        Example:
            >>> load_catalog().cdc_sources()
            ('shop.inventory', 'shop.order_items', 'shop.orders', 'shop.shipments')
        """
        return tuple(t.cdc_source for t in self.tables if t.cdc_source)


def catalog_from_json(text: str) -> Catalog:
    return Catalog.model_validate(json.loads(text))


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The packaged (compiled) catalogue."""
    return catalog_from_json(PACKAGED_CATALOG.read_text(encoding="utf-8"))
