"""The current-state models on hand-made change logs: order, duplicates, deletes, truncates."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from edp.cdc import staging
from edp.cdc.staging import UNAVAILABLE, refresh_sql, refresh_staging
from edp.warehouse.port import Warehouse

T0 = dt.datetime(2026, 11, 26, tzinfo=dt.UTC)


def change(
    op: str, lsn: int, shipment_id: int | None, status: str = "in_transit", pos: int = 1
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "op": op,
        "lsn": lsn,
        "tx_id": lsn // 10,
        "tx_position": pos,
        "snapshot": op == "r",
        "source_ts": T0 + dt.timedelta(seconds=lsn),
        "change_id": f"{shipment_id}:{lsn}",
        "message_id": str(lsn),
        "ingested_at": T0 + dt.timedelta(seconds=lsn + 1),
        "shipment_id": shipment_id,
    }
    if shipment_id is not None:
        row.update(
            order_id=shipment_id * 10,
            carrier="CJ대한통운",
            status=status,
            is_express=False,
            weight_kg=Decimal("1.250"),
            updated_at=T0,
        )
    return row


# (case, change log, expected {shipment_id: status} in staging)
CASES: list[tuple[str, list[dict[str, Any]], dict[int, str]]] = [
    (
        "latest lsn wins",
        [
            change("c", 10, 1, "label_created"),
            change("u", 20, 1, "in_transit"),
            change("u", 30, 1, "delivered"),
        ],
        {1: "delivered"},
    ),
    (
        "snapshot then update",
        [change("r", 5, 1, "label_created"), change("u", 6, 1, "lost")],
        {1: "lost"},
    ),
    (
        "delete removes",
        [change("c", 10, 1), change("d", 20, 1), change("c", 10, 2)],
        {2: "in_transit"},
    ),
    (
        "delete then re-create",
        [change("c", 10, 1, "in_transit"), change("d", 20, 1), change("c", 30, 1, "returned")],
        {1: "returned"},
    ),
    (
        "position breaks lsn ties",
        [change("u", 40, 1, "in_transit", pos=1), change("u", 40, 1, "delivered", pos=2)],
        {1: "delivered"},
    ),
    (
        "truncate hides older versions",
        [
            change("c", 10, 1),
            change("c", 11, 2),
            change("t", 20, None),
            change("c", 30, 2, "returned"),
        ],
        {2: "returned"},
    ),
    ("only a truncate", [change("c", 10, 1), change("t", 20, None)], {}),
    ("empty log", [], {}),
]


@pytest.mark.parametrize(("case", "log", "expected"), CASES, ids=[c[0] for c in CASES])
def test_current_state(
    case: str, log: list[dict[str, Any]], expected: dict[int, str], warehouse: Warehouse
) -> None:
    # Delivered shuffled and with duplicates: the result must not depend on it.
    delivered = log + log[: len(log) // 2]
    random.Random(case).shuffle(delivered)
    if delivered:
        warehouse.insert_rows("raw.cdc_shipments", delivered)
    refresh_staging(warehouse, ["shipments"])
    rows = warehouse.query("SELECT shipment_id, status, lsn FROM staging.shipments").rows
    assert {r["shipment_id"]: r["status"] for r in rows} == expected
    # Refreshing again gives the same table (idempotent rebuild).
    refresh_staging(warehouse, ["shipments"])
    again = warehouse.query("SELECT shipment_id, status, lsn FROM staging.shipments").rows
    assert sorted(again, key=str) == sorted(rows, key=str)


def test_refresh_is_one_transaction() -> None:
    sql = refresh_sql("orders")
    assert sql.startswith("BEGIN TRANSACTION;")
    assert sql.rstrip().endswith("COMMIT TRANSACTION;")
    assert "DELETE FROM staging.orders WHERE TRUE;" in sql


def _ingested(rows: list[dict[str, Any]], at: dt.datetime) -> list[dict[str, Any]]:
    return [{**r, "ingested_at": at} for r in rows]


@pytest.mark.parametrize(("case", "log", "expected"), CASES, ids=[c[0] for c in CASES])
def test_incremental_merge_equals_the_full_rebuild(
    case: str, log: list[dict[str, Any]], expected: dict[int, str], warehouse: Warehouse
) -> None:
    """The log arrives in two deliveries a day apart; each is MERGEd as it lands."""
    delivered = log + log[: len(log) // 2]
    random.Random(case).shuffle(delivered)
    # Keep each key's order of arrival realistic: the second delivery holds the later changes.
    delivered.sort(key=lambda r: r["lsn"])
    half = len(delivered) // 2
    day1, day2 = T0, T0 + dt.timedelta(days=1)
    if delivered[:half]:
        warehouse.insert_rows("raw.cdc_shipments", _ingested(delivered[:half], day1))
    refresh_staging(warehouse, ["shipments"], full=False)
    if delivered[half:]:
        warehouse.insert_rows("raw.cdc_shipments", _ingested(delivered[half:], day2))
    refresh_staging(warehouse, ["shipments"], full=False)
    rows = warehouse.query("SELECT shipment_id, status FROM staging.shipments").rows
    assert {r["shipment_id"]: r["status"] for r in rows} == expected
    # The full rebuild (the periodic check) finds nothing to correct.
    assert staging.rebuild(warehouse, "shipments") == 0


def toasted(lsn: int, shipment_id: int, status: str) -> dict[str, Any]:
    """An update whose unchanged TOASTed carrier Debezium could not read (REPLICA IDENTITY
    DEFAULT): the column holds Debezium's placeholder."""
    return {**change("u", lsn, shipment_id, status), "carrier": UNAVAILABLE}


