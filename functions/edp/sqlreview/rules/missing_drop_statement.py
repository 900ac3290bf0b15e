"""MissingDropStatement: a TEMP table the script creates and never drops.

Same trigger as the reference tool (``IdentifyMissingDropStatementVisitor``): ``CREATE TEMP
TABLE name`` with no ``DROP`` of the same lower-cased dotted name; line of the CREATE.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("CREATE TEMP TABLE mydataset.example AS (SELECT 1);")
    >>> [f.line for f in check(src.statements, RuleContext(source=src))]
    [1]
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._tables import created_tables, dropped_tables

NAME = "MissingDropStatement"
MESSAGE = (
    "TEMP table created without DROP statement: TEMP table {} defined at line {} is created "
    "and not dropped."
)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    dropped = dropped_tables(statements, ctx.source)
    findings = []
    for name, create in created_tables(statements, ctx.source, temporary=True).items():
        if name not in dropped:
            line = ctx.source.line(create)
            findings.append(ctx.finding(NAME, "info", create, MESSAGE.format(name, line)))
    return findings
