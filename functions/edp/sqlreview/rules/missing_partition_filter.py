"""MissingPartitionFilter: a partitioned table read without any filter on its partition column.

Every partition is scanned and billed (the cost incident this reviewer exists for: one such
query took a day's bill from $18 to $42). On a table declared with
``require_partition_filter`` BigQuery refuses the query ("Cannot query over table ... without
a filter over column(s) ... that can be used for partition elimination"), so the finding is
an error there and a warning elsewhere. ``bytes_after`` prices the same query restricted to
the last day (``col >= <yesterday>``): the window is the author's choice, so no rewrite is
offered.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT event_id FROM raw.user_events")
    >>> [(f.severity, f.line) for f in check(src.statements, RuleContext(source=src))]
    [('error', 1)]
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.contracts.catalog import TableSpec
from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._cost import catalog_reads, column_of, with_condition
from edp.warehouse.estimate import partition_filters

NAME = "MissingPartitionFilter"
MESSAGE = (
    "Table {table} is partitioned by {column} ({kind}) but read without a filter on it: every "
    "partition is scanned and billed.{required} Filter on {column} with constants or "
    "parameters."
)


def last_day_filter(table: exp.Table, spec: TableSpec) -> exp.Expression:
    """``col >= <start of yesterday>`` in the column's type (the counterfactual window)."""
    assert spec.partitioning is not None
    column = column_of(table, spec.partitioning.field)
    yesterday = exp.DateSub(
        this=exp.CurrentDate(), expression=exp.Literal.number(1), unit=exp.var("DAY")
    )
    if spec.column(spec.partitioning.field).type == "DATE":
        return exp.GTE(this=column, expression=yesterday)
    return exp.GTE(this=column, expression=exp.Timestamp(this=yesterday))


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for table, spec in catalog_reads(statement, ctx):
            if spec.partitioning is None:
                continue
            filters = partition_filters(table, spec)
            if filters.bare or filters.wrapped:
                continue
            required = spec.partitioning.require_partition_filter
            message = MESSAGE.format(
                table=spec.ref,
                column=spec.partitioning.field,
                kind=spec.partitioning.type,
                required=" The table requires a partition filter: BigQuery rejects this query."
                if required
                else "",
            )
            before = ctx.estimate(statement)
            after = ctx.estimate(with_condition(statement, table, last_day_filter(table, spec)))
            findings.append(
                ctx.finding(
                    NAME,
                    "error" if required else "warning",
                    table,
                    message,
                    bytes_before=before,
                    bytes_after=after,
                )
            )
    return findings
