"""BigQuery-dialect SQL for both warehouses: table mapping, parameters and the DuckDB traps.

SQL is written once, in BigQuery dialect, with logical table names (``raw.user_events``) and
named parameters (``@day``). This module turns it into

- **DuckDB SQL** (:func:`to_duckdb`): sqlglot 30.30.0 transpiles, and AST rewrites fix the
  places where a plain transpile runs but gives a different answer than BigQuery (each one is a
  table-driven case in ``tests/warehouse/test_dialect.py`` against a real DuckDB):

  ========================================  =================================================
  BigQuery                                  plain sqlglot -> DuckDB / our rewrite
  ========================================  =================================================
  ``UNNEST(a) AS x WITH OFFSET AS o``       ``WITH ORDINALITY`` counts from 1 / a subquery
                                            that returns ``o - 1`` (0-based like BigQuery)
  ``EXTRACT(DAYOFWEEK FROM d)``             Sunday = 0 / ``+ 1`` (Sunday = 1 .. Saturday = 7)
  ``EXTRACT(WEEK FROM d)``                  ISO week / ``strftime(d, '%U')`` (Sunday weeks,
                                            days before the first Sunday are week 0);
                                            ``ISOWEEK`` -> DuckDB's ``WEEK``
  ``DATE_ADD/DATE_SUB(d, INTERVAL n DAY)``  ``d - INTERVAL`` is a TIMESTAMP / cast to DATE
  ``DATE_TRUNC(d, WEEK(MONDAY))``           TIMESTAMP / cast to DATE (date parts only)
  ``a / b`` with ``b = 0``                  ``inf`` / raises "division by zero" like BigQuery
                                            (``SAFE_DIVIDE`` keeps its NULL; ``IEEE_DIVIDE``
                                            is the plain IEEE division)
  ``CAST(x AS NUMERIC)``                    ``DECIMAL`` = DECIMAL(18,3), rounds / (38, 9);
                                            ``BIGNUMERIC`` -> DECIMAL(38, 18)
  ``TIMESTAMP(expr, @tz)``                  left as is, a parser error /
                                            ``timezone(@tz, CAST(expr AS TIMESTAMP))``
  ``FORMAT('%s-%d', ...)``                  DuckDB's ``format`` uses ``{}`` / ``printf``
  ``ARRAY_AGG(x ORDER BY y LIMIT n)``       a parser error / ``ARRAY_AGG(x ORDER BY y)[1:n]``
  `` `project.dataset.table` ``             a 3-part name DuckDB cannot resolve / the
                                            project is dropped, the dataset mapped
  ``PARTITION BY`` / ``CLUSTER BY`` /       dropped with a warning / dropped explicitly:
  ``OPTIONS(...)`` in DDL                   DuckDB has no partitions, clustering or expiry
  ``@name``                                 ``$name`` (and only the names a statement uses
                                            are bound: DuckDB refuses unused parameters)
  a CTE read twice, body headed by          materialised, every column, before it is read
  ``-- duckdb: not materialized``           (a wide one spills) / ``AS NOT MATERIALIZED``:
                                            evaluated at each read, as BigQuery does
  ========================================  =================================================

  ``DATE(ts, @tz)`` transpiles to ``... AT TIME ZONE 'UTC' AT TIME ZONE $tz``, which is right
  only when the DuckDB session time zone is UTC: the DuckDB adapter sets ``TimeZone='UTC'`` on
  every connection.

- **BigQuery SQL** (:func:`to_bigquery`): only the dataset part of table names is mapped to the
  configured dataset names (and optionally qualified with the project); the SQL is passed
  through untouched when no name changes.

Both are cached: the same SQL text and mapping always give the same (shared, immutable) output.

Example:
    >>> to_duckdb("SELECT DATE_SUB(@day, INTERVAL 1 DAY) AS d FROM raw.user_events")[0].sql
    'SELECT CAST($day - INTERVAL \\'1\\' DAY AS DATE) AS d FROM "raw"."user_events"'
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from edp.contracts.catalog import DATASETS
from edp.errors import WarehouseError

__all__ = [
    "DATASETS",
    "DatasetMap",
    "DuckStatement",
    "dataset_map",
    "parse_bigquery",
    "referenced_tables",
    "statement_kind",
    "to_bigquery",
    "to_duckdb",
]

#: ``((logical, physical), ...)`` for the four datasets: hashable, so it can key the caches.
DatasetMap = tuple[tuple[str, str], ...]

IDENTITY_DATASETS: DatasetMap = tuple((name, name) for name in DATASETS)

# Date parts for which BigQuery's DATE_TRUNC returns a DATE (sub-day parts need a DATETIME).
_DATE_PARTS = {"DAY", "WEEK", "ISOWEEK", "MONTH", "QUARTER", "YEAR", "ISOYEAR"}
_NUMERIC = (38, 9)
_BIGNUMERIC = (38, 18)


def dataset_map(names: Mapping[str, str]) -> DatasetMap:
    """A hashable logical -> physical dataset map (missing layers map to themselves).

    Example:
        >>> dataset_map({"raw": "raw_dev"})[0]
        ('raw', 'raw_dev')
    """
    return tuple((name, names.get(name, name)) for name in DATASETS)


@dataclass(frozen=True)
class DuckStatement:
    """One statement of a script, ready for DuckDB.

    Attributes:
        sql: the DuckDB SQL text (parameters as ``$name``).
        params: the parameter names the statement uses (bind exactly these).
        kind: ``select``, ``insert``, ``update``, ``delete``, ``merge``, ``ddl``,
            ``transaction`` or ``other``.
        tables: logical refs (``dataset.table``) of every dataset-qualified table it names.
    """

    sql: str
    params: tuple[str, ...]
    kind: str
    tables: tuple[str, ...]


# ---------------------------------------------------------------------------------------------
# parsing
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=2048)
def _parse_cached(sql: str) -> tuple[exp.Expression, ...]:
    try:
        parsed = sqlglot.parse(sql, read="bigquery")
    except SqlglotError as exc:
        raise WarehouseError(f"cannot parse BigQuery SQL: {exc}") from exc
    return tuple(cast("exp.Expression", s) for s in parsed if s is not None)


def parse_bigquery(sql: str) -> list[exp.Expression]:
    """Parse a (multi-statement) BigQuery script into fresh ASTs the caller may modify.

    Raises:
        WarehouseError: the text is not valid BigQuery SQL.
    """
    return [statement.copy() for statement in _parse_cached(sql)]


def statement_kind(statement: exp.Expression) -> str:
    """A coarse statement kind (see :class:`DuckStatement`)."""
    if isinstance(statement, exp.Query):
        return "select"
    kinds: dict[type[exp.Expression], str] = {
        exp.Insert: "insert",
        exp.Update: "update",
        exp.Delete: "delete",
        exp.Merge: "merge",
        exp.Create: "ddl",
        exp.Drop: "ddl",
        exp.Alter: "ddl",
        exp.Transaction: "transaction",
        exp.Commit: "transaction",
        exp.Rollback: "transaction",
    }
    for cls, kind in kinds.items():
        if isinstance(statement, cls):
            return kind
    if isinstance(statement, exp.Command) and str(statement.this).upper() in {"BEGIN", "END"}:
        return "transaction"
    return "other"


def _cte_names(statement: exp.Expression) -> set[str]:
    return {cte.alias_or_name for cte in statement.find_all(exp.CTE)}


def _dataset_tables(statement: exp.Expression) -> list[exp.Table]:
    """Table nodes that name a dataset we know (``raw.x``, ``proj.raw.x``)."""
    ctes = _cte_names(statement)
    found = []
    for table in statement.find_all(exp.Table):
        if not table.name or (not table.db and table.name in ctes):
            continue
        if table.db in DATASETS:
            found.append(table)
    return found


def referenced_tables(sql: str) -> tuple[str, ...]:
    """Logical refs of every dataset-qualified table a script names, in order, unique.

    Example:
        >>> referenced_tables("SELECT 1 FROM `p.raw.user_events` JOIN mart.x USING (a)")
        ('raw.user_events', 'mart.x')
    """
    refs: dict[str, None] = {}
    for statement in _parse_cached(sql):
        for table in _dataset_tables(statement):
            refs[f"{table.db}.{table.name}"] = None
    return tuple(refs)


def _params_of(statement: exp.Expression) -> tuple[str, ...]:
    names: dict[str, None] = {}
    for node in statement.find_all(exp.Parameter, exp.Placeholder):
        name = node.name
        if name:
            names[name] = None
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# rewrites shared by both targets
# ---------------------------------------------------------------------------------------------


def _map_tables(
    statement: exp.Expression, datasets: DatasetMap, project: str | None, quote: bool
) -> list[str]:
    """Map dataset names in place (drop or set the project); returns the logical refs."""
    physical = dict(datasets)
    refs = []
    for table in _dataset_tables(statement):
        logical = table.db
        refs.append(f"{logical}.{table.name}")
        table.set("db", exp.to_identifier(physical.get(logical, logical), quoted=quote))
        table.set("this", exp.to_identifier(table.name, quoted=quote))
        if project is None:
            table.set("catalog", None)
        else:
            table.set("catalog", exp.to_identifier(project, quoted=quote))
    return refs


# ---------------------------------------------------------------------------------------------
# DuckDB rewrites (on the BigQuery AST, before generation)
# ---------------------------------------------------------------------------------------------


def _fix_unnest_offset(statement: exp.Expression) -> None:
    """``UNNEST(a) AS x WITH OFFSET AS o`` -> a subquery yielding ``x`` and a 0-based ``o``."""
    counter = itertools.count()
    for unnest in list(statement.find_all(exp.Unnest)):
        offset = unnest.args.get("offset")
        if not offset:
            continue
        offset_name = offset.name if isinstance(offset, exp.Expression) else "offset"
        alias = unnest.args.get("alias")
        columns = list(alias.columns) if isinstance(alias, exp.TableAlias) else []
        value_name = columns[0].name if columns else "value"
        n = next(counter)
        inner_alias = f"_edp_u{n}"
        inner = exp.Unnest(
            expressions=[e.copy() for e in unnest.expressions],
            alias=exp.TableAlias(
                this=exp.to_identifier(inner_alias),
                columns=[exp.to_identifier(value_name)],
            ),
            offset=exp.to_identifier(offset_name),
        )
        select = exp.select(
            exp.column(value_name, table=inner_alias),
            exp.alias_(
                exp.Sub(
                    this=exp.column(offset_name, table=inner_alias),
                    expression=exp.Literal.number(1),
                ),
                offset_name,
            ),
        ).from_(inner)
        outer_alias = exp.TableAlias(this=exp.to_identifier(f"_edp_o{n}"))
        unnest.replace(exp.Subquery(this=select, alias=outer_alias))


def _fix_extract(node: exp.Extract) -> exp.Expression:
    part = node.name.upper()
    if part == "DAYOFWEEK":
        return exp.Paren(this=exp.Add(this=node.copy(), expression=exp.Literal.number(1)))
    if part == "WEEK":
        week = exp.Anonymous(
            this="strftime", expressions=[node.expression.copy(), exp.Literal.string("%U")]
        )
        return exp.Cast(this=week, to=exp.DataType.build("BIGINT"))
    if part == "ISOWEEK":  # DuckDB's WEEK is the ISO week
        return exp.Extract(this=exp.var("WEEK"), expression=node.expression.copy())
    return node


def _as_date(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("DATE"))


def _date_trunc_unit(node: exp.DateTrunc) -> str:
    unit = node.args.get("unit")
    if isinstance(unit, exp.Expression):
        name = unit.name if not isinstance(unit, exp.WeekStart) else "WEEK"
        return (name or unit.sql()).upper().split("(")[0]
    return str(unit or "").upper()


def _checked_division(node: exp.Div) -> exp.Expression:
    """``a / b`` that raises on ``b = 0`` (BigQuery: "division by zero"), NULL-safe."""
    divisor = node.expression
    error = exp.Anonymous(this="error", expressions=[exp.Literal.string("division by zero")])
    fixed = node.copy()
    is_zero = exp.EQ(this=divisor.copy(), expression=exp.Literal.number(0))
    return exp.Case(ifs=[exp.If(this=is_zero, true=error)], default=fixed)


def _fix_numeric(node: exp.DataType) -> exp.Expression:
    decimals = (exp.DataType.Type.DECIMAL, exp.DataType.Type.BIGDECIMAL)
    if node.this in decimals and not node.expressions:
        precision, scale = _NUMERIC if node.this == exp.DataType.Type.DECIMAL else _BIGNUMERIC
        return exp.DataType.build(f"DECIMAL({precision}, {scale})")
    return node


def _fix_array_agg_limit(node: exp.ArrayAgg) -> exp.Expression:
    limit = node.this
    if not isinstance(limit, exp.Limit):
        return node
    count = limit.expression
    fixed = node.copy()
    fixed.set("this", limit.this.copy())
    return exp.Bracket(
        this=fixed,
        expressions=[exp.Slice(this=exp.Literal.number(1), expression=count.copy())],
    )


_STORAGE_PROPERTIES = ("PartitionedByProperty", "ClusterProperty", "Property")


def _strip_storage_options(statement: exp.Expression) -> None:
    """Drop PARTITION BY / CLUSTER BY / OPTIONS of a CREATE: DuckDB has no such storage.

    sqlglot would drop them too, but with a warning per statement; doing it here says so
    explicitly (DuckDB tables have no partitions, clustering, expiry or descriptions).
    """
    if not isinstance(statement, exp.Create):
        return
    props = statement.args.get("properties")
    if not isinstance(props, exp.Properties):
        return
    kept = [p for p in props.expressions if type(p).__name__ not in _STORAGE_PROPERTIES]
    if kept:
        props.set("expressions", kept)
    else:
        statement.set("properties", None)


def _duckdb_node(node: exp.Expression) -> exp.Expression:  # noqa: PLR0911 (one case per trap)
    if isinstance(node, exp.Extract):
        return _fix_extract(node)
    if isinstance(node, (exp.DateAdd, exp.DateSub)):
        return _as_date(node)
    if isinstance(node, exp.DateTrunc) and _date_trunc_unit(node) in _DATE_PARTS:
        return _as_date(node)
    if isinstance(node, exp.Div):
        return _checked_division(node)
    if isinstance(node, exp.DataType):
        return _fix_numeric(node)
    if isinstance(node, exp.Timestamp):
        zone = node.args.get("zone")
        if zone is not None and not isinstance(zone, exp.Literal):
            naive = exp.Cast(this=node.this.copy(), to=exp.DataType.build("TIMESTAMP"))
            return exp.Anonymous(this="timezone", expressions=[zone.copy(), naive])
        return node
    if isinstance(node, exp.Format):
        return exp.Anonymous(
            this="printf", expressions=[node.this.copy(), *(e.copy() for e in node.expressions)]
        )
    if isinstance(node, exp.Anonymous) and node.name.upper() == "IEEE_DIVIDE":
        left, right = node.expressions
        return exp.Div(this=left.copy(), expression=right.copy())
    if isinstance(node, exp.ArrayAgg):
        return _fix_array_agg_limit(node)
    return node


#: The comment that marks a CTE to be evaluated where it is read (see :func:`_inline_ctes`).
INLINE_HINT = "duckdb: not materialized"


def _leading_comments(cte: exp.CTE) -> list[str]:
    """The comments at the top of a CTE's body (of its first branch, for a set operation)."""
    body: exp.Expression | None = cte.this
    while isinstance(body, exp.SetOperation):
        body = body.this
    return [c.strip() for c in (body.comments or [])] if body is not None else []


