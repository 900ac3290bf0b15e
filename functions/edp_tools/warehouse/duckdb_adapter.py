"""The embedded warehouse: DuckDB (a file, or ``:memory:``) behind the warehouse port.

Datasets are DuckDB schemas named like the configured BigQuery datasets
(``settings.dataset_name``), tables come from the catalogue
(:func:`edp_tools.contracts.duckdb_ddl.duckdb_create_table_sql`), and SQL is BigQuery dialect,
transpiled by :mod:`edp.warehouse.dialect` (cached) and run with only the parameters each
statement uses.

Threads: any thread may call any method. Each thread reads through its own DuckDB cursor (a
connection to the same database, ``TimeZone='UTC'``); writes (inserts, loads, scripts, DML)
are serialised by one lock, so there is one writer at a time, as DuckDB prefers. DuckDB allows
one *process* to open a file read-write: close the warehouse (or use ``read_only=True``) before
another process opens the file.

``insert_rows`` row ids: like BigQuery's ``insertId``, best effort. The adapter remembers the
ids of the last ``dedup_window`` rows it inserted per table (in this process, default 100,000)
and drops a row whose id it has seen, and repeated ids within one call; BigQuery keeps ids for
at least one minute. Nothing is checked across processes or restarts: idempotency that matters
(event_id, (pk, lsn)) is enforced by the loaders and the staging models, as in production.

``dry_run`` and ``bytes_processed``: see :mod:`edp.warehouse.estimate` (BigQuery on-demand
rules over the referenced columns of the partitions read).

Example:
    >>> wh = DuckDBWarehouse(":memory:")
    >>> wh.create_tables()
    >>> wh.query("SELECT COUNT(*) AS n FROM raw.user_events").scalar()
    0
    >>> wh.close()
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa
from sqlglot.errors import SqlglotError

from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.errors import (
    ConfigError,
    ContractError,
    EdpError,
    TransientError,
    UnknownColumnError,
    WarehouseError,
)
from edp.settings import Settings, get_settings
from edp.warehouse.arrow_schema import arrow_schema
from edp.warehouse.dialect import (
    DatasetMap,
    DuckStatement,
    dataset_map,
    parse_bigquery,
    to_duckdb,
)
from edp.warehouse.estimate import SIZE_PLACEHOLDER, estimate_statement_bytes
from edp.warehouse.port import QueryResult, ScriptResult
from edp_tools.contracts.duckdb_ddl import duckdb_create_table_sql, duckdb_type

log = logging.getLogger(__name__)

_DML = {"insert", "update", "delete", "merge"}
_READ_ONLY_KINDS = {"select"}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _to_json_text(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, default=str).decode()


def _json_text_row(row: Mapping[str, Any], json_columns: list[str]) -> Mapping[str, Any]:
    """The row with JSON column values as JSON text (a copy only when something changes)."""
    changed = {
        name: _to_json_text(row[name])
        for name in json_columns
        if name in row and not (row[name] is None or isinstance(row[name], str))
    }
    return {**row, **changed} if changed else row


class DuckDBWarehouse:
    """The warehouse port on an embedded DuckDB database.

    Args:
        path: database file, or ``":memory:"``; parent folders are created.
        catalog: the table catalogue (default: the packaged one).
        settings: settings (dataset names); default :func:`edp.settings.get_settings`.
        read_only: open the file read-only (another process may hold the writer).
        dedup_window: how many recent ``insert_rows`` ids per table are remembered.
        estimate_bytes: when to fill ``bytes_processed`` with the BigQuery estimate (one
            extra aggregate scan per table read): ``"scripts"`` (default: ``execute_script``,
            i.e. the ETL's run records), ``"always"`` (``query`` too) or ``"never"``.
            ``dry_run`` always estimates; ``query_arrow`` never does.
        query_log: a JSON-lines file every successful ``query``/``execute_script`` is appended
            to, shaped like BigQuery's ``INFORMATION_SCHEMA.JOBS`` rows (the local stand-in the
            SQL reviewer's scheduled mode reads); None: no log.
    """

    name = "duckdb"

    def __init__(
        self,
        path: str | Path = ":memory:",
        catalog: Catalog | None = None,
        settings: Settings | None = None,
        *,
        read_only: bool = False,
        dedup_window: int = 100_000,
        estimate_bytes: Literal["never", "scripts", "always"] = "scripts",
        query_log: Path | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.catalog = catalog or load_catalog()
        self.path = str(path)
        self.datasets: DatasetMap = datasets_of(self.settings)
        if self.path != ":memory:":
            # DuckDB names the database after the file: "raw.duckdb" would make "raw".t ambiguous.
            if Path(self.path).stem in {physical for _, physical in self.datasets}:
                raise ConfigError(
                    f"DuckDB file {self.path!r} is named like a dataset; choose another name"
                )
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = duckdb.connect(
                self.path, read_only=read_only, config=engine_config(self.settings)
            )
        except duckdb.IOException as exc:  # e.g. the file is locked by another process
            raise TransientError(f"cannot open DuckDB {self.path}: {exc}") from exc
        self._conn.execute("SET TimeZone = 'UTC'")
        self._schema_of = dict(self.datasets)
        self._local = threading.local()
        # thread -> its cursor; cursors of finished threads are closed when a new one is made.
        self._cursors: dict[threading.Thread, duckdb.DuckDBPyConnection] = {}
        self._cursors_lock = threading.Lock()
        self._write_lock = threading.RLock()
        self._native: dict[str, dict[str, pa.DataType]] = {}  # table -> cast-free column types
        self._dedup_window = dedup_window
        self._seen_ids: dict[str, collections.OrderedDict[str, None]] = {}
        self._estimate_queries = estimate_bytes == "always"
        self._estimate_scripts = estimate_bytes != "never"
        self._closed = False
        self._query_log = query_log

    # -- plumbing ------------------------------------------------------------------------------

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self._closed:
            raise WarehouseError("the warehouse is closed")
        cursor: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cursor is None:
            cursor = self._conn.cursor()
            cursor.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cursor
            with self._cursors_lock:
                for thread in [t for t in self._cursors if not t.is_alive()]:
                    with contextlib.suppress(duckdb.Error):
                        self._cursors.pop(thread).close()
                self._cursors[threading.current_thread()] = cursor
        return cursor

    def _spec(self, table: str) -> TableSpec:
        return self.catalog.table(table)  # raises UnknownTableError

    def _physical(self, spec: TableSpec) -> str:
        return f"{_quote(self._schema_of[spec.dataset])}.{_quote(spec.name)}"

    def _statements(self, sql: str) -> tuple[DuckStatement, ...]:
        statements = to_duckdb(sql, self.datasets)
        for statement in statements:
            for ref in statement.tables:
                self._spec(ref)
        return statements

    @staticmethod
    def _bind(statement: DuckStatement, params: Mapping[str, Any] | None) -> dict[str, Any]:
        given = params or {}
        missing = [name for name in statement.params if name not in given]
        if missing:
            raise WarehouseError(f"missing query parameters: {', '.join(missing)}")
        return {name: given[name] for name in statement.params}

    @staticmethod
    def _error(exc: Exception, sql: str) -> Exception:
        if isinstance(exc, duckdb.ConstraintException):
            return ContractError(f"constraint violated: {exc}")
        if isinstance(exc, duckdb.TransactionException):
            return TransientError(f"DuckDB transaction conflict: {exc}")
        snippet = sql if len(sql) <= 400 else sql[:400] + " ..."
        return WarehouseError(f"{exc} [SQL: {snippet}]")

    def _run(
        self,
        cursor: duckdb.DuckDBPyConnection,
        statement: DuckStatement,
        params: Mapping[str, Any] | None,
    ) -> duckdb.DuckDBPyConnection:
        try:
            return cursor.execute(statement.sql, self._bind(statement, params))
        except duckdb.Error as exc:
            raise self._error(exc, statement.sql) from exc

    def _log_job(self, sql: str, bytes_processed: int, started: float) -> None:
        """Append one ``INFORMATION_SCHEMA.JOBS``-shaped row to the query log (if any)."""
        if self._query_log is None:
            return
        record = {
            "job_id": f"local_{uuid.uuid4().hex}",
            "creation_time": datetime.now(UTC).isoformat(),
            "query": sql,
            "total_bytes_billed": bytes_processed,
            "duration_s": round(time.perf_counter() - started, 6),
        }
        self._query_log.parent.mkdir(parents=True, exist_ok=True)
        with self._query_log.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _estimate_sql(self, sql: str, params: Mapping[str, Any] | None) -> int:
        return sum(self._estimate_one(parsed, params) for parsed in parse_bigquery(sql))

    # -- the port ------------------------------------------------------------------------------

    def create_tables(self, tables: Iterable[TableSpec] | None = None) -> None:
        """Create the schemas and tables (all of the catalogue when None); idempotent."""
        specs = list(self.catalog if tables is None else tables)
        cursor = self._cursor()
        with self._write_lock:
            try:
                for schema in sorted({self._schema_of[s.dataset] for s in specs}):
                    cursor.execute(f"CREATE SCHEMA IF NOT EXISTS {_quote(schema)}")
                for spec in specs:
                    cursor.execute(duckdb_create_table_sql(spec, self._schema_of[spec.dataset]))
            except duckdb.Error as exc:
                raise WarehouseError(f"create tables: {exc}") from exc

    def _dedup(
        self, ref: str, rows: Sequence[Mapping[str, Any]], row_ids: Sequence[str] | None
    ) -> tuple[list[Mapping[str, Any]], list[str]]:
        if row_ids is None:
            return list(rows), []
        if len(row_ids) != len(rows):
            raise WarehouseError(f"{len(row_ids)} row ids for {len(rows)} rows")
        seen = self._seen_ids.setdefault(ref, collections.OrderedDict())
        kept: list[Mapping[str, Any]] = []
        ids: list[str] = []
        batch: set[str] = set()
        for row, row_id in zip(rows, row_ids, strict=True):
            if row_id in seen or row_id in batch:
                continue
            batch.add(row_id)
            kept.append(row)
            ids.append(row_id)
        return kept, ids

    def _remember(self, ref: str, ids: list[str]) -> None:
        seen = self._seen_ids.setdefault(ref, collections.OrderedDict())
        for row_id in ids:
            seen[row_id] = None
        while len(seen) > self._dedup_window:
            seen.popitem(last=False)

    def _rows_to_arrow(self, spec: TableSpec, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        """Rows -> Arrow with the table's types (C++ fast path), else per column (loose)."""
        names: set[str] = set().union(*rows)
        unknown = names.difference(spec.column_names)
        if unknown:
            raise UnknownColumnError(f"{spec.ref} has no column(s) {', '.join(sorted(unknown))}")
        columns = [n for n in spec.column_names if n in names]
        json_columns = [n for n in columns if spec.column(n).type == "JSON"]
        if json_columns:
            rows = [_json_text_row(row, json_columns) for row in rows]
        schema = arrow_schema(spec)
        fast = pa.schema([pa.field(n, schema.field(n).type) for n in columns])
        try:
            return pa.Table.from_pylist(list(rows), schema=fast)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            pass
        arrays = []
        fields = []
        for name in columns:
            field = spec.column(name)
            values = [row.get(name) for row in rows]
            try:
                array = pa.array(values, type=fast.field(name).type)
            except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
                # Strings for timestamps/dates/decimals (BigQuery JSON rows): let DuckDB cast.
                scalar = field.mode != "REPEATED" and field.type != "RECORD"
                loose = [
                    v if v is None or isinstance(v, (str, Decimal)) or not scalar else str(v)
                    for v in values
                ]
                try:
                    array = pa.array(loose)
                except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as exc:
                    raise ContractError(f"{spec.ref}.{name}: {exc}") from exc
            fields.append(pa.field(name, array.type))
            arrays.append(array)
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))

    def _native_types(self, spec: TableSpec) -> dict[str, pa.DataType]:
        """Columns whose Arrow type DuckDB stores without a cast (JSON text is validated)."""
        native = self._native.get(spec.ref)
        if native is None:
            native = self._native[spec.ref] = {
                f.name: f.type for f in arrow_schema(spec) if spec.column(f.name).type != "JSON"
            }
        return native

    def _insert_arrow(self, spec: TableSpec, data: pa.Table) -> int:
        if data.num_rows == 0:
            return 0
        unknown = [n for n in data.column_names if n not in spec.column_names]
        if unknown:
            raise UnknownColumnError(f"{spec.ref} has no column(s) {', '.join(sorted(unknown))}")
        if len(set(data.column_names)) != len(data.column_names):
            raise ContractError(f"duplicate column names loading {spec.ref}")
        columns = ", ".join(_quote(n) for n in data.column_names)
        # A column already of the table's Arrow type goes in as is: the casts cost a tenth
        # of a file load. The rest (other types, all-NULL columns, JSON text) is cast.
        native = self._native_types(spec)
        selected = ", ".join(
            _quote(n)
            if native.get(n) == data.schema.field(n).type
            else f"CAST({_quote(n)} AS {duckdb_type(spec.column(n))})"
            for n in data.column_names
        )
        view = f"_edp_in_{threading.get_ident()}"
        sql = f"INSERT INTO {self._physical(spec)} ({columns}) SELECT {selected} FROM {view}"
        cursor = self._cursor()
        with self._write_lock:
            cursor.register(view, data)
            try:
                cursor.execute(sql)
            except duckdb.Error as exc:
                raise self._error(exc, sql) from exc
            finally:
                cursor.unregister(view)
        return int(data.num_rows)

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        row_ids: Sequence[str] | None = None,
    ) -> int:
        """Insert JSON-like rows (values: Python objects, or strings BigQuery would accept).

        Returns the number of rows written (after dropping repeated ``row_ids``).
        """
        spec = self._spec(table)
        with self._write_lock:
            kept, ids = self._dedup(spec.ref, rows, row_ids)
            if not kept:
                return 0
            written = self._insert_arrow(spec, self._rows_to_arrow(spec, kept))
            self._remember(spec.ref, ids)
        return written

    def load_arrow(self, table: str, data: pa.Table) -> int:
        """Append an Arrow table (columns by name, any subset; types cast to the table's)."""
        return self._insert_arrow(self._spec(table), data)

    def _execute_one(
        self, sql: str, params: Mapping[str, Any] | None
    ) -> tuple[DuckStatement, duckdb.DuckDBPyConnection]:
        statements = self._statements(sql)
        if len(statements) != 1:
            raise WarehouseError(
                f"query() runs one statement, got {len(statements)}: use execute_script"
            )
        (statement,) = statements
        cursor = self._cursor()
        if statement.kind in _READ_ONLY_KINDS:
            return statement, self._run(cursor, statement, params)
        with self._write_lock:
            return statement, self._run(cursor, statement, params)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run one statement; rows as dicts (JSON columns parsed, like the BigQuery client)."""
        started = time.perf_counter()
        estimated = (
            sum(self._best_effort_estimate(p, params) for p in parse_bigquery(sql))
            if self._estimate_queries
            else 0
        )
        statement, result = self._execute_one(sql, params)
        try:
            # DML/DDL return no rows, like a BigQuery DML job (DuckDB would give a Count row).
            description = (result.description or []) if statement.kind == "select" else []
            rows = result.fetchall() if description else []
        except duckdb.Error as exc:
            raise self._error(exc, statement.sql) from exc
        columns = tuple(d[0] for d in description)
        json_columns = [i for i, d in enumerate(description) if str(d[1]) == "JSON"]
        out = []
        for row in rows:
            values = list(row)
            for i in json_columns:
                if isinstance(values[i], str):
                    values[i] = json.loads(values[i])
            out.append(dict(zip(columns, values, strict=True)))
        self._log_job(sql, estimated, started)
        return QueryResult(
            rows=out,
            bytes_processed=estimated,
            duration_s=time.perf_counter() - started,
            columns=columns,
        )

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run one SELECT and return Arrow (no row objects, no byte estimate)."""
        statements = self._statements(sql)
        if len(statements) != 1:
            raise WarehouseError("query_arrow() runs one statement: use execute_script")
        (statement,) = statements
        cursor = self._cursor()
        try:
            if statement.kind in _READ_ONLY_KINDS:
                relation = cursor.sql(statement.sql, params=self._bind(statement, params))
                return relation.to_arrow_table()
            with self._write_lock:
                return self._run(cursor, statement, params).to_arrow_table()
        except duckdb.Error as exc:
            raise self._error(exc, statement.sql) from exc

    def execute_script(self, sql: str, params: Mapping[str, Any] | None = None) -> ScriptResult:
        """Run ``;``-separated statements in order, holding the writer lock.

        ``rows_affected`` sums INSERT/UPDATE/DELETE/MERGE counts. If a statement fails inside
        an explicit transaction (``BEGIN TRANSACTION; ... COMMIT TRANSACTION;``), the
        transaction is rolled back, like a failing BigQuery script; statements before a
        failure outside a transaction stay applied (BigQuery behaves the same).
        """
        started = time.perf_counter()
        statements = self._statements(sql)
        parsed = parse_bigquery(sql) if self._estimate_scripts else []
        cursor = self._cursor()
        rows_affected = 0
        processed = 0
        in_transaction = False
        with self._write_lock:
            try:
                for index, statement in enumerate(statements):
                    if self._estimate_scripts and statement.kind in _DML | _READ_ONLY_KINDS:
                        processed += self._best_effort_estimate(parsed[index], params)
                    result = self._run(cursor, statement, params)
                    upper = statement.sql.lstrip().upper()
                    if statement.kind == "transaction":
                        in_transaction = upper.startswith(("BEGIN", "START"))
                    elif statement.kind in _DML:
                        row = result.fetchone()
                        rows_affected += int(row[0]) if row and row[0] is not None else 0
            except Exception:
                if in_transaction:
                    try:
                        cursor.execute("ROLLBACK")
                    except duckdb.Error:
                        log.warning("rollback after a failed script statement failed")
                raise
        self._log_job(sql, processed, started)
        return ScriptResult(
            statements=len(statements),
            rows_affected=rows_affected,
            bytes_processed=processed,
            duration_s=time.perf_counter() - started,
        )

    def _estimate_one(self, parsed: Any, params: Mapping[str, Any] | None) -> int:
        """Estimate one statement on a connection of its own.

        Its own connection: an estimate must never run inside (and, failing, abort) the
        caller's transaction; it sees committed data, which is what a dry run would see.
        """
        if self._closed:
            raise WarehouseError("the warehouse is closed")
        cursor = self._conn.cursor()
        cursor.execute("SET TimeZone = 'UTC'")

        def run_scalar(bq_sql: str, bound: Mapping[str, Any], sizes: str) -> Any:
            (statement,) = to_duckdb(bq_sql, self.datasets)
            text = statement.sql.replace(SIZE_PLACEHOLDER, f"({sizes})")
            try:
                row = cursor.execute(text, self._bind(statement, bound)).fetchone()
            except duckdb.Error as exc:
                raise self._error(exc, text) from exc
            return row[0] if row else 0

        try:
            return estimate_statement_bytes(parsed, self.catalog, params or {}, run_scalar)
        finally:
            cursor.close()

    def _best_effort_estimate(self, parsed: Any, params: Mapping[str, Any] | None) -> int:
        """A script's byte figure is informative: an estimator failure must not fail the run."""
        try:
            return self._estimate_one(parsed, params)
        except (EdpError, duckdb.Error, SqlglotError, KeyError, ValueError) as exc:
            log.warning("byte estimate skipped: %s", exc)
            return 0

    def dry_run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Estimated BigQuery on-demand bytes (see :mod:`edp.warehouse.estimate`).

        Validates the SQL like BigQuery's dry run: it must parse, transpile, name known tables
        and bind its parameters (DuckDB's EXPLAIN checks columns and types without running).
        """
        statements = self._statements(sql)
        cursor = self._cursor()
        for statement in statements:
            if statement.kind in _DML | _READ_ONLY_KINDS:
                try:
                    cursor.execute("EXPLAIN " + statement.sql, self._bind(statement, params))
                except duckdb.Error as exc:
                    raise self._error(exc, statement.sql) from exc
        return self._estimate_sql(sql, params)

    def close(self) -> None:
        """Close every cursor and the database (idempotent)."""
        if self._closed:
            return
        self._closed = True
        with self._cursors_lock:
            for cursor in self._cursors.values():
                with contextlib.suppress(duckdb.Error):
                    cursor.close()
            self._cursors.clear()
        self._conn.close()

    def __enter__(self) -> DuckDBWarehouse:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def datasets_of(settings: Settings) -> DatasetMap:
    """Logical -> physical dataset (DuckDB schema) names under ``settings``."""
    return dataset_map({ds: settings.dataset_name(ds) for ds, _ in dataset_map({})})


def engine_config(settings: Settings) -> dict[str, Any]:
    """Bounded engine: a memory limit with spilling to a temp folder, and the thread count.

    DuckDB's default limit is 80 % of the machine, so one ETL run could take most of a laptop;
    with a limit, big joins and sorts spill to disk instead. A checkpoint threshold, when set,
    replaces DuckDB's 16 MiB: the commit that crosses it checkpoints inline while holding the
    writer lock, which stalled the demo's stream loader and CDC flusher for seconds.
    """
    config: dict[str, Any] = {
        "memory_limit": settings.duckdb_memory_limit,
        "temp_directory": str(settings.state_dir / "duckdb-tmp"),
    }
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    if settings.duckdb_checkpoint_threshold:
        config["checkpoint_threshold"] = settings.duckdb_checkpoint_threshold
    return config


def from_settings(settings: Settings) -> DuckDBWarehouse:
    """The ``duckdb`` backend of :func:`edp.warehouse.get_warehouse` (entry point)."""
    return DuckDBWarehouse(
        settings.duckdb_file, settings=settings, query_log=settings.query_log_path
    )
