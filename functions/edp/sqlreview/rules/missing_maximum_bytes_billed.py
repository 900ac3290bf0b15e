"""MissingMaximumBytesBilled: a job that runs without a valid ``maximum_bytes_billed``.

With the cap set, a query that would bill more fails without charge (BigQuery's cost guide);
without it, one runaway query bills everything it reads. BigQuery bills at least 10 MB per
query and rejects a cap below it ("Query exceeded limit for bytes billed: 1000000. 10485760 or
higher required."), so a cap under 10485760 bytes is reported too. Checked only when the text
is a job's query (``context.check_job``), not for SQL models, which the platform runs through
its warehouse adapter (that always sets the cap from settings).

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> src = Source.parse("SELECT 1")
    >>> [f.severity for f in check(src.statements, RuleContext(source=src, check_job=True))]
    ['error']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding

NAME = "MissingMaximumBytesBilled"
#: BigQuery's smallest accepted ``maximum_bytes_billed`` (its 10 MB per-query minimum).
MINIMUM_CAP = 10_485_760
MISSING = (
    "The job runs without maximum_bytes_billed: a query that reads more than expected bills it "
    "all. Set maximum_bytes_billed (at least 10485760 bytes)."
)
TOO_LOW = (
    "maximum_bytes_billed = {cap} is below BigQuery's minimum of 10485760 bytes: the job is "
    "rejected. Set at least 10485760."
)


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    if not ctx.check_job or not statements:
        return []
    cap = ctx.maximum_bytes_billed
    if cap is not None and cap >= MINIMUM_CAP:
        return []
    message = MISSING if cap is None else TOO_LOW.format(cap=cap)
    return [ctx.finding(NAME, "error", statements[0], message, line=1)]
