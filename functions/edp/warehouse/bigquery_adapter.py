"""The production warehouse: BigQuery behind the warehouse port (``google-cloud-bigquery``).

- Tables are created from the catalogue with the same API resource Terraform builds
  (:func:`edp.contracts.bigquery.bigquery_table_resource`: fields, DAY partitioning, partition
  expiry, ``require_partition_filter``, clustering, descriptions, labels), in datasets named by
  ``settings.dataset_name`` and located in ``settings.bigquery_location``.
- SQL is BigQuery dialect already: only dataset names are mapped
  (:func:`edp.warehouse.dialect.to_bigquery`; the text is untouched when names do not change),
  every ``dataset.table`` is checked against the catalogue, and only the parameters a statement
  uses are sent, typed from their Python values (:func:`query_parameter`).
- Every query carries ``maximum_bytes_billed`` from settings (a runaway scan fails instead
  of billing).
- Streaming inserts use ``insertAll`` with the caller's ``row_ids`` as insertIds (BigQuery's
  best-effort dedup); batch loads (:meth:`BigQueryWarehouse.load_arrow`) are NDJSON load jobs,
  so REPEATED RECORD, JSON and TIMESTAMP columns load exactly as ``insert_rows`` writes them.
- The client comes from a cached factory (:func:`bigquery_client`); with
  ``EDP_BIGQUERY_API_ENDPOINT`` set (an emulator) it uses that endpoint and anonymous
  credentials.
- 429 / 5xx / connection failures raise :class:`~edp.errors.TransientError`; anything else
  :class:`~edp.errors.WarehouseError` (bad rows: :class:`~edp.errors.ContractError`).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from decimal import Decimal
from functools import lru_cache
from typing import Any

import pyarrow as pa
import requests
from google.api_core import exceptions as gexc
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.auth.exceptions import DefaultCredentialsError
from google.cloud import bigquery

from edp.contracts.bigquery import bigquery_table_resource
from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.errors import (
    ConfigError,
    ContractError,
    TransientError,
    UnknownColumnError,
    WarehouseError,
)
from edp.settings import Settings, get_settings
from edp.warehouse.dialect import (
    DatasetMap,
    dataset_map,
    parse_bigquery,
    referenced_tables,
    to_bigquery,
)
from edp.warehouse.port import QueryResult, ScriptResult

#: insertAll requests are cut at this many rows (BigQuery recommends ~500 per request).
INSERT_CHUNK_ROWS = 500
#: Client-side deadline of one API call, retries included (seconds).
CALL_DEADLINE_S = 120.0

_TRANSIENT = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    gexc.RetryError,
    ConnectionError,
    TimeoutError,
    requests.exceptions.ConnectionError,
    requests.exceptions.Timeout,
)
_READY_PARAMETERS = (
    bigquery.ScalarQueryParameter,
    bigquery.ArrayQueryParameter,
    bigquery.StructQueryParameter,
)
_TRANSIENT_REASONS = {"rateLimitExceeded", "backendError", "internalError"}


@lru_cache(maxsize=8)
def bigquery_client(
    project: str, location: str, api_endpoint: str | None = None
) -> bigquery.Client:
    """A cached BigQuery client (anonymous credentials when an endpoint override is given).

    Example:
        >>> bigquery_client("p", "asia-northeast3", "http://127.0.0.1:9050").project
        'p'
    """
    if api_endpoint:
        from google.auth.credentials import AnonymousCredentials

        return bigquery.Client(
            project=project,
            location=location,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=api_endpoint),
        )
    try:
        return bigquery.Client(project=project, location=location)
    except DefaultCredentialsError as exc:
        raise ConfigError(f"no Google credentials for BigQuery: {exc}") from exc


def _scalar_type(value: Any) -> str:  # noqa: PLR0911 (one branch per BigQuery type)
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    if isinstance(value, Decimal):
        return "BIGNUMERIC" if -value.as_tuple().exponent > 9 else "NUMERIC"  # type: ignore[operator]
    if isinstance(value, bytes):
        return "BYTES"
    if isinstance(value, dt.datetime):
        return "TIMESTAMP" if value.tzinfo is not None else "DATETIME"
    if isinstance(value, dt.date):
        return "DATE"
    if isinstance(value, dt.time):
        return "TIME"
    return "STRING"


def query_parameter(name: str, value: Any) -> bigquery.ScalarQueryParameter | Any:
    """A typed BigQuery query parameter from a Python value.

    bool -> BOOL, int -> INT64, float -> FLOAT64, Decimal -> NUMERIC (BIGNUMERIC beyond 9
    decimals), str -> STRING, bytes -> BYTES, aware datetime -> TIMESTAMP, naive -> DATETIME,
    date -> DATE, time -> TIME, list/tuple -> ARRAY of the first non-NULL element's type
    (STRING when empty), None -> a NULL STRING. A ready ``bigquery`` query parameter is passed
    through (use one for a typed NULL).

    Example:
        >>> query_parameter("day", dt.date(2024, 1, 1)).type_
        'DATE'
        >>> query_parameter("ids", [1, 2]).array_type
        'INT64'
    """
    if isinstance(value, _READY_PARAMETERS):
        return value
    if isinstance(value, list | tuple):
        first = next((v for v in value if v is not None), None)
        return bigquery.ArrayQueryParameter(
            name, _scalar_type(first) if first is not None else "STRING", list(value)
        )
    if isinstance(value, Mapping):
        raise WarehouseError(f"parameter {name!r}: STRUCT parameters are not supported")
    return bigquery.ScalarQueryParameter(name, _scalar_type(value), value)


def _interval_text(value: dt.timedelta) -> str:
    """A duration as BigQuery's canonical INTERVAL text (``Y-M D H:M:S.F``).

    Example:
        >>> _interval_text(dt.timedelta(hours=-22, microseconds=-5))
        '0-0 0 -22:0:0.000005'
    """
    micros = value // dt.timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    seconds, frac = divmod(abs(micros), 1_000_000)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"0-0 0 {sign}{hours}:{minute}:{sec}.{frac:06d}"


def _json_value(value: Any) -> Any:  # noqa: PLR0911 (one branch per JSON shape)
    """A value as insertAll / NDJSON wants it (ISO text for times, str for decimals)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value).replace("inf", "Infinity").replace("nan", "NaN")  # insertAll's form
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, dt.timedelta):
        return _interval_text(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Mapping):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)


