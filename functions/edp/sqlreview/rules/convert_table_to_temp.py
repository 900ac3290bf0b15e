"""ConvertTableToTemp: a persistent table the same script creates and drops.

Same trigger as the reference tool (``IdentifyDroppedPersistentTableVisitor``): ``CREATE
TABLE name`` (default scope) that is also ``DROP``ped (same lower-cased dotted name); line of
the CREATE.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("CREATE TABLE d.t AS (SELECT 1);\\nDROP TABLE d.t;")
    >>> [f.line for f in check(src.statements, RuleContext(source=src))]
    [1]
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._tables import created_tables, dropped_tables

NAME = "ConvertTableToTemp"
MESSAGE = (
    "Persistent table dropped: Table {} defined at line {} is dropped. Consider converting to "
    "temporary."
)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    dropped = dropped_tables(statements, ctx.source)
    findings = []
    for name, create in created_tables(statements, ctx.source, temporary=False).items():
        if name in dropped:
            line = ctx.source.line(create)
            findings.append(ctx.finding(NAME, "info", create, MESSAGE.format(name, line)))
    return findings
