"""SemiJoinWithoutAgg: ``x [NOT] IN (SELECT ...)`` whose subquery neither aggregates nor
de-duplicates.

Same trigger as the reference tool (``IdentifyInSubqueryWithoutAggVisitor``): the IN
subquery is a plain SELECT without DISTINCT and without GROUP BY; the line is the subquery's
SELECT. The AST rewrite adds DISTINCT to the subquery (exact: IN ignores duplicates).

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT a FROM t\\nWHERE b IN (SELECT b FROM u)")
    >>> [f.message for f in check(src.statements, RuleContext(source=src))]
    ['Subquery in filter without aggregation at line 2.']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding, Rewrite
from edp.sqlreview.rules._common import unwrap_query
from edp.sqlreview.source import walk_in_order

NAME = "SemiJoinWithoutAgg"
MESSAGE = "Subquery in filter without aggregation at line {}."


def rewrite(statement: exp.Expression, target: exp.Select) -> exp.Expression:
    """``statement`` with DISTINCT added to the IN subquery ``target`` (a copy)."""
    copy = statement.copy()
    selects = zip(statement.find_all(exp.Select), copy.find_all(exp.Select), strict=True)
    twin = next(new for old, new in selects if old is target)
    twin.set("distinct", exp.Distinct())
    return copy


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for node in walk_in_order(statement):
            if not isinstance(node, exp.In) or node.args.get("query") is None:
                continue
            query = unwrap_query(node.args["query"])
            if not isinstance(query, exp.Select):
                continue
            if query.args.get("distinct") or query.args.get("group"):
                continue
            line = ctx.source.line(query)
            findings.append(
                ctx.finding(
                    NAME,
                    "info",
                    query,
                    MESSAGE.format(line),
                    rewrite=Rewrite(
                        sql=rewrite(statement, query).sql(dialect="bigquery"),
                        exact=True,
                        note="DISTINCT in the IN subquery: IN ignores duplicates.",
                    )
                    if ctx.rewrites
                    else None,
                )
            )
    return findings
