"""cdc_flush end to end: real PostgreSQL -> local reader -> Pub/Sub emulator -> DuckDB."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from functions_framework import create_app

import edp.cdc.flush as flush_module
from edp.bus.clients import get_subscriber, subscription_path
from edp.bus.messages import Message, ack, publish_all, pull
from edp.cdc.flush import CdcFlusher
from edp.errors import TransientError
from edp.settings import Settings
from edp.warehouse import get_warehouse
from edp.warehouse.port import Warehouse
from edp_tools.cdc.shop import connect
from edp_tools.cdc.shop_simulator import ShopSimulator
from edp_tools.local.processes import wait_until

from .conftest import ShopDb, reader_config
from .pipeline import compare_all, running_reader, wait_caught_up

ROOT = Path(__file__).resolve().parents[2]
KST = dt.timezone(dt.timedelta(hours=9))

# Table-driven decoding cases: (case id, table, row). Every row goes through pgoutput text,
# Debezium's encodings, Pub/Sub, the flusher's decoding and DuckDB, and must come back equal.
ORDER = {
    "order_uuid": "eb75b0f5-7ec7-489f-9a22-f80dff1acaa2",
    "user_id": 7,
    "status": "pending",
    "currency": "KRW",
    "subtotal": Decimal("100.00"),
    "discount": Decimal("0.00"),
    "shipping_fee": Decimal("0.00"),
    "total_amount": Decimal("100.00"),
    "payment_method": None,
    "paid_at": None,
    "note": None,
    "created_at": dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.UTC),
    "updated_at": dt.datetime(2026, 11, 26, 0, 0, tzinfo=dt.UTC),
}
SHIPMENT = {
    "order_id": 1,
    "carrier": "CJ대한통운",
    "tracking_number": None,
    "status": "label_created",
    "is_express": False,
    "weight_kg": None,
    "estimated_delivery": None,
    "label_printed_local": None,
    "shipped_at": None,
    "delivered_at": None,
    "updated_at": dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
}
INVENTORY = {
    "on_hand": 0,
    "reserved": 0,
    "unit_cost": Decimal("0.0000"),
    "weight_kg": None,
    "is_active": True,
    "last_counted_on": None,
    "updated_at": dt.datetime(2026, 11, 26, tzinfo=dt.UTC),
}
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("one cent", "orders", {**ORDER, "order_id": 1, "total_amount": Decimal("0.01")}),
    (
        "largest numeric(12,2)",
        "orders",
        {
            **ORDER,
            "order_id": 2,
            "subtotal": Decimal("9999999999.99"),
            "total_amount": Decimal("9999999999.99"),
        },
    ),
    ("negative money", "orders", {**ORDER, "order_id": 3, "discount": Decimal("-12.34")}),
    (
        "sub-cent sums",
        "orders",
        {
            **ORDER,
            "order_id": 4,
            "subtotal": Decimal("0.10"),
            "shipping_fee": Decimal("0.20"),
            "total_amount": Decimal("0.30"),
        },
    ),
    (
        "timestamptz micros, other zone",
        "orders",
        {
            **ORDER,
            "order_id": 5,
            "paid_at": dt.datetime(2026, 11, 27, 8, 36, 10, 123456, tzinfo=KST),
        },
    ),
    (
        "timestamptz one microsecond",
        "orders",
        {
            **ORDER,
            "order_id": 6,
            "created_at": dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=dt.UTC),
        },
    ),
    (
        "unicode note",
        "orders",
        {**ORDER, "order_id": 7, "note": '문 앞에 놓아주세요 📦 — ünïcödé "quoted" \\ back\nline'},
    ),
    ("empty string", "orders", {**ORDER, "order_id": 8, "note": "", "payment_method": ""}),
    ("all nullable NULL", "orders", {**ORDER, "order_id": 9}),
    (
        "smallint key + numeric(14,2)",
        "order_items",
        {
            "order_id": 1,
            "line_no": 32767,
            "product_id": "P-1",
            "product_name": "무선 이어폰 Pro",
            "quantity": 2147483647,
            "unit_price": Decimal("0.01"),
            "line_total": Decimal("999999999999.99"),
        },
    ),
    (
        "numeric(12,4) and double",
        "inventory",
        {
            **INVENTORY,
            "warehouse_id": "ICN-1",
            "product_id": "P-1",
            "unit_cost": Decimal("0.0001"),
            "weight_kg": 0.1,
            "on_hand": -5,
        },
    ),
    (
        "date and boolean false",
        "inventory",
        {
            **INVENTORY,
            "warehouse_id": "ICN-1",
            "product_id": "P-2",
            "is_active": False,
            "last_counted_on": dt.date(1969, 12, 31),
        },
    ),
    (
        "timestamp without zone micros",
        "shipments",
        {
            **SHIPMENT,
            "shipment_id": 1,
            "label_printed_local": dt.datetime(2026, 11, 27, 8, 36, 10, 999999),
            "estimated_delivery": dt.date(2026, 12, 1),
            "weight_kg": Decimal("12.345"),
            "is_express": True,
            "tracking_number": "000123",
        },
    ),
    (
        "timestamp before epoch",
        "shipments",
        {
            **SHIPMENT,
            "shipment_id": 2,
            "label_printed_local": dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
        },
    ),
]


def _insert(cur: Any, table: str, row: dict[str, Any]) -> None:
    cols = list(row)
    cur.execute(
        f"INSERT INTO shop.{table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))})",
        [row[c] for c in cols],
    )


def fast(settings: Settings) -> Settings:
    """The same settings with a short flush interval (tests wait for rows, not for timers)."""
    return settings.model_copy(update={"cdc_flush_interval_sec": 0.3})


def fast_redelivery(settings: Settings, table: str) -> None:
    """Redeliveries of a nacked message back off by the subscription's retry policy (10 s and
    more, as in production): make it short so tests do not wait minutes."""
    get_subscriber(settings).update_subscription(
        request={
            "subscription": {
                "name": subscription_path(
                    settings.project, f"{settings.cdc_subscription_prefix}.{table}"
                ),
                "retry_policy": {
                    "minimum_backoff": {"seconds": 0},
                    "maximum_backoff": {"seconds": 1},
                },
            },
            "update_mask": {"paths": ["retry_policy"]},
        }
    )


def _flush_all(warehouse: Warehouse, settings: Settings) -> CdcFlusher:
    flusher = CdcFlusher(warehouse, fast(settings))
    flusher.run(until_idle_s=1.0, max_run_s=120)
    return flusher


def _insert_cases(dsn: str) -> None:
    conn = connect(dsn)
    for _, table, row in CASES:
        with conn.cursor() as cur:
            _insert(cur, table, row)
        conn.commit()
    conn.close()


@pytest.mark.parametrize("path", ["snapshot", "streaming"])
def test_every_column_type_round_trips_exactly(
    path: str, shop_db: ShopDb, cdc_settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    """Both ways a row reaches Pub/Sub: the initial snapshot (op r) and the WAL stream (op c)."""
    if path == "snapshot":
        _insert_cases(shop_db.dsn)
    with running_reader(reader_config(shop_db, cdc_settings, tmp_path), cdc_settings):
        if path == "streaming":
            _insert_cases(shop_db.dsn)
        wait_caught_up(shop_db.dsn, shop_db.slot)
    flusher = _flush_all(warehouse, cdc_settings)
    assert flusher.stats.dead_lettered == 0
    problems = compare_all(shop_db.dsn, warehouse)
    assert problems == {t: [] for t in problems}
    # And raw keeps the Python values exactly (not just equal after a round of rounding).
    for case, table, row in CASES:
        keys = {
            "orders": ["order_id"],
            "order_items": ["order_id", "line_no"],
            "inventory": ["warehouse_id", "product_id"],
            "shipments": ["shipment_id"],
        }[table]
        where = " AND ".join(f"{k} = @{k}" for k in keys)
        got = warehouse.query(
            f"SELECT * FROM raw.cdc_{table} WHERE {where}", {k: row[k] for k in keys}
        ).rows
        assert len(got) == 1, case
        for column, written in row.items():
            value = got[0][column]
            expected = written
            if isinstance(written, dt.datetime) and written.tzinfo is not None:
                expected = written.astimezone(dt.UTC)
            assert value == expected, f"{case}: {column} {value!r} != {expected!r}"
            if isinstance(expected, Decimal):
                assert str(value) == str(expected), f"{case}: {column} scale"
        assert got[0]["op"] == ("r" if path == "snapshot" else "c")
        assert got[0]["snapshot"] is (path == "snapshot")


def test_deletes_updates_and_truncate_reach_staging(
    shop_db: ShopDb, cdc_settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    conn = connect(shop_db.dsn)
    with conn.cursor() as cur:
        for i in range(1, 6):
            _insert(cur, "orders", {**ORDER, "order_id": i})
        _insert(
            cur,
            "order_items",
            {
                "order_id": 1,
                "line_no": 1,
                "product_id": "P",
                "product_name": "x",
                "quantity": 1,
                "unit_price": 1,
                "line_total": 1,
            },
        )
    conn.commit()
    with running_reader(reader_config(shop_db, cdc_settings, tmp_path), cdc_settings):
        with conn.cursor() as cur:  # snapshot rows (op r) first, then changes
            cur.execute(
                "UPDATE shop.orders SET status = 'paid', paid_at = now() WHERE order_id = 1"
            )
            cur.execute("DELETE FROM shop.orders WHERE order_id = 2")
            cur.execute("TRUNCATE shop.order_items")
            _insert(
                cur,
                "order_items",
                {
                    "order_id": 3,
                    "line_no": 1,
                    "product_id": "P",
                    "product_name": "y",
                    "quantity": 2,
                    "unit_price": 1,
                    "line_total": 2,
                },
            )
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("DELETE FROM shop.orders WHERE order_id = 3")
            _insert(cur, "orders", {**ORDER, "order_id": 3, "status": "paid"})  # re-created
        conn.commit()
        wait_caught_up(shop_db.dsn, shop_db.slot)
    conn.close()
    _flush_all(warehouse, cdc_settings)
    ops = warehouse.query(
        "SELECT op, COUNT(*) AS n FROM raw.cdc_orders GROUP BY op ORDER BY op"
    ).rows
    assert {r["op"]: r["n"] for r in ops} == {"c": 1, "d": 2, "r": 5, "u": 1}
    assert compare_all(shop_db.dsn, warehouse) == {
        "orders": [],
        "order_items": [],
        "inventory": [],
        "shipments": [],
    }
    items = warehouse.query("SELECT order_id FROM staging.order_items").rows
    assert items == [{"order_id": 3}]


def _capture(settings: Settings, table: str) -> list[Any]:
    sub = f"{settings.cdc_subscription_prefix}.{table}"
    out = []
    while True:
        got = pull(sub, settings=settings)
        if not got:
            return out
        ack(sub, got, settings=settings)
        out.extend(got)


def test_shuffled_and_replayed_delivery_still_equals_source(
    shop_db: ShopDb, cdc_settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    """Capture the change stream, then deliver it shuffled with every message 1-3 times."""
    sim = ShopSimulator(shop_db.dsn, seed=3)
    sim.seed_inventory()
    sim.run(100)
    with running_reader(reader_config(shop_db, cdc_settings, tmp_path), cdc_settings):
        sim.run(400)
        with sim.conn.cursor() as cur:  # a truncate in the middle of the stream
            cur.execute("TRUNCATE shop.shipments")
        sim.conn.commit()
        sim.shipments.clear()
        sim.run(200)
        wait_caught_up(shop_db.dsn, shop_db.slot)
    sim.close()
    rng = random.Random(11)
    for table in cdc_settings.cdc_tables:
        captured = _capture(cdc_settings, table)
        assert captured, table
        replay = [m for m in captured for _ in range(rng.randint(1, 3))]
        rng.shuffle(replay)
        topic = f"{cdc_settings.cdc_topic_prefix}.{table}"
        # No ordering key on replay: the emulator delivers in whatever order it likes.
        for start in range(0, len(replay), 500):
            publish_all(
                topic, [Message(m.data) for m in replay[start : start + 500]], settings=cdc_settings
            )
    flusher = _flush_all(warehouse, cdc_settings)
    assert flusher.stats.dead_lettered == 0
    assert flusher.stats.max_buffered <= cdc_settings.cdc_batch_size
    dupes = warehouse.query(
        "SELECT COUNT(*) - COUNT(DISTINCT change_id) AS d FROM raw.cdc_orders"
    ).scalar()
    assert dupes >= 0
    assert compare_all(shop_db.dsn, warehouse) == {
        "orders": [],
        "order_items": [],
        "inventory": [],
        "shipments": [],
    }


def test_poison_message_is_dead_lettered_with_its_error(
    cdc_settings: Settings, warehouse: Warehouse
) -> None:
    topic = f"{cdc_settings.cdc_topic_prefix}.shop.orders"
    good = json.loads((ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_text())
    publish_all(
        topic, [Message(b"{not json"), Message(json.dumps(good).encode())], settings=cdc_settings
    )
    fast_redelivery(cdc_settings, "shop.orders")
    flusher = CdcFlusher(warehouse, fast(cdc_settings))
    flusher.run(until_idle_s=5.0, max_run_s=240)
    assert flusher.stats.dead_lettered == 1
    assert flusher.stats.rows_written == 1
    # Retried (nacked) until the last allowed delivery attempt, then parked with the reason.
    assert flusher.stats.nacked == cdc_settings.max_delivery_attempts - 1
    parked = pull(f"{cdc_settings.cdc_dead_letter_topic}-archive", settings=cdc_settings)
    assert len(parked) == 1
    assert parked[0].data == b"{not json"
    assert parked[0].attributes["error_type"] == "DecodeError"
    assert "not a Debezium envelope" in parked[0].attributes["error"]
    assert parked[0].attributes["delivery_attempt"] == str(cdc_settings.max_delivery_attempts)


class _FailingOnceWarehouse:
    """The real DuckDB warehouse behind a BigQuery-like transient failure on the first insert."""

    def __init__(self, inner: Warehouse) -> None:
        self.inner = inner
        self.failures = 1
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def insert_rows(self, table: str, rows: Any, row_ids: Any = None) -> int:
        if self.failures:
            self.failures -= 1
            raise TransientError("503 backend error")
        return self.inner.insert_rows(table, rows, row_ids=row_ids)


def test_transient_write_failure_nacks_and_the_rows_land_later(
    cdc_settings: Settings, warehouse: Warehouse
) -> None:
    topic = f"{cdc_settings.cdc_topic_prefix}.shop.orders"
    good = (ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_bytes()
    fast_redelivery(cdc_settings, "shop.orders")
    publish_all(topic, [Message(good)], settings=cdc_settings)
    flaky = _FailingOnceWarehouse(warehouse)
    flusher = CdcFlusher(flaky, fast(cdc_settings))  # type: ignore[arg-type]
    flusher.run(until_idle_s=3.0, max_run_s=240)
    assert flusher.stats.write_failures == 1
    assert flusher.stats.nacked == 1
    assert flusher.stats.rows_written == 1
    assert warehouse.query("SELECT COUNT(*) FROM raw.cdc_orders").scalar() == 1


def test_a_warehouse_that_cannot_be_opened_nacks_the_batch_and_the_loop_goes_on(
    cdc_settings: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Locally the DuckDB file may be held by another writer (etl, the quality agent) when a
    # flush opens it: the flusher waits for it (OPEN_WAIT_S, shortened here), and past the wait
    # the batch must come back, not be lost with a dead flush loop.
    monkeypatch.setattr(flush_module, "OPEN_WAIT_S", 0.3)
    topic = f"{cdc_settings.cdc_topic_prefix}.shop.orders"
    good = (ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_bytes()
    fast_redelivery(cdc_settings, "shop.orders")
    publish_all(topic, [Message(good)], settings=cdc_settings)
    opened: list[int] = []

    class _Borrowed:  # the test's warehouse, handed out by the factory but closed by us
        def __getattr__(self, name: str) -> Any:
            return getattr(warehouse, name)

        def close(self) -> None:
            """Left open: the ``warehouse`` fixture closes it after the test."""

    held_until: list[float] = []  # held 0.6 s from the first open: longer than the wait

    def factory() -> Warehouse:
        opened.append(1)
        if not held_until:
            held_until.append(time.monotonic() + 0.6)
        if time.monotonic() < held_until[0]:
            raise TransientError("cannot open DuckDB: Could not set lock on file")
        return _Borrowed()  # type: ignore[return-value]

    flusher = CdcFlusher(factory, fast(cdc_settings))
    flusher.run(until_idle_s=3.0, max_run_s=240)
    assert flusher.stats.write_failures == 1
    assert flusher.stats.nacked == 1
    assert flusher.stats.rows_written == 1
    assert warehouse.query("SELECT COUNT(*) FROM raw.cdc_orders").scalar() == 1


def test_memory_is_bounded_by_the_batch_size(
    cdc_settings: Settings, warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    topic = f"{cdc_settings.cdc_topic_prefix}.shop.orders"
    template = json.loads((ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_text())
    messages = []
    for i in range(1, 1201):
        event = json.loads(json.dumps(template))
        event["payload"]["after"]["order_id"] = i
        event["payload"]["source"]["lsn"] = 1000 + i
        messages.append(Message(json.dumps(event).encode()))
    publish_all(topic, messages, settings=cdc_settings)
    settings = cdc_settings.model_copy(update={"cdc_batch_size": 50})
    flusher = CdcFlusher(warehouse, settings)
    stats = flusher.run(until_idle_s=1.0, max_run_s=120)
    assert stats.rows_written == 1200
    assert stats.max_buffered <= 50
    assert stats.flushes >= 1200 // 50


def test_cdc_flush_entry_point(cdc_settings: Settings, warehouse: Warehouse) -> None:
    topic = f"{cdc_settings.cdc_topic_prefix}.shop.orders"
    good = (ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_bytes()
    publish_all(topic, [Message(good)], settings=cdc_settings)
    warehouse.close()  # the function opens the DuckDB file itself, per flush
    client = create_app(
        target="cdc_flush", source=str(ROOT / "functions" / "main.py")
    ).test_client()
    response = client.post("/", json={"max_run_s": 2})
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["rows_written"] == 1
    assert body["staging"] == {"staging.orders": 1}
    bad = client.post("/", json={"max_run_s": -1})
    assert bad.status_code == 400


def test_sigterm_flushes_the_buffer_before_exiting(cdc_settings: Settings, tmp_path: Path) -> None:
    """Graceful shutdown (SIGTERM, as Cloud Run / Kubernetes send it) writes what is buffered
    instead of waiting for the flush interval."""
    env = {
        **os.environ,
        "EDP_WAREHOUSE": "duckdb",
        "EDP_DUCKDB_PATH": str(tmp_path / "w.duckdb"),
        "CDC_FLUSH_INTERVAL_SEC": "600",  # only the shutdown can flush
        "EDP_METRICS_EXPORTER": "none",
    }
    settings = Settings(_env_file=None, warehouse="duckdb", duckdb_path=tmp_path / "w.duckdb")  # type: ignore[call-arg]
    warehouse = get_warehouse(settings)
    warehouse.create_tables()
    warehouse.close()
    topic = f"{cdc_settings.cdc_topic_prefix}.shop.orders"
    good = (ROOT / "tests" / "cdc" / "data" / "orders_create.json").read_bytes()
    log = tmp_path / "flusher.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edp_tools.cli.cdc",
                "flush",
                "--forever",
                "--log-level",
                "DEBUG",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        publish_all(topic, [Message(good)], settings=cdc_settings)
        wait_until(
            lambda: "batch started" in log.read_text() or proc.poll() is not None,
            timeout=60,
            what="the flusher to buffer the change",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    warehouse = get_warehouse(settings)
    try:
        assert warehouse.query("SELECT COUNT(*) FROM raw.cdc_orders").scalar() == 1
    finally:
        warehouse.close()