def _classify(exc: Exception, what: str) -> Exception:
    if isinstance(exc, _TRANSIENT):
        return TransientError(f"{what}: {exc}")
    if isinstance(exc, gexc.GoogleAPICallError):
        reasons = {e.get("reason") for e in (exc.errors or []) if isinstance(e, Mapping)}
        if reasons & _TRANSIENT_REASONS:
            return TransientError(f"{what}: {exc}")
    return WarehouseError(f"{what}: {exc}")


@contextmanager
def _api(what: str) -> Iterator[None]:
    try:
        yield
    except (gexc.GoogleAPIError, OSError, requests.exceptions.RequestException) as exc:
        raise _classify(exc, what) from exc


class BigQueryWarehouse:
    """The warehouse port on BigQuery.

    Args:
        settings: project, location, dataset names, endpoint, ``maximum_bytes_billed``.
        catalog: the table catalogue (default: the packaged one).
        client: a ready client (default: :func:`bigquery_client` for the settings).
        deadline_s: client-side deadline of one API call, retries of 429/5xx included.
    """

    name = "bigquery"

    def __init__(
        self,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        client: bigquery.Client | None = None,
        deadline_s: float = CALL_DEADLINE_S,
    ) -> None:
        self.settings = settings or get_settings()
        self.catalog = catalog or load_catalog()
        self.client = client or bigquery_client(
            self.settings.project,
            self.settings.bigquery_location,
            self.settings.bigquery_api_endpoint,
        )
        self.project = self.settings.project
        self.datasets: DatasetMap = dataset_map(
            {ds: self.settings.dataset_name(ds) for ds, _ in dataset_map({})}
        )
        self._dataset_of = dict(self.datasets)
        self.deadline_s = deadline_s
        self._retry = Retry(deadline=deadline_s)

    # -- plumbing ------------------------------------------------------------------------------

    def _table_id(self, spec: TableSpec) -> str:
        return f"{self.project}.{self._dataset_of[spec.dataset]}.{spec.name}"

    def _sql(self, sql: str) -> str:
        for ref in referenced_tables(sql):
            self.catalog.table(ref)  # raises UnknownTableError
        return to_bigquery(sql, self.datasets)

    def _job_config(
        self, sql: str, params: Mapping[str, Any] | None, **kwargs: Any
    ) -> bigquery.QueryJobConfig:
        used: dict[str, None] = {}
        for statement in parse_bigquery(sql):
            from sqlglot import exp

            for node in statement.find_all(exp.Parameter, exp.Placeholder):
                if node.name:
                    used[node.name] = None
        given = params or {}
        missing = [name for name in used if name not in given]
        if missing:
            raise WarehouseError(f"missing query parameters: {', '.join(missing)}")
        return bigquery.QueryJobConfig(
            query_parameters=[query_parameter(name, given[name]) for name in used],
            maximum_bytes_billed=self.settings.maximum_bytes_billed,
            use_legacy_sql=False,
            **kwargs,
        )

    def _run(
        self, sql: str, params: Mapping[str, Any] | None, **kwargs: Any
    ) -> tuple[bigquery.QueryJob, Any]:
        text = self._sql(sql)
        config = self._job_config(sql, params, **kwargs)
        with _api("query"):
            # job_retry=None: with a job_retry the client adds its own 10-minute retry around
            # the insert, which would ignore our deadline; ``retry`` still retries 429/5xx.
            job = self.client.query(text, job_config=config, retry=self._retry, job_retry=None)
            if config.dry_run:
                return job, None
            rows = job.result(retry=self._retry, job_retry=self._retry, timeout=self.deadline_s)
        return job, rows

    def _check_columns(self, spec: TableSpec, names: Iterable[str]) -> None:
        unknown = sorted({n for n in names if n not in spec.column_names})
        if unknown:
            raise UnknownColumnError(f"{spec.ref} has no column(s) {', '.join(unknown)}")

    def _encode_row(
        self, spec: TableSpec, row: Mapping[str, Any], *, for_load: bool = False
    ) -> dict[str, Any]:
        """One row as JSON values; JSON columns as text for insertAll, nested for NDJSON loads.

        insertAll takes a JSON column's value as JSON text; in an NDJSON load file the value
        is the JSON itself (text there would load as a JSON *string*).
        """
        out = {}
        for name, value in row.items():
            field = spec.column(name)
            if field.type == "JSON" and value is not None:
                if for_load:
                    out[name] = json.loads(value) if isinstance(value, str) else _json_value(value)
                else:
                    out[name] = value if isinstance(value, str) else json.dumps(_json_value(value))
            elif value is None and field.mode == "REQUIRED":
                raise ContractError(f"{spec.ref}.{name} is REQUIRED")
            else:
                out[name] = _json_value(value)
        for field in spec.fields:
            if field.mode == "REQUIRED" and field.name not in out:
                raise ContractError(f"{spec.ref}.{field.name} is REQUIRED")
        return out

    # -- the port ------------------------------------------------------------------------------

    def create_tables(self, tables: Iterable[TableSpec] | None = None) -> None:
        """Create the datasets and tables (all of the catalogue when None); idempotent."""
        specs = list(self.catalog if tables is None else tables)
        with _api("create tables"):
            for dataset_id in sorted({self._dataset_of[s.dataset] for s in specs}):
                dataset = bigquery.Dataset(f"{self.project}.{dataset_id}")
                dataset.location = self.settings.bigquery_location
                self.client.create_dataset(dataset, exists_ok=True, retry=self._retry)
            for spec in specs:
                resource = bigquery_table_resource(
                    spec, self.project, self._dataset_of[spec.dataset]
                )
                table = bigquery.Table.from_api_repr(resource)
                self.client.create_table(table, exists_ok=True, retry=self._retry)

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        row_ids: Sequence[str] | None = None,
    ) -> int:
        """Streaming insert (``insertAll``) in chunks; ``row_ids`` become insertIds.

        Returns the number of rows sent (BigQuery does not report dropped duplicates).
        Raises ContractError when BigQuery refuses rows (with its per-row reasons).
        """
        spec = self.catalog.table(table)
        if row_ids is not None and len(row_ids) != len(rows):
            raise WarehouseError(f"{len(row_ids)} row ids for {len(rows)} rows")
        self._check_columns(spec, {k for row in rows for k in row})
        encoded = [self._encode_row(spec, row) for row in rows]
        table_id = self._table_id(spec)
        for start in range(0, len(encoded), INSERT_CHUNK_ROWS):
            chunk = encoded[start : start + INSERT_CHUNK_ROWS]
            ids: Any = (
                list(row_ids[start : start + INSERT_CHUNK_ROWS])
                if row_ids is not None
                else bigquery.AutoRowIDs.GENERATE_UUID
            )
            with _api(f"insert into {spec.ref}"):
                errors = self.client.insert_rows_json(
                    table_id, chunk, row_ids=ids, retry=self._retry, timeout=self.deadline_s
                )
            if errors:
                raise ContractError(f"{spec.ref}: BigQuery refused rows: {errors[:5]}")
        return len(encoded)

    def load_arrow(self, table: str, data: pa.Table) -> int:
        """Append an Arrow table with an NDJSON load job (WRITE_APPEND); returns rows."""
        spec = self.catalog.table(table)
        self._check_columns(spec, data.column_names)
        if data.num_rows == 0:
            return 0
        buffer = io.BytesIO()
        for batch in data.to_batches(max_chunksize=50_000):
            for row in batch.to_pylist():
                encoded = self._encode_row(spec, row, for_load=True)
                buffer.write(json.dumps(encoded, separators=(",", ":")).encode("utf-8"))
                buffer.write(b"\n")
        buffer.seek(0)
        config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.NEWLINE_DELIMITED_JSON,
            write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        )
        with _api(f"load into {spec.ref}"):
            # No size -> a resumable upload. (The multipart path, which load_table_from_json
            # takes, sends the media part as Content-Type */*: bqemulator refuses that, and
            # resumable uploads work on both for any payload size.)
            job = self.client.load_table_from_file(
                buffer, self._table_id(spec), job_config=config, rewind=True
            )
            job.result(retry=self._retry, timeout=self.deadline_s)
        # A finished NDJSON load job (max_bad_records=0) wrote every row.
        return int(data.num_rows)

    def _one_statement(self, sql: str, method: str) -> None:
        count = len(parse_bigquery(sql))
        if count != 1:
            raise WarehouseError(f"{method}() runs one statement, got {count}: use execute_script")

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run one statement; rows as dicts."""
        self._one_statement(sql, "query")
        started = time.perf_counter()
        job, rows = self._run(sql, params)
        with _api("fetch rows"):
            out = [dict(row.items()) for row in rows]
        columns = tuple(f.name for f in (rows.schema or ())) if rows is not None else ()
        return QueryResult(
            rows=out,
            bytes_processed=int(job.total_bytes_processed or 0),
            duration_s=time.perf_counter() - started,
            columns=columns,
        )

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run one SELECT and return Arrow (REST pages; no Storage Read API client)."""
        self._one_statement(sql, "query_arrow")
        _, rows = self._run(sql, params)
        with _api("fetch arrow"):
            return rows.to_arrow(create_bqstorage_client=False)

    def execute_script(self, sql: str, params: Mapping[str, Any] | None = None) -> ScriptResult:
        """Run a BigQuery script as one job (BigQuery rolls back a failed transaction).

        ``rows_affected`` and ``bytes_processed`` sum the script's child jobs.
        """
        started = time.perf_counter()
        statements = len(parse_bigquery(sql))
        job, _ = self._run(sql, params)
        rows_affected = int(job.num_dml_affected_rows or 0)
        processed = int(job.total_bytes_processed or 0)
        if statements > 1 or job.statement_type == "SCRIPT":
            with _api("list script jobs"):
                children = list(self.client.list_jobs(parent_job=job.job_id, retry=self._retry))
            if children:
                rows_affected = sum(
                    int(getattr(c, "num_dml_affected_rows", 0) or 0) for c in children
                )
                processed = max(
                    processed,
                    sum(int(getattr(c, "total_bytes_processed", 0) or 0) for c in children),
                )
        return ScriptResult(
            statements=statements,
            rows_affected=rows_affected,
            bytes_processed=processed,
            duration_s=time.perf_counter() - started,
        )

    def dry_run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """``total_bytes_processed`` of a BigQuery dry run (validates the SQL too)."""
        job, _ = self._run(sql, params, dry_run=True, use_query_cache=False)
        return int(job.total_bytes_processed or 0)

    def close(self) -> None:
        """Nothing to release: the client is shared (cached) across warehouses."""

    def __enter__(self) -> BigQueryWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
