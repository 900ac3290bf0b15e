"""Column-level lineage of one BigQuery-dialect SELECT, field-exact and with INDIRECT edges.

sqlglot's ``lineage()`` follows SELECT projections through CTEs but collapses a STRUCT field or
an ``UNNEST`` element to the whole column and ignores the columns that only filter, join, group
or order rows. This pass keeps sqlglot's machinery (``qualify`` with the catalogue as schema,
which expands ``*``; ``build_scope`` for CTEs, unions, derived tables and UNNEST) and walks the
scopes itself so that it can:

* carry a field path (``items.price``) through ``UNNEST(x) AS item ... item.price``, through
  ``x.props.page`` and through ``STRUCT(a AS f, ...)`` constructors read back as ``s.f``;
* label each edge with the OpenLineage column-lineage facet 1-2-0 vocabulary: ``DIRECT`` with
  subtype ``IDENTITY`` (copied), ``TRANSFORMATION`` (computed) or ``AGGREGATION`` (an aggregate
  or window aggregate on the path), and per-field ``INDIRECT``: ``WINDOW`` (a window's
  PARTITION BY / ORDER BY) and ``JOIN`` (a value taken from a relation that has no column
  sources, such as a generated calendar, is determined by the columns it is joined on);
* collect the dataset-level ``INDIRECT`` edges: columns in WHERE / QUALIFY / HAVING (``FILTER``),
  JOIN ... ON (``JOIN``), GROUP BY (``GROUP_BY``) and ORDER BY (``SORT``) of every scope.

Along a path the strongest kind wins: any INDIRECT step makes the edge INDIRECT (its subtype is
the step nearest the output), else AGGREGATION > TRANSFORMATION > IDENTITY.

Example:
    >>> schema = {"raw": {"t": {"id": "STRING", "n": "INT64",
    ...                         "items": "ARRAY<STRUCT<sku STRING, price FLOAT64>>"}}}
    >>> sql = ("with e as (select id, items from raw.t where n > 0) "
    ...        "select id, sum(item.price) as total from e, unnest(e.items) as item group by id")
    >>> result = analyse(sql, schema)
    >>> [(f.field, k.subtype) for f, kinds in result.columns["total"].items() for k in kinds]
    [('items.price', 'AGGREGATION')]
    >>> sorted((f.field, s) for f, subtypes in result.dataset.items() for s in subtypes)
    [('id', 'GROUP_BY'), ('n', 'FILTER')]
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope, find_all_in_scope

from edp.errors import EdpError

__all__ = [
    "Edges",
    "Field",
    "LineageError",
    "QueryLineage",
    "Transformation",
    "analyse",
    "combine",
    "merge_edges",
]

DIRECT_RANK = {"IDENTITY": 0, "TRANSFORMATION": 1, "AGGREGATION": 2}


class LineageError(EdpError):
    """The SQL cannot be traced (not a SELECT, unknown source, unnamed projection)."""


@dataclass(frozen=True, order=True)
class Field:
    """A source column (``field`` may be a dotted path into a STRUCT/ARRAY column)."""

    table: str
    field: str


@dataclass(frozen=True, order=True)
class Transformation:
    """An OpenLineage 1-2-0 transformation: ``type`` DIRECT/INDIRECT and its ``subtype``."""

    type: Literal["DIRECT", "INDIRECT"]
    subtype: str


IDENTITY = Transformation("DIRECT", "IDENTITY")
Edges = dict[Field, frozenset[Transformation]]


def combine(outer: Transformation, inner: Transformation) -> Transformation:
    """The kind of a two-step path: ``outer`` is the step nearer the output.

    Example:
        >>> combine(Transformation("DIRECT", "IDENTITY"), Transformation("DIRECT", "AGGREGATION"))
        Transformation(type='DIRECT', subtype='AGGREGATION')
        >>> combine(Transformation("DIRECT", "AGGREGATION"), Transformation("INDIRECT", "JOIN"))
        Transformation(type='INDIRECT', subtype='JOIN')
    """
    if outer.type == "INDIRECT":
        return outer
    if inner.type == "INDIRECT":
        return inner
    return max(outer, inner, key=lambda t: DIRECT_RANK.get(t.subtype, 1))


def merge_edges(into: dict[Field, set[Transformation]], edges: Edges, via: Transformation) -> None:
    """Add ``edges`` reached through a step of kind ``via`` to ``into`` (in place)."""
    for source, kinds in edges.items():
        into.setdefault(source, set()).update(combine(via, kind) for kind in kinds)


def _freeze(edges: Mapping[Field, Iterable[Transformation]]) -> Edges:
    return {source: frozenset(kinds) for source, kinds in sorted(edges.items())}


@dataclass(frozen=True)
class QueryLineage:
    """Lineage of one SELECT: per output column, and the dataset-level INDIRECT edges."""

    columns: dict[str, Edges]
    dataset: dict[Field, frozenset[str]]
    tables: frozenset[str]
    resolver: _Resolver = field(repr=False, compare=False)

    def column(self, name: str, path: tuple[str, ...] = ()) -> Edges:
        """Lineage of output column ``name``, narrowed to the STRUCT field ``path`` if known."""
        if not path:
            return self.columns[name]
        return self.resolver.output(name, path)


def analyse(sql: str, schema: Mapping[str, Any], dialect: str = "bigquery") -> QueryLineage:
    """Trace every output column of ``sql`` to the base-table columns it is computed from.

    Args:
        sql: one SELECT (CTEs allowed).
        schema: ``{dataset: {table: {column: type}}}`` (BigQuery types, STRUCT/ARRAY spelt out).
        dialect: the SQL's dialect.

    Raises:
        LineageError: not a SELECT, an unnamed output column or an unresolvable reference.
    """
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
        qualified = qualify(
            tree, dialect=dialect, schema=dict(schema), validate_qualify_columns=False
        )
    except SqlglotError as exc:
        raise LineageError(f"cannot parse the model: {exc}") from exc
    root = build_scope(qualified)
    if root is None or not isinstance(qualified, exp.Query):
        raise LineageError("lineage needs a SELECT")
    resolver = _Resolver(root, schema)
    columns: dict[str, Edges] = {}
    for name in qualified.named_selects:
        if not name:
            raise LineageError("every output column needs a name")
        columns[name] = resolver.output(name)
    tables = frozenset(
        f"{t.db}.{t.name}"
        for s in root.traverse()
        for t in s.sources.values()
        if isinstance(t, exp.Table) and t.db
    )
    return QueryLineage(columns, resolver.dataset_edges(), tables, resolver)


_CLAUSES = (
    ("where", "FILTER"),
    ("qualify", "FILTER"),
    ("having", "FILTER"),
    ("group", "GROUP_BY"),
    ("order", "SORT"),
)


class _Resolver:
    """Walks qualified scopes; results are memoised per (scope, column, field path)."""

    def __init__(self, root: Scope, schema: Mapping[str, Any]) -> None:
        self.root = root
        self.schema = schema
        self._memo: dict[tuple[int, str, tuple[str, ...]], Edges] = {}
        self._active: set[tuple[int, str, tuple[str, ...]]] = set()

    def output(self, name: str, path: tuple[str, ...] = ()) -> Edges:
        return self._column(self.root, name, path)

    # --- projections --------------------------------------------------------------------------

    def _column(self, scope: Scope, name: str, path: tuple[str, ...]) -> Edges:
        key = (id(scope), name, path)
        if key in self._memo:
            return self._memo[key]
        if key in self._active:  # a recursive CTE referring to itself adds nothing new
            return {}
        self._active.add(key)
        try:
            result = self._column_uncached(scope, name, path)
        finally:
            self._active.discard(key)
        self._memo[key] = result
        return result

    def _column_uncached(self, scope: Scope, name: str, path: tuple[str, ...]) -> Edges:
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            names = expression.named_selects
            if name not in names:
                raise LineageError(f"no column {name!r} in {expression.sql('bigquery')[:80]}")
            index = names.index(name)
            found: dict[Field, set[Transformation]] = {}
            for branch in scope.set_operation_scopes:
                branch_query = branch.expression
                if not isinstance(branch_query, exp.Query):
                    raise LineageError(f"cannot trace a set operation over {branch_query!r}")
                branch_name = branch_query.named_selects[index]
                merge_edges(found, self._column(branch, branch_name, path), IDENTITY)
            return _freeze(found)
        if isinstance(expression, exp.Subquery) and scope.subquery_scopes:
            return self._column(scope.subquery_scopes[0], name, path)
        if not isinstance(expression, exp.Select):
            raise LineageError(f"cannot trace column {name!r} of {type(expression).__name__}")
        for select in expression.selects:
            if select.alias_or_name == name:
                return self._expression(scope, select, path)
        raise LineageError(f"no column {name!r} in {expression.sql('bigquery')[:80]}")

    def _expression(self, scope: Scope, select: exp.Expr, path: tuple[str, ...]) -> Edges:
        target = select.unalias()
        if path and isinstance(target, exp.Struct):
            for item in target.expressions:
                if isinstance(item, exp.PropertyEQ) and item.name == path[0]:
                    return self._expression(scope, item.expression, path[1:])
                if isinstance(item, exp.Alias) and item.alias == path[0]:
                    return self._expression(scope, item, path[1:])
        found: dict[Field, set[Transformation]] = {}
        for column in find_all_in_scope(target, exp.Column):
            top, own_path = _dot_path(column)
            kind = _kind(column, top, target)
            full = own_path + (path if top is target else ())
            merge_edges(found, self._source(scope, column, full), kind)
        for query in find_all_in_scope(target, *exp.UNWRAPPED_QUERIES):
            sub = next((s for s in scope.subquery_scopes if s.expression is query), None)
            if sub is not None:
                for sub_name in query.named_selects:
                    merge_edges(found, self._column(sub, sub_name, ()), _TRANSFORMATION)
        return _freeze(found)

    # --- where a column comes from --------------------------------------------------------------

    def _source(self, scope: Scope, column: exp.Column, path: tuple[str, ...]) -> Edges:
        source = scope.sources.get(column.table)
        if isinstance(source, exp.Table):
            return {self._leaf(source, column.name, path): frozenset({IDENTITY})}
        if isinstance(source, Scope):
            if isinstance(source.expression, exp.Unnest):
                return self._unnest(source, column, path)
            edges = self._column(source, column.name, path)
            if not edges and _generated(source):
                return self._join_keys(scope, column.table)
            return edges
        if not column.table:
            # an alias of this scope's own projection (GROUP BY / QUALIFY / ORDER BY alias)
            expression = scope.expression
            if isinstance(expression, exp.Select):
                for select in expression.selects:
                    if select.alias_or_name == column.name:
                        return self._expression(scope, select, path)
            return {}
        raise LineageError(f"cannot resolve {column.sql('bigquery')}: unknown source")

    def _leaf(self, table: exp.Table, column: str, path: tuple[str, ...]) -> Field:
        ref = f"{table.db}.{table.name}"
        known = _known_path(self.schema.get(table.db, {}).get(table.name, {}).get(column), path)
        return Field(ref, ".".join((column, *known)))

    def _unnest(self, scope: Scope, column: exp.Column, path: tuple[str, ...]) -> Edges:
        unnest = scope.expression
        offset = unnest.args.get("offset")
        is_offset = isinstance(offset, exp.Identifier) and offset.name == column.name
        found: dict[Field, set[Transformation]] = {}
        for array in unnest.expressions:
            top = array
            if isinstance(array, exp.Column | exp.Dot) and not is_offset:
                base = array.find(exp.Column)
                if base is None:
                    raise LineageError(f"cannot trace UNNEST({array.sql('bigquery')})")
                _, base_path = _dot_path(base)
                merge_edges(found, self._source(scope, base, base_path + path), IDENTITY)
                continue
            for inner in find_all_in_scope(top, exp.Column):
                _, inner_path = _dot_path(inner)
                merge_edges(found, self._source(scope, inner, inner_path), _TRANSFORMATION)
        return _freeze(found)

    def _join_keys(self, scope: Scope, alias: str) -> Edges:
        """A relation with no column sources (a generated calendar, a literal list) joined to
        the rest: its values are picked by the columns on the other side of the join."""
        expression = scope.expression
        found: dict[Field, set[Transformation]] = {}
        for join in expression.args.get("joins") or []:
            on = join.args.get("on")
            if on is None:
                continue
            columns = list(find_all_in_scope(on, exp.Column))
            if not any(c.table == alias for c in columns):
                continue
            for column in columns:
                if column.table != alias:
                    _, own = _dot_path(column)
                    merge_edges(found, self._source(scope, column, own), _JOIN)
        return _freeze(found)

    # --- dataset-level INDIRECT edges -----------------------------------------------------------

    def dataset_edges(self) -> dict[Field, frozenset[str]]:
        found: dict[Field, set[str]] = {}

        def add(scope: Scope, node: exp.Expr | None, subtype: str) -> None:
            if node is None:
                return
            for column in find_all_in_scope(node, exp.Column):
                _, own = _dot_path(column)
                for source in self._source(scope, column, own):
                    found.setdefault(source, set()).add(subtype)

        for scope in self.root.traverse():
            expression = scope.expression
            if not isinstance(expression, exp.Select):
                continue
            for arg, subtype in _CLAUSES:
                add(scope, expression.args.get(arg), subtype)
            for join in expression.args.get("joins") or []:
                add(scope, join.args.get("on"), "JOIN")
            if scope.is_subquery:  # a subquery in a WHERE/SELECT decides which rows or values
                for select in expression.selects:
                    add(scope, select, "FILTER")
        return {source: frozenset(kinds) for source, kinds in sorted(found.items())}


_TRANSFORMATION = Transformation("DIRECT", "TRANSFORMATION")
_JOIN = Transformation("INDIRECT", "JOIN")


def _generated(scope: Scope) -> bool:
    """Whether a relation reads no table at all (``UNNEST(GENERATE_DATE_ARRAY(...))``, literals)."""
    seen: set[int] = set()
    pending = [scope]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for inner in current.traverse():
            # selected_sources: what FROM/JOIN name (``sources`` also lists every visible CTE)
            for _, source in inner.selected_sources.values():
                if isinstance(source, exp.Table):
                    return False
                if isinstance(source, Scope):
                    pending.append(source)
    return True


def _dot_path(column: exp.Column) -> tuple[exp.Expr, tuple[str, ...]]:
    """The outermost ``column.a.b`` node above ``column`` and its field path ``(a, b)``."""
    node: exp.Expr = column
    path: list[str] = []
    while isinstance(node.parent, exp.Dot) and node.parent.this is node:
        node = node.parent
        path.append(node.expression.name)
    return node, tuple(path)


def _kind(column: exp.Column, top: exp.Expr, target: exp.Expr) -> Transformation:
    """How ``column`` contributes to the projection ``target``."""
    aggregated = False
    child: exp.Expr = top
    node = top.parent
    while node is not None and child is not target:
        if isinstance(node, exp.Window) and child is not node.this:
            return Transformation("INDIRECT", "WINDOW")
        if isinstance(node, exp.AggFunc):
            aggregated = True
        child, node = node, node.parent
    if aggregated:
        return Transformation("DIRECT", "AGGREGATION")
    return IDENTITY if top is target else _TRANSFORMATION


def _known_path(column_type: object, path: tuple[str, ...]) -> tuple[str, ...]:
    """The prefix of ``path`` that the column's declared STRUCT/ARRAY type has.

    Example:
        >>> _known_path("ARRAY<STRUCT<sku STRING, price FLOAT64>>", ("price",))
        ('price',)
        >>> _known_path("STRING", ("x",))
        ()
    """
    if not path or not isinstance(column_type, str):
        return ()
    try:
        data_type = exp.DataType.build(column_type, dialect="bigquery")
    except SqlglotError:
        return ()
    known: list[str] = []
    for name in path:
        while data_type.is_type(exp.DataType.Type.ARRAY) and data_type.expressions:
            data_type = data_type.expressions[0]
        if not data_type.is_type(exp.DataType.Type.STRUCT):
            break
        match = next(
            (f for f in data_type.expressions if isinstance(f, exp.ColumnDef) and f.name == name),
            None,
        )
        if match is None or not isinstance(match.args.get("kind"), exp.DataType):
            break
        known.append(name)
        data_type = match.args["kind"]
    return tuple(known)
