"""``quality.*``: the data-quality agent scored on simulated history, and one run's wall time.

- ``quality.backtest.*``: :func:`edp_tools.quality.backtest.backtest` with its defaults (28
  warm-up days, 28 clean days with weekly seasonality, then every incident kind at a subtle, the
  default and a large magnitude, plus declared promotions). precision / recall / median time to
  detect on the default magnitudes, false alerts per week on the clean days; the same for the
  14-day moving-average rule (``quality.backtest.seed_rule.*``).
- ``quality.run.seconds``: one run of every declared check (results stored) on a DuckDB file
  holding a generated 2.84 M-event day in ``raw.user_events``, run at the day's last hour.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edp_tools.bench import Bar, benchmark
from edp_tools.bench.etl import BENCH_DAY, prepare_day


@benchmark(
    "quality",
    bars=[
        Bar("quality.backtest.precision", ">=", 0.95),
        Bar("quality.backtest.recall", ">=", 0.90),
        Bar("quality.backtest.false_alerts_per_week", "<=", 0.5, unit="alerts/week"),
        Bar("quality.backtest.mttd_minutes", "<=", 60, unit="min"),
        Bar("quality.run.seconds", "<", 10, unit="s"),
    ],
    units={
        "quality.backtest.seed_rule.false_alerts_per_week": "alerts/week",
        "quality.backtest.seed_rule.mttd_minutes": "min",
        "quality.run.events": "events",
        "quality.backtest.seconds": "s",
    },
)
def bench_quality() -> dict[str, float]:
    """Quality agent: backtest precision/recall/MTTD/false alerts, and one run's wall time."""
    from edp_tools.quality.backtest import backtest

    started = time.perf_counter()
    figures = dict(backtest().figures())
    figures["quality.backtest.seconds"] = round(time.perf_counter() - started, 1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "warehouse.duckdb"
        events = prepare_day(path)
        figures["quality.run.events"] = float(events)
        figures["quality.run.seconds"] = _timed_run(path)
    return figures


def _timed_run(path: Path) -> float:
    from edp.quality.runner import run_checks
    from edp.settings import get_settings
    from edp.warehouse import get_warehouse

    warehouse = get_warehouse(get_settings())  # prepare_day pointed the settings at ``path``
    try:
        now = datetime(BENCH_DAY.year, BENCH_DAY.month, BENCH_DAY.day, tzinfo=UTC)
        now += timedelta(hours=23)
        started = time.perf_counter()
        run_checks(warehouse, now)
        return round(time.perf_counter() - started, 3)
    finally:
        warehouse.close()