@pytest.mark.parametrize("full", [True, False], ids=["rebuild", "merge"])
def test_unchanged_toasted_value_keeps_the_previous_one(full: bool, warehouse: Warehouse) -> None:
    first = {**change("c", 10, 1, "label_created"), "carrier": "한진택배 " * 500}
    warehouse.insert_rows("raw.cdc_shipments", _ingested([first], T0))
    refresh_staging(warehouse, ["shipments"], full=full)
    later = [toasted(20, 1, "in_transit"), toasted(30, 1, "delivered")]
    warehouse.insert_rows("raw.cdc_shipments", _ingested(later, T0 + dt.timedelta(days=1)))
    refresh_staging(warehouse, ["shipments"], full=full)
    (row,) = warehouse.query("SELECT status, carrier, lsn FROM staging.shipments").rows
    assert (row["status"], row["carrier"], row["lsn"]) == ("delivered", first["carrier"], 30)


def test_checkpoint_keeps_a_live_key_beyond_partition_expiry(warehouse: Warehouse) -> None:
    """A key never changed again after day 0: the periodic rebuild re-appends its version, so
    dropping the expired day-0 partition does not lose it."""
    warehouse.insert_rows(
        "raw.cdc_shipments",
        _ingested([change("c", 10, 1, "label_created"), change("c", 11, 2)], T0)
        + _ingested([change("d", 12, 2)], T0),
    )
    day40 = T0 + dt.timedelta(days=40)
    staging.rebuild(warehouse, "shipments", checkpoint_days=30, now=day40)
    copies = warehouse.query(
        "SELECT shipment_id, op, lsn FROM raw.cdc_shipments WHERE change_id LIKE 'checkpoint:%'"
    ).rows
    # Only the live key is copied, with its own lsn; the deleted key needs no copy.
    assert [(r["shipment_id"], r["op"], r["lsn"]) for r in copies] == [(1, "r", 10)]
    # Expire the original partition (ingested on day 0), rebuild: the key is still there.
    warehouse.execute_script("DELETE FROM raw.cdc_shipments WHERE ingested_at = @t0", {"t0": T0})
    staging.rebuild(warehouse, "shipments", checkpoint_days=30, now=day40)
    rows = warehouse.query("SELECT shipment_id, status, lsn FROM staging.shipments").rows
    assert [(r["shipment_id"], r["status"], r["lsn"]) for r in rows] == [(1, "label_created", 10)]
    # A second rebuild the same day copies nothing again (the copy is recent).
    again = warehouse.query(
        "SELECT COUNT(*) AS n FROM raw.cdc_shipments WHERE change_id LIKE 'checkpoint:%'"
    ).scalar()
    assert again == 1


