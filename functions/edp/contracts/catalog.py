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
