"""What a rule sees besides the AST: the text, the catalogue, statistics, prices, the job.

Example:
    >>> from edp.sqlreview.source import Source
    >>> ctx = RuleContext(source=Source.parse("SELECT 1"))
    >>> ctx.pricing.usd(2**40)
    6.25
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

from sqlglot import exp

from edp.contracts.catalog import Catalog, load_catalog
from edp.sqlreview.model import Finding, Rewrite, Severity
from edp.sqlreview.source import Source

TIB = 2**40

#: ``statement -> bytes billed`` (None when it cannot be estimated): a BigQuery dry run in
#: production, :func:`edp.warehouse.estimate.estimate_from_statistics` offline.
BytesEstimator = Callable[[exp.Expression], "int | None"]


@dataclass(frozen=True)
class Pricing:
    """On-demand price (USD per TiB billed) and how often the reviewed SQL runs.

    Example:
        >>> Pricing(usd_per_tib=6.25, runs_per_day=24).usd_per_day(2**40)
        150.0
    """

    usd_per_tib: float = 6.25
    runs_per_day: float | None = None

    def usd(self, bytes_billed: int | None) -> float | None:
        if bytes_billed is None:
            return None
        return round(bytes_billed / TIB * self.usd_per_tib, 6)

    def usd_per_day(self, saved_bytes: int | None) -> float | None:
        if saved_bytes is None or self.runs_per_day is None:
            return None
        return round(saved_bytes / TIB * self.usd_per_tib * self.runs_per_day, 6)


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may use; only ``source`` is required.

    Attributes:
        source: the submitted text, its tokens and statements.
        catalog: the table catalogue (partitioning, clustering, columns).
        estimator: bytes billed by a statement (dry run or offline statistics), or None.
        row_counts: rows per ``dataset.table`` (JoinOrder and the large-table rules).
        pricing: on-demand price and frequency.
        maximum_bytes_billed: the cap the job runs with; None when it runs without one.
        check_job: whether job-level rules apply (the text is a job's query, not a model).
        large_table_rows: a table with at least this many rows is "large" (exact COUNT
            DISTINCT rule; row counts from statistics).
        wide_table_columns: a table with at least this many columns is "wide".
        params: values of ``@params`` known for the statement (partition pruning).
        now: the instant CURRENT_DATE()/CURRENT_TIMESTAMP() stand for.
        rewrites: build the suggested rewrites (off for a quick pass that only lists
            findings; rules whose ``bytes_after`` needs the rewritten AST still build it).
    """

    source: Source
    catalog: Catalog = field(default_factory=load_catalog)
    estimator: BytesEstimator | None = None
    row_counts: Mapping[str, int] = field(default_factory=dict)
    pricing: Pricing = field(default_factory=Pricing)
    maximum_bytes_billed: int | None = None
    check_job: bool = False
    large_table_rows: int = 1_000_000
    wide_table_columns: int = 12
    params: Mapping[str, Any] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    rewrites: bool = True
    # (kind, id(node)) -> (node, value): per-review memo of what several rules ask for (the
    # node is held so its id stays unique while the entry lives).
    memo: dict[tuple[str, int], tuple[object, object]] = field(
        default_factory=dict, compare=False, repr=False
    )

    def statement_index(self, node: exp.Expression) -> int:
        root = node.root()
        for index, statement in enumerate(self.source.statements):
            if statement is root:
                return index
        return 0

    def finding(
        self,
        rule: str,
        severity: Severity,
        node: exp.Expression,
        message: str,
        *,
        line: int | None = None,
        bytes_before: int | None = None,
        bytes_after: int | None = None,
        rewrite: Rewrite | None = None,
    ) -> Finding:
        """A finding at ``node`` (or at ``line``), priced from the two byte figures."""
        position = self.source.position(node)
        saved = (
            bytes_before - bytes_after
            if bytes_before is not None and bytes_after is not None
            else None
        )
        return Finding(
            rule=rule,
            severity=severity,
            line=line if line is not None else position.line,
            column=position.column if line is None or line == position.line else 1,
            message=message,
            statement=self.statement_index(node),
            bytes_before=bytes_before,
            bytes_after=bytes_after,
            usd_before=self.pricing.usd(bytes_before),
            usd_after=self.pricing.usd(bytes_after),
            usd_per_day=self.pricing.usd_per_day(saved),
            rewrite=rewrite,
        )

    def estimate(self, statement: exp.Expression) -> int | None:
        """Bytes billed by ``statement`` (None without an estimator or when it fails)."""
        if self.estimator is None:
            return None
        key = ("estimate", id(statement))
        cached = self.memo.get(key)
        if cached is not None and cached[0] is statement:
            return cast("int | None", cached[1])
        value = self.estimator(statement)
        self.memo[key] = (statement, value)
        return value