def _inline_ctes(statement: exp.Expression) -> None:
    """``-- duckdb: not materialized`` atop a CTE's body: DuckDB evaluates it where it is read.

    BigQuery inlines every non-recursive CTE into each query that reads it (each reference is
    its own read, with column pruning and filter pushdown); DuckDB instead materialises a CTE
    read more than once, every column of it, before anything reads it. That is usually the
    cheaper plan for a small aggregate read several times, and the wrong one for a wide
    row-level CTE (a day of events with their items) whose readers each need a few columns or
    a few rows: the materialisation outgrows the engine's memory limit and spills. A model marks
    such CTEs with the hint (a comment, so BigQuery reads the same SQL); results are the same
    either way, only the plan differs.
    """
    for with_ in statement.find_all(exp.With):
        if with_.args.get("recursive"):
            continue
        for cte in with_.expressions:
            if any(c.startswith(INLINE_HINT) for c in _leading_comments(cte)):
                cte.set("materialized", False)


def _transform_for_duckdb(statement: exp.Expression) -> exp.Expression:
    _strip_storage_options(statement)
    _inline_ctes(statement)
    # Bottom-up, in place: a node's rewrite sees its already rewritten children, and the
    # nodes a rewrite creates (the plain division inside a checked one) are not revisited.
    for node in reversed(list(statement.dfs())):
        parent, arg_key, index = node.parent, node.arg_key, node.index
        new = _duckdb_node(cast("exp.Expression", node))
        if new is node:
            continue
        if parent is None or arg_key is None:
            statement = new
        else:
            parent.set(arg_key, new, index)
    _fix_unnest_offset(statement)
    return statement


