"""CartesianJoin: two relations joined with no condition linking them.

A CROSS JOIN, a comma join or ``JOIN ... ON TRUE`` between tables/queries multiplies rows
(n x m) unless a WHERE equality links the two sides. ``UNNEST`` of an array of the row
(correlated) is the normal BigQuery idiom and is not reported; neither is a join to a
single-row relation (an aggregate without GROUP BY, a ``SELECT`` without FROM).

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT 1 FROM raw.cdc_orders o CROSS JOIN raw.cdc_shipments s")
    >>> [f.rule for f in check(src.statements, RuleContext(source=src))]
    ['CartesianJoin']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._common import unwrap_query

NAME = "CartesianJoin"
MESSAGE = (
    "Cartesian join of {left} and {right}: no condition links them, so every row of one meets "
    "every row of the other. Add the join condition (ON/USING) or make the intent explicit."
)


def _name(item: exp.Expression) -> str:
    return item.alias_or_name or item.sql(dialect="bigquery")[:40]


def _single_row(item: exp.Expression, statement: exp.Expression) -> bool:
    query = unwrap_query(item) if isinstance(item, exp.Subquery) else None
    if isinstance(item, exp.Table) and not item.db:
        # the CTE of that name in the nearest enclosing WITH (a MERGE's source subquery or a
        # nested query has its own)
        node: exp.Expression | None = item
        while node is not None and query is None:
            with_ = node.args.get("with_")
            if isinstance(with_, exp.With):
                query = next((c.this for c in with_.expressions if c.alias == item.name), None)
            node = node.parent  # type: ignore[assignment]
    if not isinstance(query, exp.Select):
        return False
    if query.args.get("from_") is None:
        return True
    aggregated = any(e.find(exp.AggFunc) for e in query.expressions)
    return aggregated and not query.args.get("group")


def _sides(item: exp.Expression) -> set[str]:
    return {n for n in (item.alias, item.name) if n}


def _linked(select: exp.Select, left: set[str], right: set[str]) -> bool:
    where = select.args.get("where")
    if not isinstance(where, exp.Where):
        return False
    for eq in where.find_all(exp.EQ):
        tables = {c.table for c in eq.find_all(exp.Column)}
        if tables & left and tables & right:
            return True
    return False


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for select in statement.find_all(exp.Select):
            from_ = select.args.get("from_")
            if not isinstance(from_, exp.From):
                continue
            left = from_.this
            for join in select.args.get("joins") or []:
                right = join.this
                condition = join.args.get("on")
                if join.args.get("using") or (
                    condition is not None and not isinstance(condition, exp.Boolean)
                ):
                    continue
                if isinstance(right, exp.Unnest) or isinstance(left, exp.Unnest):
                    continue
                if _single_row(right, statement) or _single_row(left, statement):
                    continue
                if _linked(select, _sides(left), _sides(right)):
                    continue
                message = MESSAGE.format(left=_name(left), right=_name(right))
                findings.append(ctx.finding(NAME, "warning", join, message))
    return findings
