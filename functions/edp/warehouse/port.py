"""The warehouse port: what the platform needs from a warehouse, and nothing more.

Two adapters implement it: :class:`edp_tools.warehouse.duckdb_adapter.DuckDBWarehouse` (embedded,
the local default) and :class:`edp.warehouse.bigquery_adapter.BigQueryWarehouse`. Both take SQL
written once in **BigQuery dialect** with logical table names (``raw.user_events``) and named
parameters (``@day``); the DuckDB adapter transpiles it with sqlglot (fixing the known traps by
AST rewrites in :mod:`edp.warehouse.dialect`), the BigQuery adapter qualifies the table names
with the project and the configured dataset names.

Rules every adapter keeps:

- table names are checked against the schema catalogue (``UnknownTableError`` otherwise), and
  column names of inserted rows against the table's schema (``UnknownColumnError``);
- values are always bound parameters, never spliced into SQL text;
- failures are raised as ``WarehouseError`` (``TransientError`` when retrying may help).

Get one with :func:`edp.warehouse.get_warehouse`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import pyarrow as pa

from edp.contracts.catalog import TableSpec


@dataclass(frozen=True)
class QueryResult:
    """Rows of a query, plus what it cost."""

    rows: list[dict[str, Any]]
    bytes_processed: int = 0
    duration_s: float = 0.0
    columns: tuple[str, ...] = field(default=())

    def scalar(self) -> Any:
        """The first column of the first row (None when there are no rows)."""
        if not self.rows:
            return None
        return next(iter(self.rows[0].values()))


@dataclass(frozen=True)
class ScriptResult:
    """Outcome of a multi-statement script."""

    statements: int
    rows_affected: int
    bytes_processed: int
    duration_s: float


@runtime_checkable
class Warehouse(Protocol):
    """The warehouse port."""

    name: str  # "duckdb" | "bigquery"

    def create_tables(self, tables: Iterable[TableSpec] | None = None) -> None:
        """Create the datasets and the tables (all of the catalogue when None); idempotent."""

    def insert_rows(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        row_ids: Sequence[str] | None = None,
    ) -> int:
        """Streaming insert; ``row_ids`` are BigQuery insertIds (best-effort dedup).

        Returns the number of rows written. Raises ContractError for unknown columns.
        """

    def load_arrow(self, table: str, data: pa.Table) -> int:
        """Batch-load an Arrow table (columns named as the table's fields); returns rows."""

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
        """Run one BigQuery-dialect statement with named ``@params``."""

    def query_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Like :meth:`query` but returns Arrow (fast path for large results)."""

    def execute_script(self, sql: str, params: Mapping[str, Any] | None = None) -> ScriptResult:
        """Run a multi-statement BigQuery-dialect script (``;``-separated)."""

    def dry_run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Bytes the statement would process (BigQuery dry run; an estimate on DuckDB)."""

    def close(self) -> None:
        """Release connections."""
