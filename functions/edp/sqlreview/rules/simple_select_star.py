"""SimpleSelectStar: ``SELECT *`` straight from one table in an otherwise simple statement.

Same trigger as the reference tool (``IdentifySimpleSelectStarVisitor``): a select list item
is a bare ``*`` and the SELECT's FROM is a single table path; reported only when the whole
script stays "simple" — no GROUP BY, at most one FROM clause and one JOIN node (a subquery's
FROM, a second statement's FROM or ``t1, t2 JOIN t3`` cancel it). The table printed is the
first component of the path as written (`` `p`.d.t `` -> ``p``; `` `p.d.t` `` -> ``p.d.t``).

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT * FROM `project.dataset.table1`")
    >>> [f.message for f in check(src.statements, RuleContext(source=src))]
    ['SELECT * on table: project.dataset.table1. Check that all columns are needed.']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.source import walk_in_order

NAME = "SimpleSelectStar"
MESSAGE = "SELECT * on table: {}. Check that all columns are needed."


def _plain_star(node: exp.Expression) -> bool:
    return isinstance(node, exp.Star) and not any(node.args.values())


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    found_from = found_join = False
    simple = True
    findings: list[Finding] = []
    for statement in statements:
        for node in walk_in_order(statement):
            if isinstance(node, exp.Select):
                from_ = node.args.get("from_")
                single = (
                    isinstance(from_, exp.From)
                    and isinstance(from_.this, exp.Table)
                    and not node.args.get("joins")
                )
                for item in node.expressions:
                    if _plain_star(item) and single and isinstance(from_, exp.From):
                        name = ctx.source.path_names(from_.this)[0]
                        findings.append(ctx.finding(NAME, "warning", item, MESSAGE.format(name)))
            elif isinstance(node, exp.From):
                if not found_from and simple:
                    found_from = True
                else:
                    simple = False
            elif isinstance(node, exp.Group):
                simple = False
            elif isinstance(node, exp.Join):
                if not found_join and simple:
                    found_join = True
                else:
                    simple = False
    return findings if simple else []
