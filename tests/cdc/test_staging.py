"""The current-state models on hand-made change logs: order, duplicates, deletes, truncates."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

import pytest

from edp.cdc.staging import refresh_sql, refresh_staging
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
