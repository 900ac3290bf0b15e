"""The scheduled review's core: jobs priced at what they billed, fixes priced by an estimator.

Hand-computed: raw.user_events has 3 daily partitions with 40 MiB of event_id each; the job
``SELECT event_id FROM raw.user_events`` billed 120 MiB and ran twice. Restricted to the last
day (CURRENT_DATE() = 2026-12-03, so yesterday and today: 2 partitions) it would bill 80 MiB:
40 MiB saved per run, 80 MiB per day, $6.25/TiB x 80 MiB = $0.000477 per day.
"""

from __future__ import annotations

import datetime as dt

import pytest

from edp.sqlreview.context import Pricing
from edp.sqlreview.estimators import StatisticsEstimator
from edp.sqlreview.history import Job
from edp.sqlreview.scheduled import daily_review, slack_message
from edp.warehouse.statistics import PartitionStatistics, Statistics, TableStatistics

MIB = 2**20
STATS = Statistics.of(
    [
        TableStatistics(
            ref="raw.user_events",
            partitions=tuple(
                PartitionStatistics(
                    start=dt.datetime(2026, 12, d, tzinfo=dt.UTC),
                    rows=10,
                    column_bytes={"event_id": 40 * MIB},
                )
                for d in (1, 2, 3)
            ),
        )
    ]
)
NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)
T = dt.datetime(2026, 12, 3, 1, tzinfo=dt.UTC)


def test_fix_priced_per_day_from_the_jobs_frequency() -> None:
    query = "SELECT event_id FROM raw.user_events"
    jobs = [
        Job(job_id=f"j{i}", creation_time=T, query=query, total_bytes_billed=120 * MIB)
        for i in range(2)
    ]
    report = daily_review(
        jobs, T.date(), estimator=StatisticsEstimator(STATS, now=NOW), min_repeats=3
    )
    (item,) = report.reviews
    assert item.runs == 2
    (finding,) = item.findings
    assert finding.rule == "MissingPartitionFilter"
    assert (finding.bytes_before, finding.bytes_after) == (120 * MIB, 80 * MIB)
    assert report.saving_bytes_per_day == 80 * MIB
    assert finding.usd_per_day == pytest.approx(80 * MIB / 2**40 * 6.25, abs=1e-6)
    text, blocks = slack_message(report, Pricing())
    assert text.startswith("SQL cost review 2026-12-03: 2 jobs")
    assert len(blocks) == 4  # header, totals, one finding, price context


def test_script_jobs_and_unparsable_queries_are_skipped() -> None:
    jobs = [
        Job(job_id="s", creation_time=T, query="SELECT 1; SELECT 2", total_bytes_billed=MIB),
        Job(job_id="x", creation_time=T, query="SELEC (", total_bytes_billed=MIB),
    ]
    report = daily_review(jobs, T.date())
    assert report.reviews == () and report.jobs_seen == 2
