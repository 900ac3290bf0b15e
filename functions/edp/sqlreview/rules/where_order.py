"""WhereOrder: AND-ed predicates not ordered from the most to the least selective kind.

Same trigger as the reference tool (``IdentifyWhereOrderVisitor`` +
``CheckAndInWhereVisitor``): a WHERE whose top expression is AND; in every AND group of that
WHERE (subqueries are checked on their own), the conjuncts that are binary comparisons get a
cost — ``=`` 1, ``>`` ``<`` 2, ``>=`` ``<=`` 3, ``!=`` ``<>`` 5, ``LIKE`` (and ``NOT LIKE``) 6;
IN, IS NULL and function calls are ignored — and the WHERE is reported (its line) when the
costs are not non-decreasing. The AST rewrite sorts the conjuncts by cost (exact: AND is
commutative in BigQuery).

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT a FROM t\\nWHERE a LIKE '%x%' AND b = 1")
    >>> [f.line for f in check(src.statements, RuleContext(source=src))]
    [2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding, Rewrite
from edp.sqlreview.rules._common import conjuncts, walk_outside_subqueries
from edp.sqlreview.source import walk_in_order

NAME = "WhereOrder"
MESSAGE = (
    "SubOptimal order of predicates in WHERE, line {}. Consider applying more restrictive "
    "filters first. For example a '=' or a '>' filter usually is usually more restrictive than "
    "a like '%' filter. The following order might provide performance benefits is '=', '>', "
    "'<', '<>', 'like'"
)
_COSTS: dict[type[exp.Expression], int] = {
    exp.EQ: 1,
    exp.GT: 2,
    exp.LT: 2,
    exp.GTE: 3,
    exp.LTE: 3,
    exp.NEQ: 5,
    exp.Like: 6,
}


def cost(node: exp.Expression) -> int | None:
    """Cost class of one conjunct (None: not a costed comparison)."""
    while isinstance(node, exp.Paren) and not isinstance(node.this, exp.And):
        node = node.this
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Like):
        return _COSTS[exp.Like]
    return _COSTS.get(type(node))


def _groups(where: exp.Where) -> list[exp.And]:
    groups = []
    for node in walk_outside_subqueries(where):
        if isinstance(node, exp.And) and not isinstance(node.parent, exp.And):
            groups.append(node)
    return groups


def _ordered(group: exp.And) -> bool:
    costs = [c for c in (cost(x) for x in conjuncts(group)) if c is not None]
    return costs == sorted(costs)


def _sorted_group(group: exp.And) -> exp.Expression:
    parts = conjuncts(group)
    # uncosted conjuncts sit between '<=' and '!=' and keep their relative order
    ranked = sorted(enumerate(parts), key=lambda item: (cost(item[1]) or 4, item[0]))
    return cast("exp.Expression", exp.and_(*(part.copy() for _, part in ranked), copy=False))


def rewrite_sql(statement: exp.Expression, where: exp.Where) -> str:
    """``statement`` (BigQuery SQL) with the conjuncts of every AND group of ``where`` sorted.

    Built without copying the statement (large models): each group is swapped for its sorted
    copy, the statement rendered, and the original group put back.
    """
    swapped: list[tuple[exp.Expression, exp.Expression]] = []
    for group in _groups(where):
        replacement = _sorted_group(group)
        group.replace(replacement)
        swapped.append((replacement, group))
    try:
        return statement.sql(dialect="bigquery")
    finally:
        for replacement, original in reversed(swapped):
            replacement.replace(original)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for node in walk_in_order(statement):
            if not isinstance(node, exp.Where) or not isinstance(node.this, exp.And):
                continue
            if all(_ordered(group) for group in _groups(node)):
                continue
            line = ctx.source.line(node)
            findings.append(
                ctx.finding(
                    NAME,
                    "info",
                    node,
                    MESSAGE.format(line),
                    rewrite=Rewrite(
                        sql=rewrite_sql(statement, node),
                        exact=True,
                        note="Conjuncts reordered '=', '>'/'<', '>='/'<=', '!=', 'like'.",
                    )
                    if ctx.rewrites
                    else None,
                )
            )
    return findings
