"""ClusterFilterOrder: a clustered table filtered on its clustering columns but not the first.

BigQuery sorts a clustered table's blocks by the clustering columns in order; a filter prunes
blocks only from the first column on ("filter on clustered columns in clustering order",
BigQuery's clustered-tables guide), so ``WHERE device_type = 'ios'`` on a table clustered by
``(event_type, device_type)`` scans what it would without clustering. Block pruning is not
known before the query runs (a dry run reports the upper bound), so ``bytes_after`` is the
same upper bound and the finding says so.

Example:
    >>> from edp.sqlreview.source import Source
    >>> from edp.sqlreview.context import RuleContext
    >>> sql = "SELECT 1 FROM raw.user_events WHERE event_timestamp > @t AND device_type = 'ios'"
    >>> src = Source.parse(sql)
    >>> [f.rule for f in check(src.statements, RuleContext(source=src))]
    ['ClusterFilterOrder']
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlglot import exp

from edp.sqlreview.context import RuleContext
from edp.sqlreview.model import Finding
from edp.sqlreview.rules._cost import catalog_reads
from edp.warehouse.estimate import where_of

NAME = "ClusterFilterOrder"
MESSAGE = (
    "Table {table} is clustered by ({clustering}); the filter uses {used} but not {first}, so "
    "clustering cannot prune blocks. Also filter on {first} (clustering order matters); the "
    "bytes shown are the dry-run upper bound."
)


def filtered_columns(table: exp.Table, names: Sequence[str]) -> list[str]:
    """The columns of ``names`` that the WHERE reading ``table`` filters on."""
    condition = where_of(table)
    if condition is None:
        return []
    refs = {table.name, table.alias} - {""}
    seen = {
        c.name
        for c in condition.find_all(exp.Column)
        if c.name in names and (not c.table or c.table in refs)
    }
    return [n for n in names if n in seen]


def check(statements: Sequence[exp.Expression], ctx: RuleContext) -> list[Finding]:
    findings: list[Finding] = []
    for statement in statements:
        for table, spec in catalog_reads(statement, ctx):
            if not spec.clustering:
                continue
            used = filtered_columns(table, spec.clustering)
            if not used or spec.clustering[0] in used:
                continue
            message = MESSAGE.format(
                table=spec.ref,
                clustering=", ".join(spec.clustering),
                used=", ".join(used),
                first=spec.clustering[0],
            )
            findings.append(ctx.finding(NAME, "info", table, message))
    return findings
