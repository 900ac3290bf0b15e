"""Primary-key updates, unchanged TOASTed values (REPLICA IDENTITY DEFAULT), truncates and
transaction metadata: what the reader emits (as Debezium 3.0.7 does) and what staging ends with.

Sources (github.com/debezium/debezium at v3.0.7.Final):

- PK update = delete of the old key + create of the new key, with headers
  ``__debezium.newkey`` on the delete and ``__debezium.oldkey`` on the create:
  debezium-core/.../relational/RelationalChangeRecordEmitter.java:33-34, 121-128, 171-187.
  Debezium Server's Pub/Sub sink copies headers into attributes
  (debezium-server-pubsub/.../PubSubChangeConsumer.java:314, BaseChangeConsumer.convertHeaders),
  as strings from the JSON header converter with schemas enabled (ConverterBuilder.java:167-188;
  the ``debezium.format.key.*`` settings do not reach it).
- Unchanged TOASTed column without an old value: ``__debezium_unavailable_value``
  (RelationalDatabaseConnectorConfig.java:70 DEFAULT_UNAVAILABLE_VALUE_PLACEHOLDER;
  PostgresValueConverter.convertString; PostgresChangeRecordEmitter.java:180-190 fills it from
  the old tuple when one is present, i.e. with REPLICA IDENTITY FULL).
- Transaction ids: ``<txId>:<LSN of the record>`` for BEGIN, each event and END
  (PostgresTransactionMonitor.adjustTxId; TransactionMetadataIT.java:138, 156);
  ``source.sequence`` = ``["<LSN of the last COMMIT>", "<event LSN>"]`` (SourceInfo.java:177-192,
  PostgresStreamingChangeEventSource.commitMessage).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edp.bus.messages import Message, Received, publish_all
from edp.settings import Settings
from edp.warehouse.port import Warehouse
from edp_tools.cdc.shop import connect

from .conftest import ShopDb, reader_config
from .pipeline import compare_all, running_reader, wait_caught_up
from .test_flush import ORDER, SHIPMENT, _capture, _flush_all, _insert

UNAVAILABLE = "__debezium_unavailable_value"
ITEM = {"on_hand": 3, "unit_cost": "1.2500", "updated_at": "2026-11-26T00:00:00Z"}
BIG = "1Z999AA1" * 2500  # 20 KB: stored out of line (TOAST) with STORAGE EXTERNAL


def _events(messages: list[Received]) -> list[dict[str, Any]]:
    return [json.loads(m.data)["payload"] for m in messages]


def _republish(settings: Settings, table: str, messages: list[Received]) -> None:
    topic = f"{settings.cdc_topic_prefix}.{table}"
    publish_all(topic, [Message(m.data, dict(m.attributes)) for m in messages], settings=settings)


def test_pk_update_toast_and_truncate_as_debezium_and_staging_equals_source(
    shop_db: ShopDb, cdc_settings: Settings, warehouse: Warehouse, tmp_path: Path
) -> None:
    conn = connect(shop_db.dsn)
    with conn.cursor() as cur:
        cur.execute("ALTER TABLE shop.shipments REPLICA IDENTITY DEFAULT")
        cur.execute("ALTER TABLE shop.shipments ALTER COLUMN tracking_number SET STORAGE EXTERNAL")
        for i in (1, 2):
            _insert(cur, "orders", {**ORDER, "order_id": i})
        _insert(cur, "shipments", {**SHIPMENT, "shipment_id": 1, "tracking_number": BIG})
        _insert(cur, "inventory", {**ITEM, "warehouse_id": "W1", "product_id": "P-1"})
    conn.commit()
    with running_reader(reader_config(shop_db, cdc_settings, tmp_path), cdc_settings):
        with conn.cursor() as cur:
            cur.execute("UPDATE shop.orders SET order_id = 10, status = 'paid' WHERE order_id = 1")
        conn.commit()
        with conn.cursor() as cur:
            # tracking_number unchanged and TOASTed; REPLICA IDENTITY DEFAULT: no old tuple.
            cur.execute("UPDATE shop.shipments SET status = 'in_transit' WHERE shipment_id = 1")
            cur.execute("UPDATE shop.shipments SET status = 'delivered' WHERE shipment_id = 1")
        conn.commit()
        with conn.cursor() as cur:
            cur.execute("TRUNCATE shop.inventory")
            _insert(cur, "inventory", {**ITEM, "warehouse_id": "W2", "product_id": "P-2"})
        conn.commit()
        wait_caught_up(shop_db.dsn, shop_db.slot)
    conn.close()

    orders = _capture(cdc_settings, "shop.orders")
    shipments = _capture(cdc_settings, "shop.shipments")
    inventory = _capture(cdc_settings, "shop.inventory")

    # --- the primary-key update: d(old key) + c(new key), each naming the other key --------
    streamed = [m for m in orders if json.loads(m.data)["payload"]["op"] != "r"]
    assert [e["op"] for e in _events(streamed)] == ["d", "c"]
    delete, create = streamed
    assert delete.ordering_key == '{"order_id":1}'
    assert create.ordering_key == '{"order_id":10}'
    key_schema = {
        "type": "struct",
        "fields": [{"type": "int64", "optional": False, "field": "order_id"}],
        "optional": False,
        "name": f"{cdc_settings.cdc_topic_prefix}.shop.orders.Key",
    }
    assert json.loads(delete.attributes["__debezium.newkey"]) == {
        "schema": key_schema,
        "payload": {"order_id": 10},
    }
    assert json.loads(create.attributes["__debezium.oldkey"]) == {
        "schema": key_schema,
        "payload": {"order_id": 1},
    }
    d_event, c_event = _events(streamed)
    assert d_event["before"]["order_id"] == 1 and d_event["after"] is None
    assert c_event["before"] is None and c_event["after"]["status"] == "paid"
    # One source change: both records carry its LSN, and positions 1 and 2 in the transaction.
    assert d_event["source"]["lsn"] == c_event["source"]["lsn"]
    assert [d_event["transaction"]["total_order"], c_event["transaction"]["total_order"]] == [1, 2]
    lsn = d_event["source"]["lsn"]
    assert d_event["transaction"]["id"] == f"{d_event['source']['txId']}:{lsn}"
    last_commit, event_lsn = json.loads(d_event["source"]["sequence"])
    assert event_lsn == str(lsn)
    assert last_commit is None or int(last_commit) < lsn

    # --- TOAST: the unchanged, unreadable value is Debezium's placeholder ----------------------
    updates = [e for e in _events(shipments) if e["op"] == "u"]
    assert [e["after"]["status"] for e in updates] == ["in_transit", "delivered"]
    assert {e["after"]["tracking_number"] for e in updates} == {UNAVAILABLE}
    assert all(e["before"] is None for e in updates)  # DEFAULT identity, key unchanged

    # --- truncate: one key-less event --------------------------------------------------------
    ops = [e["op"] for e in _events(inventory)]
    assert ops == ["r", "t", "c"]
    truncate = next(m for m in inventory if json.loads(m.data)["payload"]["op"] == "t")
    assert truncate.ordering_key == "default"  # debezium.sink.pubsub.null.key

    # The flush and staging, from the same messages: staging equals the source (the ghost of
    # order 1 is gone, the shipment keeps its 20 KB tracking number, inventory holds P-2 only).
    for table, messages in (
        ("shop.orders", orders),
        ("shop.shipments", shipments),
        ("shop.inventory", inventory),
    ):
        _republish(cdc_settings, table, messages)
    flusher = _flush_all(warehouse, cdc_settings)
    assert flusher.stats.dead_lettered == 0
    assert compare_all(shop_db.dsn, warehouse) == {
        "orders": [],
        "order_items": [],
        "inventory": [],
        "shipments": [],
    }
    (row,) = warehouse.query("SELECT tracking_number, status FROM staging.shipments").rows
    assert (row["tracking_number"], row["status"]) == (BIG, "delivered")


def test_sequence_keeps_the_last_commit_lsn_across_a_restart(
    shop_db: ShopDb, cdc_settings: Settings, tmp_path: Path
) -> None:
    """Debezium keeps the last commit's LSN in its offsets, so the first event after a restart
    still names it in ``source.sequence`` (SourceInfo.sequence; PostgresOffsetContext
    LAST_COMMIT_LSN_KEY)."""
    config = reader_config(shop_db, cdc_settings, tmp_path, heartbeat_interval_s=60)
    conn = connect(shop_db.dsn)
    with running_reader(config, cdc_settings):
        with conn.cursor() as cur:
            _insert(cur, "orders", {**ORDER, "order_id": 1})
        conn.commit()
        wait_caught_up(shop_db.dsn, shop_db.slot)
    (first,) = _events(_capture(cdc_settings, "shop.orders"))
    with running_reader(config, cdc_settings):
        with conn.cursor() as cur:
            _insert(cur, "orders", {**ORDER, "order_id": 2})
        conn.commit()
        wait_caught_up(shop_db.dsn, shop_db.slot)
    conn.close()
    (second,) = _events(_capture(cdc_settings, "shop.orders"))
    last_commit, lsn = json.loads(second["source"]["sequence"])
    assert last_commit is not None, "the restarted reader forgot the last commit LSN"
    # The commit's end LSN is where the next WAL record starts: the next change may sit right there.
    assert first["source"]["lsn"] < int(last_commit) <= int(lsn)
