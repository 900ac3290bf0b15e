"""Referential integrity: rows whose key has no parent row (order items without an order).

Example:
    >>> from edp.contracts.catalog import ReferenceCheck
    >>> c = ReferenceCheck(column="order_id", table="staging.orders", to_column="order_id")
    >>> evaluate("staging.order_items", c, rows=200, orphans=10).status
    'fail'
"""

from __future__ import annotations

from edp.contracts.catalog import ReferenceCheck, TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult


def evaluate(table: str, check: ReferenceCheck, rows: int, orphans: int) -> CheckResult:
    rate = orphans / rows if rows else None
    bad = rate is not None and rate > check.max_rate
    return CheckResult(
        check_name=f"{table}.referential_integrity.{check.column}",
        check_type="referential_integrity",
        table_ref=table,
        column_name=check.column,
        status="fail" if bad else "pass",
        severity="warning" if bad else "info",
        metric_value=rate,
        threshold=check.max_rate,
        details={"rows": rows, "orphans": orphans, "parent": f"{check.table}.{check.to_column}"},
    )


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    if spec.checks is None:
        return []
    out = []
    for ref in spec.checks.references:
        parent = ctx.catalog.table(ref.table)
        parent.column(ref.to_column)  # identifiers only from the catalogue
        row = ctx.warehouse.query(
            f"SELECT COUNT(*) AS n_rows, COUNTIF(p.{ref.to_column} IS NULL) AS n_orphans "
            f"FROM {spec.ref} AS c LEFT JOIN (SELECT DISTINCT {ref.to_column} FROM "
            f"{parent.ref}) AS p ON c.{ref.column} = p.{ref.to_column}"
        ).rows[0]
        out.append(evaluate(spec.ref, ref, int(row["n_rows"]), int(row["n_orphans"] or 0)))
    return out
