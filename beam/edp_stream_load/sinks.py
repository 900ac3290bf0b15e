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

**Exactly-once mode** (``--bq_exactly_once``) uses auto-sharding: Beam picks the number of
streams from the throughput instead of a fixed count.

**Refused rows are never lost**: ``failed_rows_with_errors`` (a row BigQuery refuses - a value
out of range, a JSON text it cannot parse) becomes an ``insert_error`` dead letter with the
error message as its reason and the row as its payload, written to ``raw.user_events_errors``
with the parse-time dead letters. A row the error table refuses too is counted
(``dead_letters_insert_error`` and the sink's own failure output) and logged by the runner.

**The sink is a Java transform on every runner.** Python's Storage Write sink is cross-language:
at submission Beam starts an expansion service (the GCP expansion-service jar) to expand it -
on Dataflow as on Flink. Beam would download that jar from Maven; the images bake it in and
``--bigquery_expansion_service`` points at it (``expansion_service`` here, injectable so a test
can put a stand-in at that point).

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
import orjson
from apache_beam.io.gcp.bigquery import BigQueryDisposition, WriteToBigQuery
from apache_beam.metrics import Metrics
from apache_beam.utils.timestamp import Timestamp

from edp.contracts.catalog import FieldSpec, TableSpec, load_catalog
from edp.load.transforms import (
    ERRORS_TABLE,
    DeadLetter,
    RawRowMapper,
    dead_letter_row,
    rows_to_arrow,
)
from edp.load.values import now_micros, to_utc_micros
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


# Beam 2.77's BigQuery -> Python type map has no JSON (``bigquery_tools.
# BIGQUERY_TYPE_TO_PYTHON_TYPE``): without this the sink fails at construction with "Converting
# BigQuery type [JSON] to Python Beam type is not supported". JSON travels as its text - the
# Storage Write API takes a JSON column's value as a string (our rows already hold JSON text).
TYPE_OVERRIDES: dict[str, type] = {"JSON": str}
# Exactly-once streams commit every N seconds (the Storage Write API's offsets); at-least-once
# writes to the default stream and needs no commit cadence.
EXACTLY_ONCE_TRIGGERING_S = 5


class WriteToBigQueryStorage(beam.PTransform):  # type: ignore[misc]
    """Rows -> ``<project>:<dataset>.<table>`` with the Storage Write API (see module doc).

    Returns the rows BigQuery refused, as dead-letter rows of ``raw.user_events_errors``
    (``insert_error``, stage ``insert``, the error message as the reason, the row as payload).
    """

    def __init__(
        self,
        table: str,
        project: str | None,
        exactly_once: bool = False,
        expansion_service: Any = None,
        errors_table: str = ERRORS_TABLE,
    ) -> None:
        super().__init__()
        self.table = table
        self.project = project
        self.exactly_once = exactly_once
        self.expansion_service = expansion_service
        self.errors_table = errors_table

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        spec = load_catalog().table(self.table)
        settings = get_settings()
        project = self.project or settings.project
        destination = f"{project}:{settings.dataset_name(spec.dataset)}.{spec.name}"
        result = (
            rows
            | "ToStorageWriteRow" >> beam.Map(to_storage_write_row, spec)
            | "StorageWrite"
            >> WriteToBigQuery(
                table=destination,
                schema=bigquery_schema(spec),
                method=WriteToBigQuery.Method.STORAGE_WRITE_API,
                use_at_least_once=not self.exactly_once,
                # Exactly-once: Beam picks the number of streams from the throughput instead of
                # a fixed count, and commits them every few seconds.
                with_auto_sharding=self.exactly_once,
                triggering_frequency=EXACTLY_ONCE_TRIGGERING_S if self.exactly_once else None,
                create_disposition=BigQueryDisposition.CREATE_NEVER,  # Terraform creates tables
                write_disposition=BigQueryDisposition.WRITE_APPEND,
                type_overrides=TYPE_OVERRIDES,
                expansion_service=self.expansion_service,
            )
        )
        return result.failed_rows_with_errors | "RefusedToDeadLetters" >> beam.ParDo(
            RefusedRowFn(self.errors_table)
        )


class RefusedRowFn(beam.DoFn):
    """A row BigQuery refused (``{"error_message", "failed_row"}``) -> a dead-letter row."""

    def __init__(self, errors_table: str = ERRORS_TABLE) -> None:
        self.errors_table = errors_table
        self.refused = Metrics.counter(NAMESPACE, "dead_letters_insert_error")
        self.spec: TableSpec | None = None

    def setup(self) -> None:
        self.spec = load_catalog().table(self.errors_table)

    def process(self, refused: dict[str, Any]) -> Iterator[dict[str, Any]]:
        assert self.spec is not None
        self.refused.inc()
        yield refused_to_dead_letter(refused, self.spec, now_micros())


def refused_to_dead_letter(
    refused: dict[str, Any], errors_table: TableSpec, failed_at_us: int
) -> dict[str, Any]:
    """The dead-letter row of one refused Storage Write row (the shape Beam's
    ``failed_rows_with_errors`` gives for dict input: ``error_message`` + ``failed_row``)."""
    row = plain(refused.get("failed_row") or {})
    publish = row.get("pubsub_publish_time")
    dead = DeadLetter(
        error_type="insert_error",
        reason=str(refused.get("error_message") or "refused by BigQuery")[:1000],
        payload=orjson.dumps(row, default=str).decode(),
        message_id=str(row.get("pubsub_message_id") or ""),
        line=-1,
        publish_time_us=to_utc_micros(publish) if publish else failed_at_us,
        event_id=row.get("event_id"),
        ingested_at_us=to_utc_micros(row["ingested_at"]) if row.get("ingested_at") else None,
    )
    return dead_letter_row(dead, errors_table, failed_at_us)


def plain(value: Any) -> Any:
    """Beam Rows / Timestamps (what the sink hands back) as JSON-able Python values.

    >>> plain({"t": Timestamp(micros=1_500_000), "xs": [1, None]})
    {'t': '1970-01-01T00:00:01.500000Z', 'xs': [1, None]}
    """
    if isinstance(value, Timestamp):
        return value.to_utc_datetime().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if hasattr(value, "_asdict"):
        value = value._asdict()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def raw_mapper(table: str) -> RawRowMapper:
    """The mapper of a raw table (exposed for tests)."""
    return RawRowMapper.for_table(load_catalog().table(table))
