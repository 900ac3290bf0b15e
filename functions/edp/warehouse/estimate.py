"""Estimate BigQuery on-demand bytes of a statement from the data a local warehouse holds.

No emulator reports realistic dry-run bytes, so the DuckDB adapter computes what BigQuery
would bill (on-demand): for every catalogue table the statement reads,

    bytes = sum over the *referenced columns* of their logical size (BigQuery's data-size
            rules: 8 bytes per INT64/FLOAT64/TIMESTAMP/DATE..., 16 per NUMERIC, 1 per BOOL,
            2 + UTF-8 length per STRING/JSON, 0 for NULL, sums over STRUCT fields and ARRAY
            elements)
            over the rows of the *partitions read*.

Partitions read: when the table is partitioned and the statement's WHERE clause (the one of
the SELECT/DELETE/UPDATE that reads the table) has conjuncts that only involve the partition
column, literals and parameters, only the partitions (DAY/HOUR/MONTH of the partition column)
holding a row that satisfies them are counted -- BigQuery prunes whole partitions, so a filter
on part of a day still pays for the day. Without such a filter the whole table is read.

Referenced columns: columns named anywhere in the statement that belong to the table
(qualified by its alias/name, or unqualified), every column for ``SELECT *`` / ``alias.*``.
The target of ``INSERT`` is not read. This over-counts a little (an unqualified name shared by
two joined tables is charged to both) and ignores BigQuery's 10 MB per-table billing minimum
(that is billing, not bytes processed). The figure is computed by one aggregate query per table
over the referenced columns of the pruned partitions, so it is exact for those rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlglot import exp

from edp.contracts.catalog import Catalog, TableSpec
from edp.warehouse.arrow_schema import bigquery_size_sql
from edp.warehouse.dialect import DATASETS, parse_bigquery

#: Column name standing for the DuckDB size expression in the BigQuery-dialect size query.
SIZE_PLACEHOLDER = "edp_size_placeholder"

#: ``(bigquery_sql, params, size_sql) -> scalar``: transpiles ``bigquery_sql``, replaces
#: :data:`SIZE_PLACEHOLDER` in the DuckDB text with ``size_sql`` (DuckDB SQL), runs it.
ScalarRunner = Callable[[str, Mapping[str, Any], str], Any]

_PARTITION_EXPR = {
    "DAY": "DATE({col})",
    "HOUR": "TIMESTAMP_TRUNC({col}, HOUR)",
    "MONTH": "DATE_TRUNC(DATE({col}), MONTH)",
}


def _quote(name: str) -> str:
    return f'"{name}"'


def _read_tables(statement: exp.Expression) -> list[exp.Table]:
    target: exp.Expression | None = None
    if isinstance(statement, exp.Insert):
        target = statement.this
        if isinstance(target, exp.Schema):
            target = target.this
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    tables = []
    for table in statement.find_all(exp.Table):
        if table is target or table.db not in DATASETS:
            continue
        if not table.db and table.name in ctes:
            continue
        tables.append(table)
    return tables


def _names_for(table: exp.Table) -> set[str]:
    names = {table.name}
    if table.alias:
        names.add(table.alias)
    return names


def _referenced_columns(statement: exp.Expression, table: exp.Table, spec: TableSpec) -> list[str]:
    names = _names_for(table)
    for star in statement.find_all(exp.Star):
        parent = star.parent
        if isinstance(parent, exp.Column):
            if parent.table in names:
                return list(spec.column_names)
        elif isinstance(parent, exp.Select):
            return list(spec.column_names)
    wanted: dict[str, None] = {}
    for column in statement.find_all(exp.Column):
        qualifier = column.table
        if column.name in spec.column_names and (not qualifier or qualifier in names):
            wanted[column.name] = None
    if isinstance(statement, exp.Insert) is False and not wanted:
        # e.g. SELECT COUNT(*) FROM t: BigQuery reads no column (0 bytes).
        return []
    return list(wanted)


def _partition_filter(table: exp.Table, spec: TableSpec) -> str | None:
    """BigQuery SQL of the WHERE conjuncts that only use the partition column, if any."""
    if spec.partitioning is None:
        return None
    scope = table.find_ancestor(exp.Select, exp.Delete, exp.Update)
    if scope is None:
        return None
    where = scope.args.get("where")
    if not isinstance(where, exp.Where):
        return None
    names = _names_for(table)
    column = spec.partitioning.field
    kept = []
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        columns = list(conjunct.find_all(exp.Column))
        if not columns or conjunct.find(exp.Subquery, exp.Select):
            continue
        if all(c.name == column and (not c.table or c.table in names) for c in columns):
            unqualified = conjunct.copy()
            for c in unqualified.find_all(exp.Column):
                c.set("table", None)
            kept.append(unqualified.sql(dialect="bigquery"))
    return " AND ".join(f"({k})" for k in kept) if kept else None


def estimate_statement_bytes(
    statement: exp.Expression,
    catalog: Catalog,
    params: Mapping[str, Any],
    run_scalar: ScalarRunner,
) -> int:
    """Bytes BigQuery would process for one parsed BigQuery-dialect statement."""
    total = 0
    for table in _read_tables(statement):
        spec = catalog.table(f"{table.db}.{table.name}")
        columns = _referenced_columns(statement, table, spec)
        if not columns:
            continue
        sizes = " + ".join(bigquery_size_sql(spec.column(c), _quote(c)) for c in columns)
        ref = f"{spec.dataset}.{spec.name}"
        where = ""
        condition = _partition_filter(table, spec)
        if condition is not None and spec.partitioning is not None:
            part = _PARTITION_EXPR[spec.partitioning.type].format(col=spec.partitioning.field)
            where = f" WHERE {part} IN (SELECT DISTINCT {part} FROM {ref} WHERE {condition})"
        sql = f"SELECT SUM({SIZE_PLACEHOLDER}) AS b FROM {ref}{where}"
        value = run_scalar(sql, params, sizes)
        total += int(value or 0)
    return total


def estimate_bytes(
    sql: str, catalog: Catalog, params: Mapping[str, Any], run_scalar: ScalarRunner
) -> int:
    """Bytes BigQuery would process for a (multi-statement) BigQuery-dialect script."""
    return sum(
        estimate_statement_bytes(statement, catalog, params, run_scalar)
        for statement in parse_bigquery(sql)
    )
