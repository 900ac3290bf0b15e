"""Helpers of the cost rules: catalogue tables read, twins in copies, added filters."""

from __future__ import annotations

from typing import cast

from sqlglot import exp

from edp.contracts.catalog import TableSpec
from edp.errors import UnknownTableError
from edp.sqlreview.context import RuleContext
from edp.warehouse.estimate import read_tables


def catalog_reads(statement: exp.Expression, ctx: RuleContext) -> list[tuple[exp.Table, TableSpec]]:
    """Every catalogue table ``statement`` reads, with its spec (unknown names skipped)."""
    key = ("catalog_reads", id(statement))
    cached = ctx.memo.get(key)
    if cached is not None and cached[0] is statement:
        return cast("list[tuple[exp.Table, TableSpec]]", cached[1])
    found = []
    for table in read_tables(statement):
        try:
            found.append((table, ctx.catalog.table(f"{table.db}.{table.name}")))
        except UnknownTableError:
            continue
    ctx.memo[key] = (statement, found)
    return found


def twin(root: exp.Expression, copy: exp.Expression, node: exp.Expression) -> exp.Expression:
    """The node of ``copy`` (a ``root.copy()``) standing where ``node`` stands in ``root``."""
    for old, new in zip(root.walk(), copy.walk(), strict=True):
        if old is node:
            return cast("exp.Expression", new)
    raise ValueError("node is not under root")


def with_condition(
    statement: exp.Expression, table: exp.Table, condition: exp.Expression
) -> exp.Expression:
    """A copy of ``statement`` whose query reading ``table`` also filters on ``condition``."""
    copy = statement.copy()
    target = twin(statement, copy, table)
    select = target.find_ancestor(exp.Select)
    if select is None:
        return copy
    select.where(condition, copy=False)
    return copy


def column_of(table: exp.Table, name: str) -> exp.Column:
    """``alias.name`` (or ``name`` when the table has no alias) for ``table``."""
    return exp.column(name, table=table.alias or None)
