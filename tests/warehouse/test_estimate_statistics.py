"""The offline estimator against hand-computed BigQuery bytes.

Expected values are worked out by hand from BigQuery's documented rules (data-type sizes:
STRING 2 + UTF-8 bytes, INT64/TIMESTAMP 8, NULL 0; on-demand billing: at least 10 MiB per
table referenced and per query, rounded up to the MiB; pruning only on the bare partition
column) and written down before running the code.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from edp.contracts.catalog import load_catalog
from edp.warehouse.dialect import parse_bigquery
from edp.warehouse.estimate import MIN_BILLED_BYTES, billed_bytes, estimate_from_statistics
from edp.warehouse.statistics import PartitionStatistics, Statistics, TableStatistics
from edp_tools.sqlreview.stats import column_bytes, table_statistics

MIB = 2**20
CATALOG = load_catalog()
DAYS = [dt.datetime(2026, 12, d, tzinfo=dt.UTC) for d in (1, 2, 3)]
# raw.user_events, 3 daily partitions; per partition: event_id 40 MiB, event_type 4 MiB,
# user_id 25 MiB + 1 byte.
EVENTS = TableStatistics(
    ref="raw.user_events",
    partitions=tuple(
        PartitionStatistics(
            start=day,
            rows=1000,
            column_bytes={"event_id": 40 * MIB, "event_type": 4 * MIB, "user_id": 25 * MIB + 1},
        )
        for day in DAYS
    ),
)
ORDERS = TableStatistics(
    ref="raw.cdc_orders",
    partitions=(
        PartitionStatistics(start=None, rows=10, column_bytes={"order_id": 80, "user_id": 80}),
    ),
)
STATS = Statistics.of([EVENTS, ORDERS])
NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)


def _billed(sql: str, **params: object) -> int | None:
    (statement,) = parse_bigquery(sql)
    estimate = estimate_from_statistics(statement, CATALOG, STATS, params, NOW)
    return None if estimate is None else estimate.billed


CASES = [
    # one column, all 3 partitions: 3 x 40 MiB
    ("SELECT event_id FROM raw.user_events", {}, 120 * MIB),
    # two columns, 2 partitions (12-02, 12-03): 2 x 44 MiB
    (
        "SELECT event_id, event_type FROM raw.user_events "
        "WHERE event_timestamp >= TIMESTAMP '2026-12-02'",
        {},
        88 * MIB,
    ),
    # a filter inside the day: BigQuery still reads the whole 12-02 partition
    (
        "SELECT event_id FROM raw.user_events "
        "WHERE event_timestamp > '2026-12-02 12:00:00' AND event_timestamp < '2026-12-02 13:00:00'",
        {},
        40 * MIB,
    ),
    # DATE() around the partition column: no pruning, 3 partitions
    (
        "SELECT event_id FROM raw.user_events WHERE DATE(event_timestamp) = '2026-12-02'",
        {},
        120 * MIB,
    ),
    # parameters fold: 12-01 .. 12-02 -> 2 partitions of user_id, 25 MiB + 1 byte each;
    # 50 MiB + 2 bytes rounds up to 51 MiB
    (
        "SELECT user_id FROM raw.user_events WHERE event_timestamp BETWEEN @a AND @b",
        {
            "a": dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
            "b": dt.datetime(2026, 12, 2, tzinfo=dt.UTC),
        },
        51 * MIB,
    ),
    # an unknown parameter prunes nothing: 3 x (25 MiB + 1) -> 76 MiB
    ("SELECT user_id FROM raw.user_events WHERE event_timestamp >= @unknown", {}, 76 * MIB),
    # CURRENT_DATE() is 12-03: yesterday and today -> 2 x 4 MiB = 8 MiB, billed at the 10 MiB
    # per-table minimum
    (
        "SELECT event_type FROM raw.user_events "
        "WHERE event_timestamp >= TIMESTAMP(DATE_SUB(CURRENT_DATE(), INTERVAL 1 DAY))",
        {},
        10 * MIB,
    ),
    # COUNT(*) reads no column: 0 bytes, billed 10 MiB
    ("SELECT COUNT(*) FROM raw.user_events", {}, 10 * MIB),
    # two tables: 120 MiB + the small table's 160 bytes billed as 10 MiB
    (
        "SELECT e.event_id, o.order_id FROM raw.user_events e "
        "JOIN raw.cdc_orders o ON o.user_id = 1",
        {},
        130 * MIB,
    ),
]


@pytest.mark.parametrize(("sql", "params", "expected"), CASES)
def test_billed_bytes_by_hand(sql: str, params: dict[str, object], expected: int) -> None:
    assert _billed(sql, **params) == expected


def test_no_catalogue_table_means_no_estimate() -> None:
    assert _billed("SELECT 1") is None


def test_billing_minimums() -> None:
    assert MIN_BILLED_BYTES == 10_485_760
    assert billed_bytes([1]) == 10 * MIB
    assert billed_bytes([11 * MIB, 1]) == 21 * MIB


def test_column_bytes_follow_the_data_type_sizes() -> None:
    fields = {f.name: f for f in CATALOG.table("raw.user_events").fields}
    # 'abc' 2+3, NULL 0, 'é' 2+2 (two UTF-8 bytes)
    assert column_bytes(pa.array(["abc", None, "é"]), fields["user_id"]) == 9
    # FLOAT64: 8 per non-NULL value
    assert column_bytes(pa.array([1.5, None, 2.0]), fields["value"]) == 16
    # ARRAY<STRUCT>: sum over elements of their fields; one item with item_id 'ab' (4) and
    # price 1.0 (8) and quantity 2 (8); an empty array 0
    items = pa.array(
        [[{"item_id": "ab", "price": 1.0, "quantity": 2}], []],
        pa.list_(
            pa.struct([("item_id", pa.string()), ("price", pa.float64()), ("quantity", pa.int64())])
        ),
    )
    assert column_bytes(items, fields["items"]) == 20


def test_table_statistics_group_rows_by_utc_day() -> None:
    spec = CATALOG.table("raw.user_events")
    ts = pa.array(
        [
            dt.datetime(2026, 12, 1, 23, 59, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 2, 0, 0, tzinfo=dt.UTC),
            dt.datetime(2026, 12, 2, 7, 0, tzinfo=dt.UTC),
        ],
        pa.timestamp("us", tz="UTC"),
    )
    data = pa.table({"event_timestamp": ts, "event_type": ["a", "bb", "ccc"]})
    stats = table_statistics(spec, data)
    assert [p.start for p in stats.partitions] == DAYS[:2]
    assert [p.rows for p in stats.partitions] == [1, 2]
    # event_type: 'a' = 3 on 12-01; 'bb' 4 + 'ccc' 5 = 9 on 12-02; timestamps 8 bytes each
    assert [p.column_bytes["event_type"] for p in stats.partitions] == [3, 9]
    assert [p.column_bytes["event_timestamp"] for p in stats.partitions] == [8, 16]
