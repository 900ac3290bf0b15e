"""The local reader emits Debezium 3.0.7's wire value for every documented PostgreSQL type, on both
the snapshot and the streaming path, and leaves out (with a warning) what Debezium leaves out.

Expected values and their sources: :mod:`tests.cdc.type_cases`.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edp.cdc.topology import ensure_cdc_topology
from edp.settings import Settings, get_settings
from edp_tools.cdc.reader import CdcReader
from edp_tools.cdc.shop import connect
from edp_tools.local.pubsub_emulator import PubSubEmulator

from .conftest import ShopDb, reader_config
from .test_reader import drain, start_reader
from .type_cases import CASES, DROPPED, SETUP_SQL, create_table_sql, insert_sql

TABLE = "shop.all_types"


@pytest.fixture
def types_settings(
    pubsub_emulator: PubSubEmulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """Private CDC names, with the all-types table captured."""
    suffix = uuid.uuid4().hex[:8]
    monkeypatch.setenv("EDP_CDC_TOPIC_PREFIX", f"cdc{suffix}")
    monkeypatch.setenv("EDP_CDC_SUBSCRIPTION_PREFIX", f"cdc-flush{suffix}")
    monkeypatch.setenv("EDP_CDC_DEAD_LETTER_TOPIC", f"cdc-dead-letter{suffix}")
    monkeypatch.setenv("EDP_TOPIC_EVENTS_DEAD_LETTER", f"events-dead-letter{suffix}")
    monkeypatch.setenv("EDP_CDC_TABLES", f"shop.orders,{TABLE}")
    get_settings.cache_clear()
    settings = get_settings()
    ensure_cdc_topology(settings)
    yield settings
    get_settings.cache_clear()


def _create_all_types(db: ShopDb) -> None:
    conn = connect(db.dsn)
    with conn.cursor() as cur:
        cur.execute(SETUP_SQL)
        cur.execute(create_table_sql())
        cur.execute(f"ALTER PUBLICATION edp_cdc ADD TABLE {TABLE}")
        cur.execute(insert_sql(1))
    conn.commit()
    conn.close()


def test_every_type_on_the_snapshot_and_the_streaming_path(
    shop_db: ShopDb,
    types_settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _create_all_types(shop_db)
    caplog.set_level(logging.WARNING, logger="edp_tools.cdc.reader")
    reader = CdcReader(reader_config(shop_db, types_settings, tmp_path), types_settings)
    thread = start_reader(reader, 60)
    snapshot = drain(types_settings, TABLE, expect=1)
    assert reader.streaming.wait(30)
    conn = connect(shop_db.dsn)
    with conn.cursor() as cur:
        cur.execute("SET search_path = shop, public")
        cur.execute(insert_sql(2))
    conn.commit()
    conn.close()
    streamed = drain(types_settings, TABLE, expect=1)
    reader.stop()
    thread.join(30)

    events = [json.loads(m.data) for m in snapshot + streamed]
    assert [e["payload"]["op"] for e in events] == ["r", "c"]
    for event in events:
        after: dict[str, Any] = event["payload"]["after"]
        fields = {f["field"]: f for f in event["schema"]["fields"][1]["fields"]}
        path = event["payload"]["op"]
        for column, ddl, _, expected, schema_keys, source in CASES:
            assert column in after, f"{column} ({ddl}) missing on path {path}"
            assert after[column] == expected, f"{column} ({ddl}) on {path}: {source}"
            for key, value in schema_keys.items():
                assert fields[column][key] == value, f"{column} schema {key}: {source}"
        for column, ddl, _ in DROPPED:
            assert column not in after, f"{ddl} is dropped by Debezium"
            assert column not in fields
    warnings = " ".join(r.getMessage() for r in caplog.records)
    for column, _, _ in DROPPED:
        assert f"all_types.{column}" in warnings, f"no warning for the dropped {column}"
    # NaN numerics are nulled with a warning, on each path.
    assert warnings.count("'shop.all_types.d_nan'") >= 2


def test_array_items_and_enum_schemas(
    shop_db: ShopDb, types_settings: Settings, tmp_path: Path
) -> None:
    _create_all_types(shop_db)
    reader = CdcReader(reader_config(shop_db, types_settings, tmp_path), types_settings)
    thread = start_reader(reader, 30)
    (message,) = drain(types_settings, TABLE, expect=1)
    reader.stop()
    thread.join(30)
    fields = {f["field"]: f for f in json.loads(message.data)["schema"]["fields"][1]["fields"]}
    # SchemaBuilder.array(OPTIONAL_INT32_SCHEMA) (PVC:167) and Enum items (PVC:359), in the
    # JsonConverter's key order: type, items, optional, name, version, parameters, field.
    assert fields["int_array"] == {
        "type": "array",
        "items": {"type": "int32", "optional": True},
        "optional": True,
        "field": "int_array",
    }
    assert fields["moods"]["items"] == {
        "type": "string",
        "optional": True,
        "name": "io.debezium.data.Enum",
        "version": 1,
        "parameters": {"allowed": "sad,ok,happy"},
    }
    assert fields["id"] == {"type": "int32", "optional": False, "field": "id"}
