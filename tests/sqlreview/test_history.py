"""Query history and materialized-view candidates (hand-built job lists)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edp.errors import WarehouseError
from edp.sqlreview.history import Job, QueryLogFile, most_expensive
from edp.sqlreview.materialized_views import candidates
from edp.warehouse.estimate import MIN_BILLED_BYTES

T = dt.datetime(2026, 12, 5, 9, tzinfo=dt.UTC)
GIB = 2**30


def _jobs(*queries: str, billed: int = GIB) -> list[Job]:
    return [
        Job(job_id=f"j{i}", creation_time=T, query=q, total_bytes_billed=billed)
        for i, q in enumerate(queries)
    ]


def test_repeated_aggregate_with_varying_day_filter_is_one_candidate() -> None:
    # the same dashboard query for three days: one view grouped by day and event_type serves all
    queries = [
        "SELECT event_type, COUNT(*) AS n FROM raw.user_events "
        f"WHERE event_timestamp >= TIMESTAMP '2026-12-0{d}' GROUP BY event_type"
        for d in (1, 2, 3)
    ]
    (view,) = candidates(_jobs(*queries), min_repeats=3)
    assert view.table == "raw.user_events"
    assert view.job_ids == ("j0", "j1", "j2")
    assert view.bytes_before == 3 * GIB
    assert view.bytes_after == 3 * MIN_BILLED_BYTES
    assert "PARTITION BY event_timestamp_date" in view.statement
    assert "GROUP BY DATE(event_timestamp), event_type" in view.statement


def test_filter_columns_become_group_keys() -> None:
    query = (
        "SELECT device_type, SUM(value) AS revenue FROM raw.user_events "
        "WHERE event_type = 'purchase' AND event_timestamp >= @d GROUP BY device_type"
    )
    (view,) = candidates(_jobs(query, query, query), min_repeats=3)
    assert "GROUP BY DATE(event_timestamp), device_type, event_type" in view.statement
    assert "SUM(value) AS revenue" in view.statement


@pytest.mark.parametrize(
    "query",
    [
        "SELECT event_type, COUNT(DISTINCT user_id) FROM raw.user_events GROUP BY event_type",
        "SELECT e.event_type, COUNT(*) FROM raw.user_events e JOIN raw.cdc_orders o ON TRUE "
        "GROUP BY e.event_type",
        "SELECT event_id FROM raw.user_events",
        "SELECT x, COUNT(*) FROM other.table GROUP BY x",
        "not sql at all (",
    ],
)
def test_shapes_that_are_not_candidates(query: str) -> None:
    assert candidates(_jobs(query, query, query), min_repeats=3) == []


def test_fewer_repeats_than_the_threshold() -> None:
    query = "SELECT COUNT(*) AS n FROM mart.orders_daily WHERE report_date = @d"
    assert candidates(_jobs(query, query), min_repeats=3) == []


def test_most_expensive_first_unknown_last() -> None:
    jobs = [
        Job(job_id="a", creation_time=T, query="q", total_bytes_billed=5),
        Job(job_id="b", creation_time=T, query="q", total_bytes_billed=None),
        Job(job_id="c", creation_time=T, query="q", total_bytes_billed=9),
    ]
    assert [j.job_id for j in most_expensive(jobs, 3)] == ["c", "a", "b"]


def test_query_log_keeps_the_day_and_refuses_garbage(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(
        '{"job_id": "1", "creation_time": "2026-12-05T23:59:59+00:00", "query": "SELECT 1"}\n'
        '{"job_id": "2", "creation_time": "2026-12-06T00:00:00+00:00", "query": "SELECT 2"}\n'
    )
    assert [j.job_id for j in QueryLogFile(log).jobs(dt.date(2026, 12, 5))] == ["1"]
    assert QueryLogFile(tmp_path / "missing.jsonl").jobs(dt.date(2026, 12, 5)) == []
    log.write_text("{not json\n")
    with pytest.raises(WarehouseError, match=r"log\.jsonl:1"):
        QueryLogFile(log).jobs(dt.date(2026, 12, 5))
