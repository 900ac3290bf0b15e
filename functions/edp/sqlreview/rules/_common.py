"""Small AST helpers shared by the rules."""

from __future__ import annotations

from collections.abc import Iterator

from sqlglot import exp

QUERY_NODES = (exp.Select, exp.SetOperation, exp.Subquery)


def from_items(select: exp.Select) -> list[exp.Expression]:
    """The FROM item and every joined item of a SELECT, in written order."""
    items: list[exp.Expression] = []
    from_ = select.args.get("from_")
    if isinstance(from_, exp.From):
        items.append(from_.this)
    for join in select.args.get("joins") or []:
        items.append(join.this)
    return items


def unwrap_query(node: exp.Expression) -> exp.Expression:
    """The query inside parentheses: ``(SELECT ...)`` -> the SELECT."""
    while isinstance(node, exp.Subquery) and not node.args.get("order"):
        node = node.this
    return node


def conjuncts(node: exp.Expression) -> list[exp.Expression]:
    """``a AND b AND c`` -> ``[a, b, c]`` (parenthesised groups stay whole)."""
    if isinstance(node, exp.And):
        return [*conjuncts(node.this), *conjuncts(node.expression)]
    return [node]


def walk_outside_subqueries(node: exp.Expression) -> Iterator[exp.Expression]:
    """Every node under ``node`` without entering nested queries."""
    yield node
    for child in node.iter_expressions():
        if isinstance(child, exp.Select | exp.SetOperation | exp.Subquery):
            continue
        yield from walk_outside_subqueries(child)


def table_ref(table: exp.Table) -> str:
    """``dataset.table`` of a table node (no project)."""
    return f"{table.db}.{table.name}" if table.db else table.name
