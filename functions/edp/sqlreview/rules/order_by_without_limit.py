"""OrderByWithoutLimit: a query (outer or nested) that sorts without a LIMIT.

Same trigger as the reference tool (``IdentifyOrderByWithoutLimitVisitor``): any query with
ORDER BY and no LIMIT, line of the ORDER BY. A window's ORDER BY is not a query's.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT a FROM t\\nORDER BY a")
    >>> [f.message for f in check(src.statements, RuleContext(source=src))]
    ['ORDER BY clause without LIMIT at line 2.']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._common import QUERY_NODES
from edp.sqlreview.source import walk_in_order

NAME = "OrderByWithoutLimit"
MESSAGE = "ORDER BY clause without LIMIT at line {}."


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for node in walk_in_order(statement):
            if not isinstance(node, QUERY_NODES):
                continue
            order = node.args.get("order")
            if isinstance(order, exp.Order) and node.args.get("limit") is None:
                line = ctx.source.line(order)
                findings.append(ctx.finding(NAME, "info", order, MESSAGE.format(line)))
    return findings
