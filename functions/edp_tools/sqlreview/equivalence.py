"""Prove an exact rewrite on sample data: run the statement before and after, compare results.

Both statements run on a warehouse holding sample data (locally the DuckDB warehouse: the
same BigQuery-dialect SQL, transpiled by the adapter) with the same parameters; the results
must be the same multiset of rows (with ORDER BY, the same sequence). A rewrite that fails to
run, or whose results differ, is not shown. This lives in the tooling package because it
needs DuckDB; the reviewer core takes it as an injected ``Verifier``
(:data:`edp.sqlreview.rewrites.Verifier`), found through the ``edp.sqlreview.verifiers``
entry point group.

Example:
    >>> from edp.settings import Settings
    >>> check = DuckDBVerifier.in_memory(Settings(_env_file=None))
    >>> check("SELECT 1 AS x UNION ALL SELECT 2", "SELECT 2 AS x UNION ALL SELECT 1", {})
    True
    >>> check("SELECT 1 AS x", "SELECT 2 AS x", {})
    False
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlglot import exp

from edp.errors import EdpError
from edp.settings import Settings
from edp.warehouse.dialect import parse_bigquery
from edp.warehouse.port import Warehouse
from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse


def _canonical(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    return [tuple(repr(v) for v in row.values()) for row in rows]


@dataclass
class DuckDBVerifier:
    """``(before_sql, after_sql, params) -> identical?`` on a warehouse with sample data."""

    warehouse: Warehouse

    @classmethod
    def in_memory(cls, settings: Settings) -> DuckDBVerifier:
        warehouse = DuckDBWarehouse(":memory:", settings=settings, estimate_bytes="never")
        warehouse.create_tables()
        return cls(warehouse)

    def __call__(self, before: str, after: str, params: Mapping[str, Any]) -> bool:
        try:
            first = self.warehouse.query(before, params)
            second = self.warehouse.query(after, params)
        except EdpError:
            return False
        ordered = any(
            isinstance(s, exp.Query) and s.args.get("order") is not None
            for s in parse_bigquery(before)
        )
        a, b = _canonical(first.rows), _canonical(second.rows)
        return a == b if ordered else sorted(a) == sorted(b)


def from_settings(settings: Settings) -> DuckDBVerifier:
    """The ``duckdb`` verifier: the local DuckDB warehouse file (its data is the sample)."""
    return DuckDBVerifier(
        DuckDBWarehouse(settings.duckdb_file, settings=settings, estimate_bytes="never")
    )
