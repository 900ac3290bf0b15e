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
column, literals and parameters, only the partitions they can match are counted. Comparisons
(``<``, ``<=``, ``>``, ``>=``, ``=``, ``BETWEEN``) are checked against each partition's bounds,
as BigQuery prunes (a filter on part of a day pays for the whole day, even if no row of that
day passes); other shapes (``DATE(ts) = @d``, ``IN``) keep the partitions holding a matching
row. Only partitions that hold data count. Without such a filter the whole table is read.

Referenced columns: columns named anywhere in the statement that belong to the table
(qualified by its alias/name, or unqualified), every column for ``SELECT *`` / ``alias.*``.
The target of ``INSERT`` is not read. This over-counts a little (an unqualified name shared by
two joined tables is charged to both) and ignores BigQuery's 10 MB per-table billing minimum
(that is billing, not bytes processed). The figure is computed by one aggregate query per table
over the referenced columns of the pruned partitions, so it is exact for those rules.

Without a warehouse, :func:`estimate_from_statistics` computes the same figure from table
statistics (per-partition column bytes, :mod:`edp.warehouse.statistics`) and adds BigQuery's
on-demand billing rules: ``max(10 MiB, sum over tables of max(10 MiB, bytes))`` rounded up to
the MiB. There, only a filter on the *bare* partition column prunes (BigQuery's "isolate the
partition column in your filter": ``DATE(ts) = @d`` or ``CAST(ts AS DATE)`` reads every
partition), bounds are folded to constants in Python, and an unknown bound prunes nothing.
Clustering is not modelled (a dry run cannot see it either): the figure is an upper bound.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlglot import exp

from edp.contracts.catalog import Catalog, FieldSpec, TableSpec
from edp.warehouse.arrow_schema import bigquery_size_sum_sql
from edp.warehouse.dialect import DATASETS, parse_bigquery
from edp.warehouse.statistics import PartitionStatistics, Statistics, fold

#: Column name standing for the DuckDB size expression in the BigQuery-dialect size query.
SIZE_PLACEHOLDER = "edp_size_placeholder"

#: ``(bigquery_sql, params, size_sql) -> scalar``: transpiles ``bigquery_sql``, replaces
#: :data:`SIZE_PLACEHOLDER` in the DuckDB text with ``size_sql`` (DuckDB SQL), runs it.
ScalarRunner = Callable[[str, Mapping[str, Any], str], Any]

# Start of a row's partition, by partition type and column type (BigQuery SQL; UTC days).
_PARTITION_START = {
    ("DAY", "TIMESTAMP"): "TIMESTAMP_TRUNC({col}, DAY)",
    ("HOUR", "TIMESTAMP"): "TIMESTAMP_TRUNC({col}, HOUR)",
    ("MONTH", "TIMESTAMP"): "TIMESTAMP_TRUNC({col}, MONTH)",
    ("DAY", "DATE"): "{col}",
    ("MONTH", "DATE"): "DATE_TRUNC({col}, MONTH)",
}
# End (exclusive) of the partition starting at ``{p}``.
_PARTITION_END = {
    ("DAY", "TIMESTAMP"): "TIMESTAMP_ADD({p}, INTERVAL 1 DAY)",
    ("HOUR", "TIMESTAMP"): "TIMESTAMP_ADD({p}, INTERVAL 1 HOUR)",
    ("MONTH", "TIMESTAMP"): "TIMESTAMP(DATE_ADD(DATE({p}), INTERVAL 1 MONTH))",
    ("DAY", "DATE"): "DATE_ADD({p}, INTERVAL 1 DAY)",
    ("MONTH", "DATE"): "DATE_ADD({p}, INTERVAL 1 MONTH)",
}
_PARTITION_ALIAS = "_edp_p"


def _quote(name: str) -> str:
    return f'"{name}"'


def read_tables(statement: exp.Expression) -> list[exp.Table]:
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


def referenced_columns(statement: exp.Expression, table: exp.Table, spec: TableSpec) -> list[str]:
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


