"""StringComparison: ``REGEXP_CONTAINS`` with a ``.*...*`` pattern that LIKE could do.

Same trigger as the reference tool (``IdentifyRegexpContainsVisitor``): a call to
``regexp_contains`` (any case) with a string-literal argument matching the Java regex
``['"]\\.\\*.*\\.\\*['"]`` (the pattern starts and ends with ``.*``); line of the function name.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT a FROM t WHERE REGEXP_CONTAINS(a, '.*x.*')")
    >>> [f.line for f in check(src.statements, RuleContext(source=src))]
    [1]
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.source import walk_in_order

NAME = "StringComparison"
MESSAGE = (
    "REGEXP_CONTAINS at line {}. Prefer LIKE when the full power of regex is not needed "
    "(e.g. wildcard matching)."
)
_WILDCARD = re.compile(r"['\"]\.\*.*\.\*['\"]")


def _is_regexp_contains(node: exp.Expression) -> bool:
    if isinstance(node, exp.RegexpLike):
        return str(node.meta.get("bigquery_name", "regexp_contains")).lower() == "regexp_contains"
    return isinstance(node, exp.Anonymous) and node.name.lower() == "regexp_contains"


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for node in walk_in_order(statement):
            if not _is_regexp_contains(node):
                continue
            for arg in node.iter_expressions():
                literal = isinstance(arg, exp.Literal) and arg.is_string
                if literal and _WILDCARD.search(f"'{arg.this}'"):
                    line = ctx.source.line(node)
                    findings.append(ctx.finding(NAME, "info", node, MESSAGE.format(line)))
    return findings