def test_late_change_behind_an_applied_delete_is_reported_as_drift(warehouse: Warehouse) -> None:
    warehouse.insert_rows(
        "raw.cdc_shipments", _ingested([change("c", 10, 1), change("c", 11, 2)], T0)
    )
    refresh_staging(warehouse, ["shipments"], full=False)
    warehouse.insert_rows("raw.cdc_shipments", _ingested([change("d", 30, 1)], T0))
    refresh_staging(warehouse, ["shipments"], full=False)
    day1 = T0 + dt.timedelta(days=1)
    warehouse.insert_rows("raw.cdc_shipments", _ingested([change("u", 40, 2, "lost")], day1))
    refresh_staging(warehouse, ["shipments"], full=False)
    # An update older than the delete, redelivered a day later: the MERGE cannot know the key
    # was deleted (staging keeps no tombstones) and resurrects it ...
    late = _ingested([change("u", 20, 1, "lost")], day1 + dt.timedelta(minutes=1))
    warehouse.insert_rows("raw.cdc_shipments", late)
    refresh_staging(warehouse, ["shipments"], full=False)
    assert warehouse.query("SELECT COUNT(*) AS n FROM staging.shipments").scalar() == 2
    assert staging.rebuild(warehouse, "shipments") == 1  # ... the periodic rebuild fixes it
    assert warehouse.query("SELECT shipment_id FROM staging.shipments").rows == [{"shipment_id": 2}]


@pytest.mark.parametrize("full", [True, False], ids=["rebuild", "merge"])
def test_unchanged_toasted_json_keeps_the_previous_one(full: bool, tmp_path: Path) -> None:
    """A JSON column's placeholder arrives as the JSON string "__debezium_unavailable_value"
    (the flush cannot store a bare non-JSON text in a JSON column); staging resolves it too."""
    from edp.contracts.catalog import Catalog, FieldSpec, load_catalog
    from edp.settings import Settings
    from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

    meta = FieldSpec(name="meta", type="JSON", description="x")
    base = load_catalog()
    tables = tuple(
        t.model_copy(update={"fields": (*t.fields, meta)})
        if t.ref in ("raw.cdc_shipments", "staging.shipments")
        else t
        for t in base.tables
    )
    catalog = Catalog(tables=tables)
    wh = DuckDBWarehouse(tmp_path / "w.duckdb", catalog=catalog, settings=Settings())
    try:
        wh.create_tables()
        first = {**change("c", 10, 1, "label_created"), "meta": '{"gift": true}'}
        wh.insert_rows("raw.cdc_shipments", _ingested([first], T0))
        refresh_staging(wh, ["shipments"], full=full, catalog=catalog)
        later = {**change("u", 20, 1, "delivered"), "meta": f'"{UNAVAILABLE}"'}
        wh.insert_rows("raw.cdc_shipments", _ingested([later], T0 + dt.timedelta(days=1)))
        refresh_staging(wh, ["shipments"], full=full, catalog=catalog)
        (row,) = wh.query("SELECT status, meta FROM staging.shipments").rows
    finally:
        wh.close()
    assert (row["status"], row["meta"]) == ("delivered", {"gift": True})


def test_partition_expiry_leaves_room_for_the_checkpoints() -> None:
    """A live key's newest copy is at most checkpoint_days + one rebuild interval old, so every
    raw.cdc_* partition must outlive that (else expiry could drop a key's only version)."""
    from edp.contracts.catalog import load_catalog
    from edp.settings import Settings

    s = Settings(_env_file=None)  # type: ignore[call-arg]
    oldest_copy_days = s.cdc_checkpoint_days + s.cdc_staging_rebuild_every_min / 1440
    for name, m in staging.cdc_models(load_catalog()).items():
        part = m.raw.partitioning
        assert part is not None and part.field == "ingested_at", name
        assert part.expiration_days is None or part.expiration_days > oldest_copy_days, name
