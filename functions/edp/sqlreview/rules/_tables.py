"""CREATE TABLE / DROP bookkeeping shared by MissingDropStatement and ConvertTableToTemp."""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.source import Source


def created_tables(
    statements: Sequence[exp.Expression], source: Source, *, temporary: bool
) -> dict[str, exp.Create]:
    """``lower-cased dotted name -> CREATE`` of the (temporary or default-scope) tables."""
    found: dict[str, exp.Create] = {}
    for statement in statements:
        if not isinstance(statement, exp.Create) or statement.kind != "TABLE":
            continue
        properties = statement.args.get("properties")
        is_temp = isinstance(properties, exp.Properties) and any(
            isinstance(p, exp.TemporaryProperty) for p in properties.expressions
        )
        if is_temp != temporary:
            continue
        target = statement.this
        table = target.this if isinstance(target, exp.Schema) else target
        if isinstance(table, exp.Table):
            found[".".join(n.lower() for n in source.path_names(table))] = statement
    return found


def dropped_tables(statements: Sequence[exp.Expression], source: Source) -> set[str]:
    names = set()
    for statement in statements:
        if isinstance(statement, exp.Drop):
            for table in statement.args.get("tables") or [statement.this]:
                if isinstance(table, exp.Table):
                    names.add(".".join(n.lower() for n in source.path_names(table)))
    return names
