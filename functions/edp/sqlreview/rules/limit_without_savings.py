"""LimitWithoutSavings: a LIMIT on a query that reads a table — it cuts rows, not bytes.

BigQuery's cost guide: "applying a LIMIT clause to a SELECT * query does not affect the amount
of data read" (except on clustered tables); the query bills every column and partition it
reads before the limit. Reported on the outermost query's LIMIT when it reads a catalogue table
without aggregation, so nobody takes it for a cost control.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT * FROM mart.orders_daily LIMIT 10")
    >>> [f.rule for f in check(src.statements, RuleContext(source=src))]
    ['LimitWithoutSavings']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._cost import catalog_reads

NAME = "LimitWithoutSavings"
MESSAGE = (
    "LIMIT does not reduce the bytes billed: {tables} is still read in full (every column named "
    "and every partition not pruned). Filter on the partition column or select fewer columns "
    "to cut cost."
)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        if not isinstance(statement, exp.Select) or statement.args.get("limit") is None:
            continue
        if statement.args.get("group") or statement.find(exp.AggFunc):
            continue
        reads = [spec.ref for table, spec in catalog_reads(statement, ctx) if not spec.clustering]
        if not reads:
            continue
        bytes_now = ctx.estimate(statement)
        message = MESSAGE.format(tables=", ".join(dict.fromkeys(reads)))
        findings.append(
            ctx.finding(
                NAME,
                "info",
                statement.args["limit"],
                message,
                bytes_before=bytes_now,
                bytes_after=bytes_now,
            )
        )
    return findings
