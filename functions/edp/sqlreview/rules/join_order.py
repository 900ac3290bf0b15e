"""JoinOrder: tables joined smallest-first (needs table sizes).

Same trigger as the reference tool's analyzer rule (``JoinOrderVisitor``): a join made only of
tables, their row counts known; sorted by rows descending, the order differs from the written
one. Row counts come from table statistics (the reference reads ``numRows`` from the BigQuery
API); without them the rule stays silent.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT 1 FROM d.small s JOIN d.big b ON s.k = b.k")
    >>> ctx = RuleContext(source=src, row_counts={"d.small": 10, "d.big": 1000})
    >>> [f.message for f in check(src.statements, ctx)]
    ['JOIN on tables: [small, big] might perform better if tables where joined in the following order: [big, small]']
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._common import from_items, table_ref
from edp.sqlreview.source import walk_in_order

NAME = "JoinOrder"
MESSAGE = (
    "JOIN on tables: [{}] might perform better if tables where joined in the following order: [{}]"
)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    if not ctx.row_counts:
        return []
    findings: list[Finding] = []
    for statement in statements:
        for select in walk_in_order(statement):
            if not isinstance(select, exp.Select) or not select.args.get("joins"):
                continue
            items = from_items(select)
            if not all(isinstance(i, exp.Table) for i in items):
                continue
            tables = [i for i in items if isinstance(i, exp.Table)]
            refs = [table_ref(t) for t in tables]
            if not all(r in ctx.row_counts for r in refs):
                continue
            # stable sort on rows descending, like Java's sort + reverse on ties reversed
            best = sorted(tables, key=lambda t: ctx.row_counts[table_ref(t)], reverse=True)
            if best != tables:
                message = MESSAGE.format(
                    ", ".join(t.name for t in tables), ", ".join(t.name for t in best)
                )
                findings.append(ctx.finding(NAME, "info", select.args["joins"][0], message))
    return findings
