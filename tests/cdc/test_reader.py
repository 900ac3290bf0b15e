"""The local CDC reader against a real PostgreSQL 15 and the Pub/Sub emulator."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import jsonschema

from edp.bus.messages import Received, ack, pull
from edp.settings import Settings
from edp_tools.cdc.reader import CdcReader
from edp_tools.cdc.shop import connect
from edp_tools.local.postgres import PostgresCluster
from edp_tools.local.processes import wait_until

from .conftest import ShopDb, reader_config

ROOT = Path(__file__).resolve().parents[2]
ENVELOPE_SCHEMA = json.loads(
    (ROOT / "schemas" / "cdc" / "debezium_envelope.schema.json").read_text(encoding="utf-8")
)


def drain(
    settings: Settings, table: str, *, expect: int = 0, quiet_rounds: int = 3
) -> list[Received]:
    """Pull (and ack) a table's flush subscription until ``expect`` messages came and then
    nothing more for a few rounds (or 30 s passed)."""
    sub = f"{settings.cdc_subscription_prefix}.{table}"
    out: list[Received] = []
    quiet = 0
    deadline = time.monotonic() + 30
    while (quiet < quiet_rounds or len(out) < expect) and time.monotonic() < deadline:
        got = pull(sub, settings=settings)
        if got:
            ack(sub, got, settings=settings)
            out.extend(got)
            quiet = 0
        else:
            quiet += 1
            time.sleep(0.05)
    return out


def start_reader(reader: CdcReader, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=reader.run, kwargs={"max_seconds": seconds}, daemon=True)
    thread.start()
    return thread


def insert_order(cur: Any, order_id: int, *, total: str = "10.00", note: str | None = None) -> None:
    cur.execute(
        "INSERT INTO shop.orders (order_id, order_uuid, user_id, status, currency, subtotal, "
        "total_amount, note, created_at, updated_at) VALUES (%s, gen_random_uuid(), 1, "
        "'pending', 'KRW', %s, %s, %s, now(), now())",
        (order_id, total, total, note),
    )


def test_snapshot_then_streaming_in_debezium_format(
    shop_db: ShopDb, cdc_settings: Settings, tmp_path: Path
) -> None:
    conn = connect(shop_db.dsn)
    with conn.cursor() as cur:
        for i in range(1, 4):
            insert_order(cur, i)
        cur.execute(
            "INSERT INTO shop.order_items VALUES (1, 1, 'P-1', '무선 이어폰', 2, 1.50, 3.00), "
            "(1, 2, 'P-2', 'Mouse', 1, 9.99, 9.99)"
        )
    conn.commit()

    reader = CdcReader(reader_config(shop_db, cdc_settings, tmp_path), cdc_settings)
    thread = start_reader(reader, 60)
    orders = drain(cdc_settings, "shop.orders", expect=3)
    items = drain(cdc_settings, "shop.order_items", expect=2)
    snapshot = [json.loads(m.data) for m in orders + items]
    assert len(snapshot) == 5
    markers = [e["payload"]["source"]["snapshot"] for e in snapshot]
    # Tables are snapshotted in name order: order_items, then orders.
    by_lsn = sorted(snapshot, key=lambda e: e["payload"]["source"]["table"] != "order_items")
    assert sorted(markers) == sorted(
        ["first", "last_in_data_collection", "first_in_data_collection", "true", "last"]
    )
    assert {e["payload"]["op"] for e in by_lsn} == {"r"}
    assert len({e["payload"]["source"]["lsn"] for e in snapshot}) == 1

    with conn.cursor() as cur:
        cur.execute("UPDATE shop.orders SET status = 'paid', note = '🙂' WHERE order_id = 2")
        cur.execute("DELETE FROM shop.orders WHERE order_id = 3")
    conn.commit()
    with conn.cursor() as cur:
        cur.execute("TRUNCATE shop.order_items")
    conn.commit()
    streamed = drain(cdc_settings, "shop.orders", expect=2) + drain(
        cdc_settings, "shop.order_items", expect=1
    )
    events = [json.loads(m.data) for m in streamed]
    assert [e["payload"]["op"] for e in events] == ["u", "d", "t"]
    for message, event in zip(orders + items + streamed, snapshot + events, strict=True):
        jsonschema.validate(event, ENVELOPE_SCHEMA)
        payload = event["payload"]
        image = payload["after"] or payload["before"]
        if payload["op"] == "t":
            assert message.ordering_key == "default"
        elif payload["source"]["table"] == "orders":
            assert message.ordering_key == json.dumps({"order_id": image["order_id"]}).replace(
                " ", ""
            )
        else:
            assert message.ordering_key == json.dumps(
                {"order_id": image["order_id"], "line_no": image["line_no"]}
            ).replace(" ", "")
    update, delete, truncate = (e["payload"] for e in events)
    assert update["before"]["status"] == "pending"  # REPLICA IDENTITY FULL: full before-image
    assert update["after"]["status"] == "paid" and update["after"]["note"] == "🙂"
    assert update["transaction"]["total_order"] == 1
    assert delete["transaction"]["total_order"] == 2
    assert update["source"]["txId"] == delete["source"]["txId"]
    assert update["source"]["lsn"] < delete["source"]["lsn"] < truncate["source"]["lsn"]
    assert delete["before"]["order_id"] == 3 and delete["after"] is None
    assert truncate["source"]["table"] == "order_items"
    topic_schema = events[0]["schema"]
    assert topic_schema["name"] == f"{cdc_settings.cdc_topic_prefix}.shop.orders.Envelope"
    # The slot is acknowledged past the last transaction once Pub/Sub confirmed it.
    wait_until(
        lambda: confirmed_lsn(conn, shop_db.slot) > truncate["source"]["lsn"],
        timeout=20,
        what="the slot to be acknowledged past the truncate",
    )
    reader.stop()
    thread.join()
    conn.close()


def confirmed_lsn(conn: Any, slot: str) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT confirmed_flush_lsn - '0/0'::pg_lsn FROM pg_replication_slots "
            "WHERE slot_name = %s",
            (slot,),
        )
        row = cur.fetchone()
    conn.commit()
    return -1 if row is None or row[0] is None else int(row[0])


def test_idle_slot_does_not_pin_wal(
    shop_db: ShopDb, cdc_settings: Settings, tmp_path: Path, postgres: PostgresCluster
) -> None:
    """Heavy WAL in *another database* of the instance (nothing for the slot to decode, as on a
    shared Cloud SQL instance): the idle slot's confirmed LSN still follows the WAL end."""
    reader = CdcReader(reader_config(shop_db, cdc_settings, tmp_path), cdc_settings)
    thread = start_reader(reader, 30)
    assert reader.streaming.wait(20)
    noise = connect(postgres.dsn)
    noise.autocommit = True
    with noise.cursor() as cur:
        cur.execute("CREATE TABLE IF NOT EXISTS public.cdc_noise (id serial PRIMARY KEY, pad text)")
        cur.execute(
            "INSERT INTO public.cdc_noise (pad) "
            "SELECT repeat('x', 500) FROM generate_series(1, 20000)"
        )
        cur.execute("SELECT pg_current_wal_lsn() - '0/0'::pg_lsn")
        target = int(cur.fetchone()[0])
    noise.close()
    conn = connect(shop_db.dsn)
    conn.autocommit = True

    try:
        wait_until(
            lambda: confirmed_lsn(conn, shop_db.slot) >= target,
            timeout=20,
            what="the idle slot to confirm past the noise WAL",
        )
    finally:
        reader.stop()
        thread.join()
        conn.close()
    # The heartbeat table received Debezium's heartbeat.action.query.
    check = connect(shop_db.dsn)
    with check.cursor() as cur:
        cur.execute("SELECT count(*) FROM shop.debezium_heartbeat")
        assert cur.fetchone()[0] == 1
    check.close()


