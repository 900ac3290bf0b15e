"""Where the job writes: BigQuery (Storage Write API) in GCP, the warehouse port locally.

**At-least-once Storage Write API, on purpose.** The exactly-once mode of Beam's Storage Write
sink writes to application-created streams with offsets and commits them every
``triggering_frequency``: it adds that commit delay to every row and a shuffle + per-stream state
to the job, to guard against the one thing our rows already survive - a retried bundle writing a
row twice. Our rows carry ``event_id`` (the idempotency key, from the client or ingest), the job
deduplicates by it within a window, raw is an append-only audit table, and staging keeps one row
per event_id with ROW_NUMBER. So the default stream with ``use_at_least_once=True`` gives the
same effective exactly-once result at lower latency and cost. ``--bq_exactly_once`` switches to
exactly-once streams for anyone who reads raw directly and cannot tolerate a rare duplicate.

Note: in the Python SDK the Storage Write API sink is a cross-language (Java) transform - the
Dataflow runner expands it itself; on Flink the same expansion-service jar as the Pub/Sub read is
needed (``gke/images/beam.Dockerfile`` bakes it in).

The warehouse sink (``--sink=warehouse``) writes each micro-batch through
``edp.warehouse.get_warehouse()`` (DuckDB locally): it is how the integration test runs the real
pipeline end to end on this machine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import apache_beam as beam
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.metrics import Metrics
from apache_beam.utils.timestamp import Timestamp

from edp.contracts.catalog import FieldSpec, TableSpec, load_catalog
from edp.load.transforms import RawRowMapper, now_micros, rows_to_arrow
from edp.settings import get_settings
from edp.warehouse.arrow_schema import arrow_schema
from edp.warehouse.port import Warehouse
from edp_stream_load.transforms import NAMESPACE, MicroBatch

_write_lock = threading.Lock()


def _shared_warehouse() -> Warehouse:
    """One warehouse per worker process and target (DuckDB: one handle shared by every DoFn)."""
    settings = get_settings()
    return _warehouse_for(settings.warehouse, str(settings.duckdb_file), settings.project)


@lru_cache(maxsize=4)
def _warehouse_for(kind: str, duckdb_file: str, project: str) -> Warehouse:
    from edp.warehouse import get_warehouse

    return get_warehouse(get_settings())


class WriteBatchFn(beam.DoFn):
    """Writes one micro-batch of rows into a catalogue table through the warehouse port."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.written = Metrics.counter(NAMESPACE, "rows_written")
        self.spec: TableSpec | None = None

    def setup(self) -> None:
        self.spec = load_catalog().table(self.table)
        self.schema = arrow_schema(self.spec)
        self.loaded_at_column = "loaded_at" if "loaded_at" in self.spec.column_names else None

    def process(self, batch: list[dict[str, Any]]) -> Iterator[int]:
        assert self.spec is not None
        if self.loaded_at_column:
            loaded_at = now_micros()
            for row in batch:
                if row.get(self.loaded_at_column) is None:
                    row[self.loaded_at_column] = loaded_at
        data = rows_to_arrow(batch, self.schema)
        with _write_lock:  # DuckDB connections are not safe for concurrent use
            written = _shared_warehouse().load_arrow(self.spec.ref, data)
        self.written.inc(written)
        yield written


class WriteToWarehouse(beam.PTransform):  # type: ignore[misc]
    """Rows -> micro-batches per shard and pane -> ``Warehouse.load_arrow``."""

    def __init__(self, table: str, shards: int = 4) -> None:
        super().__init__()
        self.table = table
        self.shards = shards

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return (
            rows
            | "MicroBatch" >> MicroBatch(self.shards)
            | "LoadArrow" >> beam.ParDo(WriteBatchFn(self.table))
        )


def bigquery_schema(table: TableSpec) -> dict[str, Any]:
    """The table's BigQuery schema as WriteToBigQuery takes it (the catalogue's own derivation,
    the same fields Terraform creates the table with)."""
    from edp.contracts.bigquery import bigquery_schema as fields_of

    return {"fields": fields_of(table)}


def to_storage_write_row(row: dict[str, Any], table: TableSpec) -> dict[str, Any]:
    """Our normalised row in the shape Beam's Storage Write sink wants (Beam Timestamps)."""
    return _convert(row, table.fields)


def _convert(row: dict[str, Any], fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for spec in fields:
        value = row.get(spec.name)
        if value is not None:
            if spec.type == "TIMESTAMP":
                value = Timestamp(micros=value)
            elif spec.type == "RECORD":
                value = (
                    [_convert(v, spec.fields) for v in value]
                    if spec.mode == "REPEATED"
                    else _convert(value, spec.fields)
                )
        out[spec.name] = value
    return out


class WriteToBigQueryStorage(beam.PTransform):  # type: ignore[misc]
    """Rows -> ``<project>:<dataset>.<table>`` with the Storage Write API (see module doc)."""

    def __init__(self, table: str, project: str | None, exactly_once: bool = False) -> None:
        super().__init__()
        self.table = table
        self.project = project
        self.exactly_once = exactly_once

    def expand(self, rows: beam.PCollection) -> Any:
        spec = load_catalog().table(self.table)
        settings = get_settings()
        project = self.project or settings.project
        destination = f"{project}:{settings.dataset_name(spec.dataset)}.{spec.name}"
        return (
            rows
            | "ToStorageWriteRow" >> beam.Map(to_storage_write_row, spec)
            | "StorageWrite"
            >> WriteToBigQuery(
                table=destination,
                schema=bigquery_schema(spec),
                method=WriteToBigQuery.Method.STORAGE_WRITE_API,
                use_at_least_once=not self.exactly_once,
                # Exactly-once streams commit per triggering_frequency; at-least-once needs none.
                triggering_frequency=5 if self.exactly_once else None,
                create_disposition=BigQueryDisposition.CREATE_NEVER,  # Terraform creates tables
                write_disposition=BigQueryDisposition.WRITE_APPEND,
            )
        )


def raw_mapper(table: str) -> RawRowMapper:
    """The mapper of a raw table (exposed for tests)."""
    return RawRowMapper.for_table(load_catalog().table(table))
