"""PartitionFilterDefeated: the partition column is filtered only inside a function or cast.

BigQuery prunes partitions on a filter that compares the *bare* partition column with a
constant expression; ``DATE(ts) = '2026-12-01'``, ``CAST(ts AS DATE) = ...`` or
``TIMESTAMP_TRUNC(ts, DAY) = ...`` leave every partition to scan ("isolate the partition
column in your filter", BigQuery's guidance on pruning). Reported when no bare filter on the
column exists beside the wrapped one; an error when the table requires a partition filter
(BigQuery rejects the query), else a warning.

Exact rewrite (TIMESTAMP partition column, day functions): ``DATE(ts[, tz]) <op> d`` becomes a
range on ``ts`` — ``=``: ``ts >= TIMESTAMP(d[, tz]) AND ts < TIMESTAMP(DATE_ADD(d, INTERVAL 1
DAY)[, tz])``; ``BETWEEN a AND b``, ``>=``, ``>``, ``<``, ``<=`` likewise — the same rows for every
value of ``ts`` (NULL included), and prunable.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> sql = "SELECT event_id FROM raw.user_events WHERE DATE(event_timestamp) = '2026-12-01'"
    >>> src = Source.parse(sql)
    >>> print(check(src.statements, RuleContext(source=src))[0].rewrite.sql)
    SELECT event_id FROM raw.user_events WHERE event_timestamp >= TIMESTAMP(DATE('2026-12-01')) AND event_timestamp < TIMESTAMP(DATE_ADD(DATE('2026-12-01'), INTERVAL 1 DAY))
"""  # noqa: E501

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from sqlglot import exp

from edp.contracts.catalog import TableSpec
from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding, Rewrite
from edp.sqlreview.rules._cost import catalog_reads, twin
from edp.warehouse.estimate import partition_filters

NAME = "PartitionFilterDefeated"
MESSAGE = (
    "Filter on partition column {column} of {table} wraps it in a function or cast "
    "({snippet}): BigQuery cannot prune partitions and scans them all.{required} Compare the "
    "bare column with a constant range instead."
)


def _day_of(node: exp.Expression, column: str) -> tuple[exp.Column, exp.Expression | None] | None:
    """``(col, tz)`` when ``node`` is ``DATE(col[, tz])`` or ``CAST(col AS DATE)`` on the
    partition column (their value is a DATE, so a day range is exact; ``TIMESTAMP_TRUNC`` is
    compared with timestamps that need not be midnights, so it gets no rewrite)."""
    if (
        isinstance(node, exp.Date | exp.TsOrDsToDate)
        and isinstance(node.this, exp.Column)
        and node.this.name == column
        and not node.expressions
    ):
        return node.this, node.args.get("zone")
    if (
        isinstance(node, exp.Cast)
        and isinstance(node.this, exp.Column)
        and node.this.name == column
        and node.to.is_type(exp.DataType.Type.DATE)
    ):
        return node.this, None
    return None


def _instant(day: exp.Expression, zone: exp.Expression | None, plus_one: bool) -> exp.Expression:
    value: exp.Expression = exp.Date(this=day.copy())
    if plus_one:
        value = exp.DateAdd(this=value, expression=exp.Literal.number(1), unit=exp.var("DAY"))
    return exp.Timestamp(this=value, zone=zone.copy() if zone is not None else None)


def range_for(conjunct: exp.Expression, column: str) -> exp.Expression | None:  # noqa: PLR0911
    """The bare-column range equal to ``conjunct`` (None when there is no exact one)."""
    if isinstance(conjunct, exp.Between):
        found = _day_of(conjunct.this, column)
        if found is None:
            return None
        col, zone = found
        low = exp.GTE(this=col.copy(), expression=_instant(conjunct.args["low"], zone, False))
        high = exp.LT(this=col.copy(), expression=_instant(conjunct.args["high"], zone, True))
        return cast("exp.Expression", exp.and_(low, high))
    if not isinstance(conjunct, exp.EQ | exp.GT | exp.GTE | exp.LT | exp.LTE):
        return None
    found = _day_of(conjunct.this, column)
    value = conjunct.expression
    kind: type[exp.Expression] = type(conjunct)
    if found is None:
        found = _day_of(conjunct.expression, column)
        value = conjunct.this
        mirror: dict[type[exp.Expression], type[exp.Expression]] = {
            exp.GT: exp.LT,
            exp.GTE: exp.LTE,
            exp.LT: exp.GT,
            exp.LTE: exp.GTE,
        }
        kind = mirror.get(kind, kind)
    if found is None or value.find(exp.Column):
        return None
    col, zone = found
    if kind is exp.EQ:
        both = exp.and_(
            exp.GTE(this=col.copy(), expression=_instant(value, zone, False)),
            exp.LT(this=col.copy(), expression=_instant(value, zone, True)),
        )
        return cast("exp.Expression", both)
    if kind is exp.GTE:
        return exp.GTE(this=col.copy(), expression=_instant(value, zone, False))
    if kind is exp.GT:
        return exp.GTE(this=col.copy(), expression=_instant(value, zone, True))
    if kind is exp.LT:
        return exp.LT(this=col.copy(), expression=_instant(value, zone, False))
    return exp.LT(this=col.copy(), expression=_instant(value, zone, True))


def _rewrite(
    statement: exp.Expression, wrapped: Sequence[exp.Expression], spec: TableSpec
) -> exp.Expression | None:
    assert spec.partitioning is not None
    if spec.column(spec.partitioning.field).type != "TIMESTAMP":
        return None
    copy = statement.copy()
    changed = False
    for conjunct in wrapped:
        replacement = range_for(conjunct, spec.partitioning.field)
        if replacement is None:
            continue
        twin(statement, copy, conjunct).replace(replacement)
        changed = True
    return copy if changed else None


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for table, spec in catalog_reads(statement, ctx):
            filters = partition_filters(table, spec)
            if filters.bare or not filters.wrapped or spec.partitioning is None:
                continue
            required = spec.partitioning.require_partition_filter
            message = MESSAGE.format(
                column=spec.partitioning.field,
                table=spec.ref,
                snippet=filters.wrapped[0].sql(dialect="bigquery"),
                required=" The table requires a partition filter: BigQuery rejects this query."
                if required
                else "",
            )
            rewritten = _rewrite(statement, filters.wrapped, spec)
            before = ctx.estimate(statement)
            after = ctx.estimate(rewritten) if rewritten is not None else None
            rewrite = (
                Rewrite(
                    sql=rewritten.sql(dialect="bigquery"),
                    exact=True,
                    note="The wrapped day filter as a range on the bare partition column.",
                )
                if rewritten is not None
                else None
            )
            findings.append(
                ctx.finding(
                    NAME,
                    "error" if required else "warning",
                    filters.wrapped[0],
                    message,
                    bytes_before=before,
                    bytes_after=after,
                    rewrite=rewrite,
                )
            )
    return findings