def _range_condition(conjunct: Any, start: str, end: str) -> str | None:  # noqa: PLR0911
    """``col <op> value`` as a condition on a partition ``[start, end)``; None if not that shape.

    BigQuery prunes on partition bounds, not on the rows: ``ts > '12:31'`` reads the whole day
    that holds 12:31 even when no row of that day passes the filter.
    """
    flipped: dict[type[Any], type[Any]] = {
        exp.GT: exp.LT,
        exp.GTE: exp.LTE,
        exp.LT: exp.GT,
        exp.LTE: exp.GTE,
        exp.EQ: exp.EQ,
    }
    if isinstance(conjunct, exp.Between) and isinstance(conjunct.this, exp.Column):
        low = conjunct.args["low"].sql(dialect="bigquery")
        high = conjunct.args["high"].sql(dialect="bigquery")
        return f"{start} <= {high} AND {end} > {low}"
    if type(conjunct) not in flipped:
        return None
    left, right = conjunct.this, conjunct.expression
    kind: type[Any] = type(conjunct)
    if isinstance(right, exp.Column) and not isinstance(left, exp.Column):
        left, right, kind = right, left, flipped[kind]
    if not isinstance(left, exp.Column) or right.find(exp.Column):
        return None
    value = right.sql(dialect="bigquery")
    if kind in (exp.GT, exp.GTE):
        return f"{end} > {value}"
    if kind is exp.LT:
        return f"{start} < {value}"
    if kind is exp.LTE:
        return f"{start} <= {value}"
    return f"{start} <= {value} AND {end} > {value}"


def _partitions_read(table: exp.Table, spec: TableSpec, ref: str) -> str | None:
    """A BigQuery WHERE clause keeping the rows of the partitions the statement reads.

    None when every partition is read (no usable filter on the partition column).
    """
    if spec.partitioning is None:
        return None
    scope = table.find_ancestor(exp.Select, exp.Delete, exp.Update)
    where = scope.args.get("where") if scope is not None else None
    if not isinstance(where, exp.Where):
        return None
    column = spec.partitioning.field
    key = (spec.partitioning.type, spec.column(column).type)
    if key not in _PARTITION_START:
        return None
    start = _PARTITION_START[key].format(col=column)
    end = _PARTITION_END[key].format(p=_PARTITION_ALIAS)
    names = _names_for(table)
    on_bounds: list[str] = []
    on_rows: list[str] = []
    for conjunct in where.this.flatten() if isinstance(where.this, exp.And) else [where.this]:
        columns = list(conjunct.find_all(exp.Column))
        if not columns or conjunct.find(exp.Subquery, exp.Select):
            continue
        if not all(c.name == column and (not c.table or c.table in names) for c in columns):
            continue
        unqualified = conjunct.copy()
        for c in unqualified.find_all(exp.Column):
            c.set("table", None)
        bound = _range_condition(unqualified, _PARTITION_ALIAS, end)
        if bound is not None:
            on_bounds.append(f"({bound})")
        else:
            on_rows.append(f"({unqualified.sql(dialect='bigquery')})")
    if not on_bounds and not on_rows:
        return None
    parts = f"SELECT DISTINCT {start} AS {_PARTITION_ALIAS} FROM {ref}"
    if on_rows:
        parts += " WHERE " + " AND ".join(on_rows)
    keep = f"SELECT {_PARTITION_ALIAS} FROM ({parts})"
    if on_bounds:
        keep += " WHERE " + " AND ".join(on_bounds)
    return f"{start} IN ({keep})"


def estimate_statement_bytes(
    statement: exp.Expression,
    catalog: Catalog,
    params: Mapping[str, Any],
    run_scalar: ScalarRunner,
) -> int:
    """Bytes BigQuery would process for one parsed BigQuery-dialect statement."""
    total = 0
    for table in read_tables(statement):
        spec = catalog.table(f"{table.db}.{table.name}")
        columns = referenced_columns(statement, table, spec)
        if not columns:
            continue
        ref = f"{spec.dataset}.{spec.name}"
        condition = _partitions_read(table, spec, ref)
        where = f" WHERE {condition}" if condition is not None else ""
        flat = [c for c in columns if spec.column(c).mode != "REPEATED"]
        if flat:
            sizes = " + ".join(bigquery_size_sum_sql(spec.column(c), _quote(c)) for c in flat)
            sql = f"SELECT {SIZE_PLACEHOLDER} AS b FROM {ref}{where}"
            total += int(run_scalar(sql, params, sizes) or 0)
        for name in columns:
            if name not in flat:
                # an array's elements, unnested and summed per field (a per-row lambda over
                # each array costs DuckDB about twice as much for the same figure)
                sizes = _element_size_sum_sql(spec.column(name))
                unnested = f"{ref} CROSS JOIN UNNEST(`{spec.name}`.`{name}`) AS {_ELEMENT}"
                sql = f"SELECT {SIZE_PLACEHOLDER} AS b FROM {unnested}{where}"
                total += int(run_scalar(sql, params, sizes) or 0)
    return total


