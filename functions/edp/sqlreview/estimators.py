"""Bytes estimators for :class:`edp.sqlreview.context.RuleContext`: a BigQuery dry run in
production, table statistics offline. Both return bytes *billed* (BigQuery's 10 MiB minimum
applied) or None when the statement cannot be estimated (unbound parameters, unknown tables).

Example:
    >>> import datetime as dt
    >>> from edp.warehouse.statistics import Statistics
    >>> from edp.warehouse.dialect import parse_bigquery
    >>> est = StatisticsEstimator(Statistics(tables={}))
    >>> est(parse_bigquery("SELECT COUNT(*) FROM raw.user_events")[0])
    10485760
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.api_core.exceptions import GoogleAPIError
from sqlglot import exp

from edp.contracts.catalog import Catalog, load_catalog
from edp.errors import EdpError
from edp.warehouse.estimate import billed_bytes, estimate_from_statistics, read_tables
from edp.warehouse.port import Warehouse
from edp.warehouse.statistics import Statistics


@dataclass
class StatisticsEstimator:
    """Offline: bytes billed from table statistics (no warehouse call)."""

    statistics: Statistics
    catalog: Catalog = field(default_factory=load_catalog)
    params: Mapping[str, Any] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    source: str = "statistics"

    def __call__(self, statement: exp.Expression) -> int | None:
        try:
            found = estimate_from_statistics(
                statement, self.catalog, self.statistics, self.params, self.now
            )
        except EdpError:
            return None
        return None if found is None else found.billed


@dataclass
class DryRunEstimator:
    """Production: BigQuery's dry run of the statement (``total_bytes_processed``), billed."""

    warehouse: Warehouse
    params: Mapping[str, Any] = field(default_factory=dict)
    source: str = "dry_run"

    def __call__(self, statement: exp.Expression) -> int | None:
        try:
            processed = self.warehouse.dry_run(statement.sql(dialect="bigquery"), self.params)
        except EdpError:
            return None
        return billed_bytes([processed])


def row_counts(warehouse: Warehouse, refs: Iterable[str]) -> dict[str, int]:
    """Rows of each catalogue table in ``refs`` (what JoinOrder and ExactCountDistinct need).

    On BigQuery the table metadata's ``numRows`` (free: no query job, like the reference
    tool's JoinOrder); elsewhere a ``COUNT(*)`` per table (local warehouses). A table that
    cannot be counted is left out.
    """
    from edp.warehouse.bigquery_adapter import BigQueryWarehouse

    counts: dict[str, int] = {}
    for ref in sorted(set(refs)):
        try:
            spec = load_catalog().table(ref)
            if isinstance(warehouse, BigQueryWarehouse):
                dataset = warehouse.settings.dataset_name(spec.dataset)
                table = warehouse.client.get_table(f"{warehouse.project}.{dataset}.{spec.name}")
                counts[ref] = int(table.num_rows or 0)
            else:
                value = warehouse.query(f"SELECT COUNT(*) AS n FROM {spec.ref}").scalar()
                counts[ref] = int(value or 0)
        except (EdpError, GoogleAPIError, OSError):
            continue
    return counts


def referenced_catalog_tables(statements: Iterable[exp.Expression]) -> set[str]:
    """``dataset.table`` of every catalogue-dataset table the statements read.

    Example:
        >>> from edp.warehouse.dialect import parse_bigquery
        >>> sorted(referenced_catalog_tables(parse_bigquery("SELECT 1 FROM raw.user_events")))
        ['raw.user_events']
    """
    return {f"{t.db}.{t.name}" for s in statements for t in read_tables(s)}
