"""LatestRecordWithAnalyticFun: ``ROW_NUMBER()``/``RANK()`` in a subquery filtered ``= 1``.

Same trigger as the reference tool (``IdentifyLatestRecordVisitor``): a SELECT with a WHERE
whose FROM (or a joined item) is a subquery selecting ``row_number()`` or ``rank()`` OVER(...)
under an alias, and a binary expression ``alias <op> 1`` in that WHERE. Deliberate deviation:
the function name matches in any case (the reference compares ``row_number``/``rank``
case-sensitively, which misses upper-case SQL); it is printed as written.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> sql = "SELECT a FROM (\\nSELECT a, row_number() OVER (ORDER BY a) rn FROM t)\\nWHERE rn = 1"
    >>> src = Source.parse(sql)
    >>> [f.line for f in check(src.statements, RuleContext(source=src))]
    [2]
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._common import from_items, unwrap_query
from edp.sqlreview.source import walk_in_order

NAME = "LatestRecordWithAnalyticFun"
MESSAGE = (
    "Seems like you might be using analytical function {} in line {} to filter the latest "
    "record in line {}."
)
_FUNCTIONS = (exp.RowNumber, exp.Rank)


def _function_name(node: exp.Expression) -> str:
    written = node.meta.get("bigquery_name") if node.meta else None
    return str(written) if written else type(node).__name__.lower()


def _first_path_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Column):
        return node.parts[0].name
    return None


def _filter(where: exp.Where, alias: str) -> exp.Expression | None:
    for node in walk_in_order(where):
        if not isinstance(node, exp.Binary) or isinstance(node, exp.Connector):
            continue
        lhs, rhs = node.this, node.expression
        if (
            _first_path_name(lhs) == alias
            and isinstance(rhs, exp.Literal)
            and not rhs.is_string
            and rhs.this == "1"
        ):
            return node
    return None


def _items(item: exp.Expression) -> list[exp.Subquery]:
    return [item] if isinstance(item, exp.Subquery) else []


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for select in walk_in_order(statement):
            if not isinstance(select, exp.Select):
                continue
            where = select.args.get("where")
            if not isinstance(where, exp.Where) or select.args.get("from_") is None:
                continue
            for item in from_items(select):
                for subquery in _items(item):
                    inner = unwrap_query(subquery)
                    if not isinstance(inner, exp.Select):
                        continue
                    for column in inner.expressions:
                        if not isinstance(column, exp.Alias):
                            continue
                        window = column.this
                        if not isinstance(window, exp.Window):
                            continue
                        function = window.this
                        if not isinstance(function, _FUNCTIONS):
                            continue
                        hit = _filter(where, column.alias)
                        if hit is None:
                            continue
                        message = MESSAGE.format(
                            _function_name(function), ctx.source.line(column), ctx.source.line(hit)
                        )
                        findings.append(ctx.finding(NAME, "info", column, message))
    return findings
