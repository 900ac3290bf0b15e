"""One module per check kind. Each has a pure ``evaluate(...)`` (measurement -> result, used as is
by the backtest) and a ``run(ctx, spec)`` that measures with SQL and evaluates.

:data:`KINDS` lists them in the order a run executes them.
"""

from __future__ import annotations

from collections.abc import Callable

from edp.contracts.catalog import TableSpec
from edp.quality.checks import (
    category_mix,
    cdc_lag,
    duplicates,
    freshness,
    nulls,
    references,
    refused_share,
    schema_drift,
    volume,
)
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult

Runner = Callable[[CheckContext, TableSpec], list[CheckResult]]

KINDS: dict[str, Runner] = {
    "freshness": freshness.run,
    "volume": volume.run,
    "null_rate": nulls.run,
    "duplicate_rate": duplicates.run,
    "schema_drift": schema_drift.run,
    "category_mix": category_mix.run,
    "referential_integrity": references.run,
    "cdc_lag": cdc_lag.run,
    "refused_share": refused_share.run,
}