_ELEMENT = "_edp_element"


def _element_size_sum_sql(field: FieldSpec) -> str:
    """The summed size of a REPEATED column's elements, each bound to :data:`_ELEMENT`."""
    element = field.model_copy(update={"mode": "NULLABLE"})
    if element.type != "RECORD":
        return bigquery_size_sum_sql(element, _quote(_ELEMENT))
    parts = [
        bigquery_size_sum_sql(f, f"{_quote(_ELEMENT)}.{_quote(f.name)}") for f in element.fields
    ]
    return " + ".join(parts) if parts else "0"


def estimate_bytes(
    sql: str, catalog: Catalog, params: Mapping[str, Any], run_scalar: ScalarRunner
) -> int:
    """Bytes BigQuery would process for a (multi-statement) BigQuery-dialect script."""
    return sum(
        estimate_statement_bytes(statement, catalog, params, run_scalar)
        for statement in parse_bigquery(sql)
    )


# --- offline: from table statistics ------------------------------------------------------------

#: BigQuery bills at least 10 MiB per table referenced and per query, rounded up to the MiB.
MIN_BILLED_BYTES = 10 * 2**20
_MIB = 2**20
_PARTITION_SPAN = {
    "DAY": dt.timedelta(days=1),
    "HOUR": dt.timedelta(hours=1),
}
_COMPARISONS = (exp.EQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def billed_bytes(per_table: Iterable[int]) -> int:
    """On-demand bytes billed for the bytes each referenced table processes.

    Example:
        >>> billed_bytes([0, 25 * 2**20 + 1]) == 10 * 2**20 + 26 * 2**20
        True
        >>> billed_bytes([]) == 10 * 2**20
        True
    """
    total = sum(max(MIN_BILLED_BYTES, -(-b // _MIB) * _MIB) for b in per_table)
    return max(MIN_BILLED_BYTES, total)


def where_of(table: exp.Table) -> exp.Expression | None:
    """The WHERE condition of the query that reads ``table`` (None without one)."""
    scope = table.find_ancestor(exp.Select, exp.Delete, exp.Update)
    where = scope.args.get("where") if scope is not None else None
    return where.this if isinstance(where, exp.Where) else None


def _conjuncts(condition: exp.Expression | None) -> list[exp.Expression]:
    if condition is None:
        return []
    if isinstance(condition, exp.And):
        return [cast("exp.Expression", c) for c in condition.flatten()]
    return [condition]


@dataclass(frozen=True)
class PartitionFilters:
    """The conjuncts of a table's WHERE that name its partition column."""

    bare: tuple[exp.Expression, ...] = ()  # the column itself compared: BigQuery prunes
    wrapped: tuple[exp.Expression, ...] = ()  # inside a function or cast: no pruning


def partition_filters(table: exp.Table, spec: TableSpec) -> PartitionFilters:
    """Split the WHERE conjuncts on ``spec``'s partition column by whether they can prune."""
    if spec.partitioning is None:
        return PartitionFilters()
    column = spec.partitioning.field
    names = _names_for(table)
    bare: list[exp.Expression] = []
    wrapped: list[exp.Expression] = []
    for conjunct in _conjuncts(where_of(table)):
        hits = [
            c
            for c in conjunct.find_all(exp.Column)
            if c.name == column and (not c.table or c.table in names)
        ]
        if not hits or conjunct.find(exp.Select):
            continue
        direct = all(
            c.parent is conjunct
            or (isinstance(c.parent, exp.Paren) and c.parent.parent is conjunct)
            for c in hits
        ) and isinstance(conjunct, (*_COMPARISONS, exp.Between, exp.In))
        (bare if direct else wrapped).append(conjunct)
    return PartitionFilters(tuple(bare), tuple(wrapped))


def _keeps(  # noqa: PLR0911 (one branch per comparison)
    conjunct: exp.Expression,
    start: dt.datetime,
    end: dt.datetime,
    params: Mapping[str, Any],
    now: dt.datetime,
) -> bool:
    """Whether partition ``[start, end)`` may hold rows passing ``conjunct`` (True if unknown)."""
    if isinstance(conjunct, exp.Between):
        low = fold(conjunct.args["low"], params, now)
        high = fold(conjunct.args["high"], params, now)
        return (low is None or end > low) and (high is None or start <= high)
    if isinstance(conjunct, exp.In):
        values = [fold(v, params, now) for v in conjunct.expressions]
        if not values or any(v is None for v in values):
            return True
        return any(start <= v < end for v in values if v is not None)
    left, right = conjunct.this, conjunct.expression
    kind: type[exp.Expression] = type(conjunct)
    flipped: dict[type[exp.Expression], type[exp.Expression]] = {
        exp.GT: exp.LT,
        exp.GTE: exp.LTE,
        exp.LT: exp.GT,
        exp.LTE: exp.GTE,
        exp.EQ: exp.EQ,
    }
    if not isinstance(left, exp.Column):
        left, right, kind = right, left, flipped[kind]
    value = fold(right, params, now)
    if value is None:
        return True
    if kind in (exp.GT, exp.GTE):
        return end > value
    if kind is exp.LT:
        return start < value
    if kind is exp.LTE:
        return start <= value
    return start <= value < end


def _partition_end(start: dt.datetime, kind: str) -> dt.datetime:
    if kind == "MONTH":
        month = start.month % 12 + 1
        return start.replace(year=start.year + (start.month == 12), month=month)
    return start + _PARTITION_SPAN[kind]


@dataclass(frozen=True)
class TableRead:
    """What one table reference reads."""

    ref: str
    columns: tuple[str, ...]
    partitions_read: int
    partitions_total: int
    bytes: int


@dataclass(frozen=True)
class BytesEstimate:
    """Bytes a statement processes and bills, per table read."""

    processed: int
    billed: int
    reads: tuple[TableRead, ...] = field(default=())


def _read(
    table: exp.Table,
    spec: TableSpec,
    *,
    partitions: tuple[PartitionStatistics, ...],
    columns: list[str],
    params: Mapping[str, Any],
    now: dt.datetime,
) -> TableRead:
    kept = list(partitions)
    if spec.partitioning is not None:
        filters = partition_filters(table, spec).bare
        kind = spec.partitioning.type
        kept = [
            p
            for p in partitions
            if p.start is None
            or all(_keeps(c, p.start, _partition_end(p.start, kind), params, now) for c in filters)
        ]
    size = sum(p.column_bytes.get(c, 0) for p in kept for c in columns)
    return TableRead(
        ref=spec.ref,
        columns=tuple(columns),
        partitions_read=len(kept),
        partitions_total=len(partitions),
        bytes=size,
    )


def estimate_from_statistics(
    statement: exp.Expression,
    catalog: Catalog,
    statistics: Statistics,
    params: Mapping[str, Any] | None = None,
    now: dt.datetime | None = None,
) -> BytesEstimate | None:
    """Bytes ``statement`` would process and bill, from statistics only (no warehouse).

    None when the statement reads no catalogue table. A catalogue table without statistics
    counts as empty (it still bills the 10 MiB minimum).
    """
    instant = now or dt.datetime.now(dt.UTC)
    reads = []
    for table in read_tables(statement):
        spec = catalog.table(f"{table.db}.{table.name}")
        stats = statistics.tables.get(spec.ref)
        columns = referenced_columns(statement, table, spec)
        partitions = stats.partitions if stats is not None else ()
        reads.append(
            _read(
                table,
                spec,
                partitions=partitions,
                columns=columns,
                params=params or {},
                now=instant,
            )
        )
    if not reads:
        return None
    processed = sum(r.bytes for r in reads)
    return BytesEstimate(
        processed=processed, billed=billed_bytes(r.bytes for r in reads), reads=tuple(reads)
    )
