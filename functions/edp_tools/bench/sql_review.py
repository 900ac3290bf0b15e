"""``sql_review.*``: the SQL cost reviewer's speed on this repository's models, and the bytes its
fixes save on a seeded set of costly queries over a generated 14-day history.

- ``sql_review.seconds.p50`` (bar < 0.05 s): wall time of one full review (parse, every rule,
  pricing from statistics, rewrites built) per SQL model of the repository
  (``functions/edp/etl/models/**/*.sql``, ``functions/edp/cdc/models/*.sql``): the median over
  models of each model's median of 5 runs after a warm-up; ``.p95`` and ``.max`` beside it, and
  ``sql_review.cpu_seconds.p50`` (process CPU time, which tells a loaded machine from a slow
  reviewer: on a 2-core machine at load 12 the wall p50 was ~8x the CPU p50).
- ``sql_review.savings.*``: the seeded costly queries below are reviewed against statistics of
  a 14-day ``raw.user_events`` history (a generated day at scale 0.02 gives every column's
  bytes per row; 14 daily partitions of 2.84 M rows are built from it). For each query the best
  fix's ``bytes_after`` (the lowest a finding prices) is compared with what the query bills;
  ``bytes_ratio`` is the share of bytes the fixes remove over the whole set.
- ``sql_review.partition_fix.bytes_ratio`` (bar > 0.8): the seed's kind of result — a day
  filter written as ``DATE(event_timestamp) = ...`` (no pruning) rewritten to a range on the
  bare partition column (an exact rewrite).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from pathlib import Path

from edp_tools.bench import Bar, benchmark

HISTORY_DAYS = 14
EVENTS_PER_DAY = 2_840_000
LAST_DAY = dt.date(2026, 12, 6)
NOW = dt.datetime(2026, 12, 6, 12, tzinfo=dt.UTC)
DAY = LAST_DAY.isoformat()
WEEK_AGO = (LAST_DAY - dt.timedelta(days=6)).isoformat()

#: name -> (query, runs per day): the kinds of query that blew the seed's bill.
COSTLY_QUERIES = {
    "day_filter_in_a_function": (
        "SELECT event_type, COUNT(*) AS events FROM raw.user_events "
        f"WHERE DATE(event_timestamp) = '{DAY}' GROUP BY event_type",
        24,
    ),
    "no_partition_filter": (
        "SELECT user_id, event_type, event_timestamp FROM raw.user_events "
        "WHERE event_type = 'purchase'",
        4,
    ),
    "select_star_in_a_cte": (
        "WITH recent AS (SELECT * FROM raw.user_events "
        f"WHERE event_timestamp >= TIMESTAMP '{WEEK_AGO}') "
        "SELECT user_id, COUNT(*) AS events FROM recent GROUP BY user_id",
        12,
    ),
    "exact_distinct_users": (
        "SELECT COUNT(DISTINCT user_id) AS users FROM raw.user_events "
        f"WHERE event_timestamp >= TIMESTAMP '{WEEK_AGO}'",
        24,
    ),
    "limit_on_a_wide_read": (
        f"SELECT * FROM raw.user_events WHERE event_timestamp >= TIMESTAMP '{DAY}' LIMIT 100",
        48,
    ),
}


def _models() -> list[Path]:
    import edp

    root = Path(edp.__file__).parent
    return sorted([*root.glob("etl/models/**/*.sql"), *root.glob("cdc/models/*.sql")])


def _history() -> object:
    from edp.contracts.catalog import load_catalog
    from edp.warehouse.statistics import Statistics
    from edp_tools.generator import Generator, GeneratorConfig
    from edp_tools.sqlreview.stats import scaled_history, table_statistics

    spec = load_catalog().table("raw.user_events")
    day = Generator(GeneratorConfig(start=LAST_DAY, days=1, scale=0.02)).day(0)
    sample = table_statistics(spec, day.table)
    history = scaled_history(
        sample, days=HISTORY_DAYS, rows_per_day=EVENTS_PER_DAY, last_day=LAST_DAY
    )
    return Statistics.of([history])


@benchmark(
    "sql_review",
    bars=[
        Bar("sql_review.seconds.p50", "<", 0.05, unit="s", source="SQL cost review"),
        Bar("sql_review.partition_fix.bytes_ratio", ">", 0.8, source="SQL cost review"),
    ],
    units={
        "sql_review.seconds.p50": "s",
        "sql_review.seconds.p95": "s",
        "sql_review.seconds.max": "s",
        "sql_review.cpu_seconds.p50": "s",
        "sql_review.savings.bytes_before": "bytes",
        "sql_review.savings.bytes_after": "bytes",
        "sql_review.savings.usd_per_day": "USD",
    },
)
def bench_sql_review() -> dict[str, float]:
    """Review speed per repository model; bytes saved on seeded costly queries."""
    from edp.sqlreview.context import Pricing, RuleContext
    from edp.sqlreview.estimators import StatisticsEstimator
    from edp.sqlreview.reviewer import review, script_text
    from edp.sqlreview.source import Source
    from edp.warehouse.statistics import Statistics

    stats = _history()
    assert isinstance(stats, Statistics)
    estimator = StatisticsEstimator(stats, now=NOW)
    row_counts = stats.row_counts()

    per_model: list[float] = []
    per_model_cpu: list[float] = []
    for path in _models():
        text = script_text(
            path.read_text(encoding="utf-8"), checks=path.name.endswith(".checks.sql")
        )

        def once(text: str = text) -> None:
            review(
                RuleContext(
                    source=Source.parse(text),
                    estimator=estimator,
                    row_counts=row_counts,
                    now=NOW,
                )
            )

        once()
        runs, cpu = [], []
        for _ in range(5):
            started, cpu_started = time.perf_counter(), time.process_time()
            once()
            runs.append(time.perf_counter() - started)
            cpu.append(time.process_time() - cpu_started)
        per_model.append(statistics.median(runs))
        per_model_cpu.append(statistics.median(cpu))
    per_model.sort()

    before_total = after_total = 0
    usd_per_day = 0.0
    partition_ratio = 0.0
    for name, (sql, runs_per_day) in COSTLY_QUERIES.items():
        ctx = RuleContext(
            source=Source.parse(sql),
            estimator=estimator,
            row_counts=row_counts,
            pricing=Pricing(runs_per_day=runs_per_day),
            now=NOW,
        )
        found = review(ctx).active
        before = ctx.estimate(ctx.source.statements[0]) or 0
        afters = [f.bytes_after for f in found if f.bytes_after is not None]
        after = min([before, *afters])
        before_total += before
        after_total += after
        usd_per_day += ctx.pricing.usd_per_day(before - after) or 0.0
        if name == "day_filter_in_a_function":
            partition_ratio = 1 - after / before
    return {
        "sql_review.seconds.p50": round(statistics.median(per_model), 4),
        "sql_review.seconds.p95": round(per_model[int(0.95 * (len(per_model) - 1))], 4),
        "sql_review.seconds.max": round(per_model[-1], 4),
        "sql_review.cpu_seconds.p50": round(statistics.median(per_model_cpu), 4),
        "sql_review.models": float(len(per_model)),
        "sql_review.savings.bytes_before": float(before_total),
        "sql_review.savings.bytes_after": float(after_total),
        "sql_review.savings.bytes_ratio": round(1 - after_total / before_total, 4),
        "sql_review.savings.usd_per_day": round(usd_per_day, 2),
        "sql_review.partition_fix.bytes_ratio": round(partition_ratio, 4),
    }
