"""CTEsEvalMultipleTimes: a CTE read more than once (BigQuery evaluates it each time).

Same trigger as the reference tool (``IdentifyCTEsEvalMultipleTimesVisitor``): a CTE alias
(lower-cased) counted each time it appears as a component of a table path in the top-level
FROM/JOIN items (and FROM subqueries) of every CTE body, and anywhere in the main query; more
than one reference is reported with the line of the alias.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("WITH a AS (SELECT 1 AS x)\\nSELECT * FROM a JOIN a AS b USING (x)")
    >>> [f.message for f in check(src.statements, RuleContext(source=src))]
    ['CTE with multiple references: alias a defined at line 1 is referenced 2 times.']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._common import from_items, unwrap_query

NAME = "CTEsEvalMultipleTimes"
MESSAGE = "CTE with multiple references: alias {} defined at line {} is referenced {} times."


class _Counter:
    def __init__(self, ctx: RuleContext) -> None:
        self.ctx = ctx
        self.counts: dict[str, int] = {}
        self.defined: dict[str, exp.Expression] = {}

    def path(self, table: exp.Table) -> None:
        for name in self.ctx.source.path_names(table):
            key = name.lower()
            if key in self.counts:
                self.counts[key] += 1

    def table_expression(self, item: exp.Expression) -> None:
        if isinstance(item, exp.Table):
            self.path(item)
        elif isinstance(item, exp.Subquery):
            inner = unwrap_query(item)
            if isinstance(inner, exp.Select):
                for child in from_items(inner):
                    self.table_expression(child)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    counter = _Counter(ctx)
    for statement in statements:
        with_ = statement.args.get("with_")
        if isinstance(with_, exp.With):
            for cte in with_.expressions:
                alias = cte.args["alias"].this
                counter.counts[cte.alias.lower()] = 0
                counter.defined[cte.alias.lower()] = alias
                body = cte.this
                if isinstance(body, exp.Select):
                    for item in from_items(body):
                        counter.table_expression(item)
        for table in statement.find_all(exp.Table):
            if isinstance(with_, exp.With) and table.find_ancestor(exp.With) is with_:
                continue
            if table.find_ancestor(exp.From, exp.Join) is None:
                continue
            counter.path(table)
    findings = []
    for alias, count in counter.counts.items():
        if count > 1:
            node = counter.defined[alias]
            line = ctx.source.line(node)
            findings.append(ctx.finding(NAME, "info", node, MESSAGE.format(alias, line, count)))
    return findings
