"""WideSelectStar: ``SELECT *`` on a wide catalogue table where fewer columns are used.

BigQuery bills every column a query names, and ``*`` names them all ("avoid SELECT *",
BigQuery's cost guide; a LIMIT does not help). When the star sits in a CTE or subquery, the
columns actually used are the table's columns named elsewhere in the statement: the exact
rewrite lists them in place of ``*``, and ``bytes_after`` prices that. A star in the final
output keeps every column, so it is reported without a rewrite. The columns used are found
by sqlglot's optimizer (``qualify`` with the catalogue as schema, then
``pushdown_projections``), which follows them through chains of CTEs and ``alias.*``.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> sql = "WITH e AS (SELECT * FROM raw.user_events WHERE event_timestamp > @t) SELECT user_id FROM e"
    >>> src = Source.parse(sql)
    >>> print(check(src.statements, RuleContext(source=src))[0].rewrite.sql)
    WITH e AS (SELECT user_id FROM raw.user_events WHERE event_timestamp > @t) SELECT user_id FROM e
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.optimizer.pushdown_projections import pushdown_projections
from sqlglot.optimizer.qualify import qualify

from edp.contracts.catalog import Catalog, TableSpec
from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding, Rewrite
from edp.sqlreview.rules._cost import catalog_reads, twin

NAME = "WideSelectStar"
MESSAGE = (
    "SELECT * on {table} reads all {count} columns{used}. BigQuery bills every column named; "
    "list the columns needed."
)


def _stars(select: exp.Select) -> list[exp.Expression]:
    return [e for e in select.expressions if isinstance(e, exp.Star)]


# catalogue -> sqlglot schema (the catalogue is unhashable; keyed by id, holding it alive)
_SCHEMAS: dict[int, tuple[Catalog, dict[str, object]]] = {}


def _schema(catalog: Catalog) -> dict[str, object]:
    cached = _SCHEMAS.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for spec in catalog:
        schema.setdefault(spec.dataset, {})[spec.name] = {
            f.name: "STRING" if f.type in ("RECORD", "JSON") else f.type for f in spec.fields
        }
    _SCHEMAS[id(catalog)] = (catalog, dict(schema))
    return _SCHEMAS[id(catalog)][1]


def _used_columns(
    statement: exp.Expression, select: exp.Select, spec: TableSpec, catalog: Catalog
) -> list[str]:
    """The columns of ``spec`` the starred ``select`` must output (empty: all, or unknown)."""
    copy = statement.copy()
    marker = twin(statement, copy, select)
    marker.meta["edp_starred"] = True
    try:
        qualified = qualify(
            copy,
            schema=_schema(catalog),
            dialect="bigquery",
            validate_qualify_columns=False,
            quote_identifiers=False,
            identify=False,
        )
        pruned = pushdown_projections(qualified)
    except SqlglotError:
        return []
    for node in pruned.find_all(exp.Select):
        if node.meta.get("edp_starred"):
            names = [e.alias_or_name for e in node.expressions]
            used = [n for n in spec.column_names if n in names]
            return used if len(used) < len(spec.fields) else []
    return []


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for table, spec in catalog_reads(statement, ctx):
            select = table.find_ancestor(exp.Select)
            if select is None or not _stars(select) or select.args.get("joins"):
                continue
            if len(spec.fields) < ctx.wide_table_columns:
                continue
            nested = select is not statement and isinstance(select.parent, exp.CTE | exp.Subquery)
            rewrite = None
            after = None
            used: list[str] = []
            if nested:
                used = _used_columns(statement, select, spec, ctx.catalog)
            if used:
                copy = statement.copy()
                target = twin(statement, copy, select)
                assert isinstance(target, exp.Select)
                others = [e for e in target.expressions if not isinstance(e, exp.Star)]
                target.set("expressions", [exp.column(n) for n in used] + others)
                rewrite = Rewrite(
                    sql=copy.sql(dialect="bigquery"),
                    exact=True,
                    note=f"Only the {len(used)} columns used downstream.",
                )
                after = ctx.estimate(copy)
            message = MESSAGE.format(
                table=spec.ref,
                count=len(spec.fields),
                used=f" but only {len(used)} {'is' if len(used) == 1 else 'are'} used "
                f"({', '.join(used)})"
                if used
                else "",
            )
            findings.append(
                ctx.finding(
                    NAME,
                    "warning",
                    _stars(select)[0],
                    message,
                    bytes_before=ctx.estimate(statement),
                    bytes_after=after,
                    rewrite=rewrite,
                )
            )
    return findings