@lru_cache(maxsize=4096)
def to_duckdb(sql: str, datasets: DatasetMap = IDENTITY_DATASETS) -> tuple[DuckStatement, ...]:
    """Transpile a BigQuery-dialect script to DuckDB statements (cached by text and mapping).

    Args:
        sql: one or more ``;``-separated BigQuery statements with ``@params``.
        datasets: logical -> physical dataset (DuckDB schema) names.

    Returns:
        One :class:`DuckStatement` per statement.

    Raises:
        WarehouseError: the SQL does not parse or cannot be expressed in DuckDB.
    """
    out = []
    for parsed in parse_bigquery(sql):
        refs = _map_tables(parsed, datasets, project=None, quote=True)
        params = _params_of(parsed)
        kind = statement_kind(parsed)
        statement = _transform_for_duckdb(parsed)
        try:
            text = statement.sql(dialect="duckdb", unsupported_level=sqlglot.ErrorLevel.RAISE)
        except SqlglotError as exc:
            raise WarehouseError(f"cannot express in DuckDB: {exc}") from exc
        out.append(DuckStatement(text, params, kind, tuple(dict.fromkeys(refs))))
    return tuple(out)


@lru_cache(maxsize=4096)
def to_bigquery(
    sql: str, datasets: DatasetMap = IDENTITY_DATASETS, project: str | None = None
) -> str:
    """Map the dataset names of a BigQuery script (and qualify with ``project`` if given).

    The text is returned unchanged when no table name changes, so BigQuery sees exactly what
    was written.

    Example:
        >>> to_bigquery("SELECT * FROM raw.user_events", dataset_map({"raw": "raw_dev"}))
        'SELECT * FROM raw_dev.user_events'
    """
    if project is None and datasets == IDENTITY_DATASETS:
        _parse_cached(sql)  # still refuse SQL that does not parse, like the DuckDB path
        return sql
    statements = parse_bigquery(sql)
    for statement in statements:
        _map_tables(statement, datasets, project=project, quote=False)
    return ";\n".join(s.sql(dialect="bigquery") for s in statements)
