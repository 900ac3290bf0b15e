"""Run every rule over a submitted text and price what it finds.

Rules run in the reference tool's visitor order, then the cost rules. Each finding is priced:
``bytes_before`` is what its statement bills as written (dry run or offline estimate), and a
rule that does not change what is read leaves ``bytes_after`` equal to it. Inline suppressions
(``-- sqlreview: allow RuleName because <reason>``, on the finding's line or the line above,
or anywhere before the first statement for the whole file) keep the finding but mark it.

Example:
    >>> review = review_sql("SELECT col1 FROM t ORDER BY col1")
    >>> review.reference_lines()
    ['OrderByWithoutLimit: ORDER BY clause without LIMIT at line 1.']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Literal

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding, Review, StatementCost
from edp.sqlreview.rules import ALL_RULES, Rule
from edp.sqlreview.source import Source

#: ``-- sqlreview: allow RuleName[, Other] because <reason>`` (the reason is mandatory).
SUPPRESSION = re.compile(
    r"--\s*sqlreview:\s*allow\s+(?P<rules>[A-Za-z]+(?:\s*,\s*[A-Za-z]+)*)\s+because\s+"
    r"(?P<reason>\S.*)$"
)


def suppressions(text: str) -> dict[int, dict[str, str]]:
    """``line -> {rule: reason}`` of every suppression comment (line 0: whole file).

    Example:
        >>> suppressions("-- sqlreview: allow WhereOrder because the order reads better\\nx")
        {1: {'WhereOrder': 'the order reads better'}}
    """
    found: dict[int, dict[str, str]] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = SUPPRESSION.search(line)
        if match:
            rules = [r.strip() for r in match["rules"].split(",")]
            found.setdefault(number, {}).update(dict.fromkeys(rules, match["reason"].strip()))
    return found


def _suppress(findings: Iterable[Finding], source: Source) -> list[Finding]:
    marks = suppressions(source.text)
    # comments are not tokens: the first token is where the header ends
    header_end = source.tokens[0].line if source.tokens else 1
    file_wide: dict[str, str] = {}
    for line, rules in marks.items():
        if line < header_end:
            file_wide.update(rules)
    out = []
    for finding in findings:
        reason = (
            marks.get(finding.line, {}).get(finding.rule)
            or marks.get(finding.line - 1, {}).get(finding.rule)
            or file_wide.get(finding.rule)
        )
        out.append(finding.model_copy(update={"suppressed": reason}) if reason else finding)
    return out


def _priced(finding: Finding, ctx: RuleContext, costs: dict[int, int | None]) -> Finding:
    if finding.bytes_before is not None:
        return finding
    before = costs.get(finding.statement)
    if before is None:
        return finding
    after = finding.bytes_after if finding.bytes_after is not None else before
    saved = before - after
    return finding.model_copy(
        update={
            "bytes_before": before,
            "bytes_after": after,
            "usd_before": ctx.pricing.usd(before),
            "usd_after": ctx.pricing.usd(after),
            "usd_per_day": ctx.pricing.usd_per_day(saved),
        }
    )


_CHECK_LINE = re.compile(r"^\s*--\s*check:", re.MULTILINE)


def script_text(text: str, *, checks: bool = False) -> str:
    """The text to review: a ``.checks.sql`` file's named queries become one script.

    A checks file holds queries separated by ``-- check: <name>`` lines and no ``;``; a ``;``
    is put at the end of the line before each such line, so line numbers do not move.

    Example:
        >>> script_text("-- check: a\\nselect 1\\n\\n-- check: b\\nselect 2", checks=True)
        '-- check: a\\nselect 1\\n;\\n-- check: b\\nselect 2'
    """
    if not checks:
        return text
    lines = text.split("\n")
    for index in range(1, len(lines)):
        if _CHECK_LINE.match(lines[index]) and any(
            line.strip() and not line.strip().startswith("--") for line in lines[:index]
        ):
            lines[index - 1] += ";"
    return "\n".join(lines)


def review(ctx: RuleContext, rules: dict[str, Rule] | None = None) -> Review:
    """Findings of every rule (or of ``rules``) over ``ctx.source``, priced and suppressed."""
    statements = ctx.source.statements
    costs: dict[int, int | None] = {}
    cost_rows = []
    for index, statement in enumerate(statements):
        costs[index] = ctx.estimate(statement)
        cost_rows.append(
            StatementCost(
                statement=index,
                bytes_billed=costs[index],
                usd=ctx.pricing.usd(costs[index]),
                source="none" if ctx.estimator is None else _source_name(ctx),
            )
        )
    findings: list[Finding] = []
    for check in (rules or ALL_RULES).values():
        findings.extend(_priced(f, ctx, costs) for f in check(statements, ctx))
    return Review(findings=tuple(_suppress(findings, ctx.source)), costs=tuple(cost_rows))


def _source_name(ctx: RuleContext) -> Literal["dry_run", "statistics"]:
    return "dry_run" if getattr(ctx.estimator, "source", "") == "dry_run" else "statistics"


def review_sql(text: str, **context: Any) -> Review:
    """Parse ``text`` and review it; keyword arguments go to :class:`RuleContext`.

    Raises:
        SqlSyntaxError: the text is not BigQuery SQL.
    """
    ctx = RuleContext(source=Source.parse(text), **context)
    return review(ctx)


__all__ = ["review", "review_sql", "script_text", "suppressions"]
