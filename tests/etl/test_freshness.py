"""The freshness probe on a real DuckDB warehouse: minutes are counted by hand from the rows
written (now - newest ingested_at per raw table; the lookback when a table has nothing)."""

from __future__ import annotations

import datetime as dt

from edp.etl.freshness import probe
from edp.warehouse.port import Warehouse

NOW = dt.datetime(2026, 12, 6, 12, 0, tzinfo=dt.UTC)


def _event(
    event_id: str, ingested_at: dt.datetime, event_timestamp: dt.datetime
) -> dict[str, object]:
    return {
        "event_id": event_id, "event_type": "page_view", "event_timestamp": event_timestamp,
        "received_at": ingested_at, "ingested_at": ingested_at, "device_type": "desktop",
        "platform": "web", "schema_version": "1",
    }  # fmt: skip


def test_minutes_behind_per_table(warehouse: Warehouse) -> None:
    warehouse.insert_rows(
        "raw.user_events",
        [
            _event("a", NOW - dt.timedelta(minutes=45), NOW - dt.timedelta(minutes=46)),
            _event("b", NOW - dt.timedelta(minutes=50), NOW - dt.timedelta(minutes=51)),
            # newer, but its event_timestamp is outside the 1-day partition window: not read
            _event("c", NOW - dt.timedelta(minutes=1), NOW - dt.timedelta(days=3)),
        ],
    )
    warehouse.insert_rows(
        "raw.cdc_orders",
        [{"op": "c", "lsn": 1, "tx_position": 0, "snapshot": False,
          "source_ts": NOW - dt.timedelta(minutes=3), "change_id": "1:0",
          "ingested_at": NOW - dt.timedelta(minutes=2, seconds=30)}],
    )  # fmt: skip
    measured = {f.table: f.minutes for f in probe(warehouse, NOW)}
    assert measured["raw.user_events"] == 45.0
    assert measured["raw.cdc_orders"] == 2.5
    assert measured["raw.cdc_shipments"] == 24 * 60  # nothing yet: the lookback, a lower bound
    assert set(measured) == {
        "raw.user_events", "raw.cdc_orders", "raw.cdc_order_items", "raw.cdc_inventory",
        "raw.cdc_shipments",
    }  # fmt: skip