def _order_lsns(messages: list[Received]) -> list[int]:
    out = []
    for message in messages:
        payload = json.loads(message.data)["payload"]
        if payload["op"] == "c":
            out.append(int(payload["source"]["lsn"]))
    return out


def test_confirm_delay_holds_the_slot_back_so_a_restart_republishes(
    shop_db: ShopDb, cdc_settings: Settings, tmp_path: Path
) -> None:
    """With ``confirm_delay_s`` the slot is confirmed that long after Pub/Sub acknowledged a
    change: a reader stopped within the delay leaves it unconfirmed, and the next reader
    publishes it again (what an emulator restart lost comes back). Without the delay the same
    restart publishes nothing again."""
    resent: dict[float, list[int]] = {}
    for order_id, delay in ((9101, 0.0), (9102, 60.0)):
        config = reader_config(shop_db, cdc_settings, tmp_path, confirm_delay_s=delay)
        reader = CdcReader(config, cdc_settings)
        thread = start_reader(reader, 60)
        assert reader.streaming.wait(30)
        conn = connect(shop_db.dsn)
        conn.autocommit = True
        with conn.cursor() as cur:
            insert_order(cur, order_id)
        conn.close()
        first = _order_lsns(drain(cdc_settings, "shop.orders", expect=1))
        assert len(first) == 1
        reader.stop()
        thread.join(30)
        again = CdcReader(config, cdc_settings)
        thread = start_reader(again, 60)
        assert again.streaming.wait(30)
        resent[delay] = _order_lsns(drain(cdc_settings, "shop.orders", quiet_rounds=20))
        again.stop()
        thread.join(30)
        if delay:
            assert resent[delay] == first, "the held-back change was not published again"
    assert resent[0.0] == []
