"""DynamicPredicate: a subquery inside a WHERE clause.

Same trigger as the reference tool (``IdentifyDynamicPredicateVisitor``): every SELECT met
while inside a WHERE clause (``IN (SELECT ...)``, ``= (SELECT MAX ...)``, ``EXISTS``), line of
that SELECT. Like the reference visitor, leaving a nested WHERE ends "inside WHERE" for the
rest of the enclosing one, so a second subquery after a subquery with its own WHERE is not
reported (kept so both tools agree).

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT a FROM t\\nWHERE b = (SELECT MAX(b) FROM u)")
    >>> [f.line for f in check(src.statements, RuleContext(source=src))]
    [2]
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.source import children_in_order

NAME = "DynamicPredicate"
MESSAGE = (
    "Using subquery in filter at line {}. Converting this dynamic predicate to static might "
    "provide better performance."
)


class _Visitor:
    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.inside_where = False
        self.findings: list[Finding] = []

    def visit(self, node: exp.Expression) -> None:
        if isinstance(node, exp.Select) and self.inside_where:
            line = self.ctx.source.line(node)
            self.findings.append(self.ctx.finding(NAME, "info", node, MESSAGE.format(line)))
        if isinstance(node, exp.Where):
            self.inside_where = True
            self._children(node)
            self.inside_where = False
            return
        self._children(node)

    def _children(self, node: exp.Expression) -> None:
        for child in children_in_order(node):
            self.visit(child)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    visitor = _Visitor(ctx)
    for statement in statements:
        visitor.visit(statement)
    return visitor.findings
