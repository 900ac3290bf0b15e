"""One run of the quality agent: every declared check of every table, results stored, metrics.

A check that cannot run (warehouse error, missing table) gives an ``error`` result for that
check and the run goes on. The run returns the results; incidents and alerts are built from
them by :mod:`edp.quality.agent`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.errors import EdpError
from edp.quality.calendar import PromotionCalendar, load_calendar
from edp.quality.checks import KINDS
from edp.quality.context import CheckContext
from edp.quality.model import STATUS_CODE, CheckResult, as_utc
from edp.quality.store import flagged_slots, write_results
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What one run found."""

    run_id: str
    checked_at: datetime
    results: list[CheckResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def failing(self) -> list[CheckResult]:
        return [r for r in self.results if r.failing]

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.results:
            out[r.status] = out.get(r.status, 0) + 1
        return out


def watched_tables(catalog: Catalog, tables: Iterable[str] | None = None) -> list[TableSpec]:
    """Tables with declared checks (all, or those named; unknown names raise)."""
    if tables:
        return [catalog.table(t) for t in tables if catalog.table(t).checks is not None]
    return [t for t in catalog if t.checks is not None]


def run_checks(
    warehouse: Warehouse,
    now: datetime,
    *,
    catalog: Catalog | None = None,
    calendar: PromotionCalendar | None = None,
    tables: Sequence[str] | None = None,
    volume_method: str | None = None,
    store: bool = True,
    run_id: str | None = None,
) -> RunResult:
    """Run every check of the watched tables as of ``now``; store the results when ``store``."""
    started = time.perf_counter()
    now = as_utc(now)
    catalog = catalog or load_catalog()
    flagged = flagged_slots(warehouse, now)
    ctx = CheckContext(
        warehouse=warehouse,
        now=now,
        catalog=catalog,
        calendar=calendar if calendar is not None else load_calendar(),
        flagged=flagged,
        volume_method=volume_method,
    )
    run = RunResult(run_id=run_id or str(uuid.uuid4()), checked_at=now)
    for spec in watched_tables(catalog, tables):
        for kind, check in KINDS.items():
            try:
                run.results.extend(check(ctx, spec))
            except EdpError as exc:
                log.warning("quality: %s %s failed: %s", spec.ref, kind, exc)
                run.results.append(
                    CheckResult(
                        check_name=f"{spec.ref}.{kind}",
                        check_type=kind,
                        table_ref=spec.ref,
                        status="error",
                        severity="warning",
                        details={"error": str(exc)[:1000]},
                    )
                )
    if store:
        write_results(warehouse, run.run_id, now, run.results)
    record_metrics(run.results)
    run.seconds = time.perf_counter() - started
    return run


def record_metrics(results: Sequence[CheckResult]) -> None:
    """``data_quality_check_status`` (0 ok, 1 warn, 2 fail, 3 error) per table and check,
    ``data_null_rate`` per table and column, ``data_volume_zscore`` and
    ``data_freshness_minutes`` per table."""
    from edp.observability.catalogue import instrument
    from edp.observability.metrics import get_meter

    meter = get_meter("edp.quality")
    # declared once (name, unit, labels, meaning) in edp.observability.catalogue
    status = instrument(meter, "data_quality_check_status")
    null_rate = instrument(meter, "data_null_rate")
    zscore = instrument(meter, "data_volume_zscore")
    freshness = instrument(meter, "data_freshness_minutes")
    for r in results:
        labels = {"table": r.table_ref, "check": r.check_type}
        status.set(STATUS_CODE[r.status], {**labels, "check_name": r.check_name})
        if r.check_type == "null_rate" and r.metric_value is not None:
            null_rate.set(r.metric_value, {"table": r.table_ref, "column": r.column_name or ""})
        elif r.check_type == "volume" and r.score is not None:
            zscore.set(r.score, {"table": r.table_ref})
        elif r.check_type == "freshness" and r.metric_value is not None:
            freshness.set(r.metric_value, {"table": r.table_ref})
