"""Exact rewrites are run before and after on sample data in DuckDB; only identical ones show.

Sample rows straddle the places a wrong rewrite would differ: the last microsecond of a UTC
day and the first of the next, a NULL user, duplicate IN-subquery values.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from edp.sqlreview.context import RuleContext
from edp.sqlreview.reviewer import review
from edp.sqlreview.rewrites import verify_rewrites
from edp.sqlreview.source import Source
from edp_tools.sqlreview.equivalence import DuckDBVerifier

if TYPE_CHECKING:
    from edp.warehouse.port import Warehouse

UTC = dt.UTC


def _event(n: int, ts: dt.datetime, event_type: str, user: str | None) -> dict[str, object]:
    return {
        "event_id": f"e{n}",
        "event_type": event_type,
        "event_timestamp": ts,
        "received_at": ts,
        "ingested_at": ts,
        "user_id": user,
        "device_type": "mobile",
        "platform": "web",
        "schema_version": "1.0",
    }


@pytest.fixture
def sample(warehouse: Warehouse) -> Warehouse:
    rows = [
        _event(1, dt.datetime(2026, 11, 30, 23, 59, 59, 999999, tzinfo=UTC), "page_view", "u1"),
        _event(2, dt.datetime(2026, 12, 1, 0, 0, tzinfo=UTC), "purchase", "u1"),
        _event(3, dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC), "page_view", None),
        _event(4, dt.datetime(2026, 12, 1, 23, 59, 59, 999999, tzinfo=UTC), "view_item", "u2"),
        _event(5, dt.datetime(2026, 12, 2, 0, 0, tzinfo=UTC), "purchase", "u3"),
        _event(6, dt.datetime(2026, 12, 2, 0, 0, tzinfo=UTC), "purchase", "u3"),
    ]
    warehouse.insert_rows("raw.user_events", rows)
    return warehouse


def _checked(sql: str, warehouse: Warehouse) -> list[tuple[str, bool | None]]:
    source = Source.parse(sql)
    result = verify_rewrites(review(RuleContext(source=source)), source, DuckDBVerifier(warehouse))
    return [(f.rule, f.rewrite.verified if f.rewrite else None) for f in result.findings]


def test_partition_range_rewrite_is_proven(sample: Warehouse) -> None:
    sql = "SELECT event_id, user_id FROM raw.user_events WHERE DATE(event_timestamp) = '2026-12-01'"
    assert ("PartitionFilterDefeated", True) in _checked(sql, sample)


def test_partition_range_rewrite_between_is_proven(sample: Warehouse) -> None:
    sql = (
        "SELECT COUNT(*) AS n FROM raw.user_events "
        "WHERE DATE(event_timestamp) BETWEEN '2026-11-30' AND '2026-12-01'"
    )
    assert ("PartitionFilterDefeated", True) in _checked(sql, sample)


def test_column_pruning_rewrite_is_proven(sample: Warehouse) -> None:
    sql = (
        "WITH e AS (SELECT * FROM raw.user_events WHERE event_timestamp >= '2026-12-01') "
        "SELECT user_id, COUNT(*) AS n FROM e GROUP BY user_id"
    )
    assert ("WideSelectStar", True) in _checked(sql, sample)


def test_semi_join_and_where_order_rewrites_are_proven(sample: Warehouse) -> None:
    sql = (
        "SELECT event_id FROM raw.user_events "
        "WHERE event_timestamp >= '2026-11-01' AND event_type LIKE '%view%' AND platform = 'web' "
        "AND user_id IN (SELECT user_id FROM raw.user_events WHERE event_timestamp >= '2026-11-01')"
    )
    found = _checked(sql, sample)
    assert ("WhereOrder", True) in found
    assert ("SemiJoinWithoutAgg", True) in found


def test_a_wrong_rewrite_is_caught(sample: Warehouse) -> None:
    verifier = DuckDBVerifier(sample)
    before = "SELECT event_id FROM raw.user_events WHERE DATE(event_timestamp) = '2026-12-01'"
    # an off-by-one range (<= instead of <) lets the next day's first event in
    wrong = (
        "SELECT event_id FROM raw.user_events WHERE event_timestamp >= TIMESTAMP('2026-12-01') "
        "AND event_timestamp <= TIMESTAMP('2026-12-02')"
    )
    assert verifier(before, wrong, {}) is False


def test_without_a_verifier_exact_rewrites_are_withheld() -> None:
    source = Source.parse(
        "SELECT event_id FROM raw.user_events WHERE DATE(event_timestamp) = '2026-12-01'"
    )
    result = verify_rewrites(review(RuleContext(source=source)), source, None)
    assert [f.rewrite for f in result.findings] == [None]


def test_approximate_rewrite_is_shown_labelled(sample: Warehouse) -> None:
    source = Source.parse(
        "SELECT COUNT(DISTINCT user_id) AS n FROM raw.user_events "
        "WHERE event_timestamp >= '2026-12-01'"
    )
    ctx = RuleContext(source=source, row_counts={"raw.user_events": 5_000_000})
    result = verify_rewrites(review(ctx), source, DuckDBVerifier(sample))
    (rewrite,) = [f.rewrite for f in result.findings if f.rule == "ExactCountDistinct"]
    assert rewrite is not None and rewrite.exact is False and "0.57 %" in rewrite.note
