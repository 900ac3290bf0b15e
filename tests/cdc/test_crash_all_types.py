"""kill -9 of the reader and the flusher (3x each) while the shop simulator's traffic runs, mixed
with inserts, updates, primary-key updates and deletes of a table holding every PostgreSQL type:
staging ends equal to the source, for the shop tables and for the all-types table.

The all-types table is declared the way a user would (two YAMLs, see test_declared_table); the
flusher processes load that catalogue (a test harness patch of ``load_catalog``, since the
packaged one is built from the repository's schemas).
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from edp.bus.clients import get_subscriber, subscription_path
from edp.cdc.staging import refresh_staging
from edp.cdc.topology import ensure_cdc_topology
from edp.settings import get_settings
from edp_tools.cdc.shop import connect
from edp_tools.cdc.shop_simulator import ShopSimulator
from edp_tools.local.processes import wait_until
from edp_tools.local.pubsub_emulator import PubSubEmulator
from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

from .conftest import ShopDb
from .pipeline import source_rows, staging_rows, wait_caught_up
from .test_crash import _kill9, _spawn
from .test_declared_table import COLUMNS, EXCLUDED, EXPECTED, _declare
from .type_cases import SETUP_SQL

pytestmark = pytest.mark.slow
ACK_DEADLINE_S = 10
SHOP = ("orders", "order_items", "inventory", "shipments")
# A flusher process on the declared catalogue (what `edp schemas build` would have packaged).
FLUSHER = (
    "import sys, pathlib, edp.contracts.catalog as c\n"
    "cat = c.catalog_from_json(pathlib.Path(sys.argv[1]).read_text())\n"
    "c.load_catalog = lambda: cat\n"
    "sys.argv = ['edp-cdc', *sys.argv[2:]]\n"
    "from edp_tools.cli.cdc import app\n"
    "app()\n"
)


def _all_types_workload(dsn: str, stop: threading.Event, errors: list[BaseException]) -> None:
    """Inserts (every type), text updates, primary-key updates and deletes, ~50 tps."""
    names = ", ".join(["id"] + [c[0] for c in COLUMNS])
    values = ", ".join(c[2] for c in COLUMNS)
    rng = random.Random(17)
    live: list[int] = []
    next_id = 1000
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute("SET search_path = shop, public")
        while not stop.is_set():
            with conn.cursor() as cur:
                action = rng.random()
                if action < 0.5 or len(live) < 5:
                    cur.execute(f"INSERT INTO all_types ({names}) VALUES ({next_id}, {values})")
                    live.append(next_id)
                    next_id += 1
                elif action < 0.75:
                    key = rng.choice(live)
                    cur.execute(
                        "UPDATE all_types SET t = %s WHERE id = %s", (f"v{rng.random()}", key)
                    )
                elif action < 0.9:
                    key = rng.choice(live)
                    cur.execute("UPDATE all_types SET id = %s WHERE id = %s", (next_id, key))
                    live[live.index(key)] = next_id
                    next_id += 1
                else:
                    key = live.pop(rng.randrange(len(live)))
                    cur.execute("DELETE FROM all_types WHERE id = %s", (key,))
            conn.commit()
            time.sleep(0.02)
    except BaseException as exc:
        errors.append(exc)
    finally:
        conn.close()


def test_kill9_with_every_type_in_the_traffic(
    shop_db: ShopDb,
    pubsub_emulator: PubSubEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = _declare(tmp_path / "build")
    catalog_file = tmp_path / "catalog.json"
    catalog_file.write_text(catalog.model_dump_json(), encoding="utf-8")
    suffix = uuid.uuid4().hex[:8]
    tables = ",".join([f"shop.{t}" for t in SHOP] + ["shop.all_types"])
    cdc_env = {
        "EDP_CDC_TOPIC_PREFIX": f"cdc{suffix}",
        "EDP_CDC_SUBSCRIPTION_PREFIX": f"cdc-flush{suffix}",
        "EDP_CDC_DEAD_LETTER_TOPIC": f"cdc-dead-letter{suffix}",
        "EDP_TOPIC_EVENTS_DEAD_LETTER": f"events-dead-letter{suffix}",
        "EDP_CDC_TABLES": tables,
    }
    for key, value in cdc_env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    ensure_cdc_topology(settings)
    subscriber = get_subscriber(settings)
    for table in settings.cdc_tables:
        subscriber.update_subscription(
            request={
                "subscription": {
                    "name": subscription_path(
                        settings.project, f"{settings.cdc_subscription_prefix}.{table}"
                    ),
                    "ack_deadline_seconds": ACK_DEADLINE_S,
                    "retry_policy": {
                        "minimum_backoff": {"seconds": 0},
                        "maximum_backoff": {"seconds": 1},
                    },
                },
                "update_mask": {"paths": ["ack_deadline_seconds", "retry_policy"]},
            }
        )
    duckdb_path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouse(duckdb_path, catalog=catalog, settings=settings)
    warehouse.create_tables()
    warehouse.close()
    env = {
        **os.environ,
        **cdc_env,
        "EDP_CDC_SOURCE_DSN": shop_db.dsn,
        "EDP_CDC_SLOT_NAME": shop_db.slot,
        "EDP_STATE_DIR": str(tmp_path / "state"),
        "EDP_WAREHOUSE": "duckdb",
        "EDP_DUCKDB_PATH": str(duckdb_path),
        "EDP_CDC_HEARTBEAT_INTERVAL_SEC": "0.5",
        "CDC_FLUSH_INTERVAL_SEC": "0.5",
        "EDP_METRICS_EXPORTER": "none",
    }

    conn = connect(shop_db.dsn)
    with conn.cursor() as cur:
        cur.execute(SETUP_SQL)
        cur.execute(
            "CREATE TABLE shop.all_types (id integer PRIMARY KEY, "
            + ", ".join(f"{c[0]} {c[1]}" for c in COLUMNS)
            + ")"
        )
        cur.execute("ALTER PUBLICATION edp_cdc ADD TABLE shop.all_types")
    conn.commit()
    conn.close()
    sim = ShopSimulator(shop_db.dsn, seed=9)
    sim.seed_inventory()
    sim.run(100)

    reader_cmd = ["-m", "edp_tools.cdc.reader"]
    flusher_cmd = [
        "-c",
        FLUSHER,
        str(catalog_file),
        "flush",
        "--forever",
        "--refresh-every-s",
        "3600",
    ]
    logs = tmp_path / "logs"
    logs.mkdir()
    reader = _spawn(reader_cmd, env, logs / "reader.log")
    flusher = _spawn(flusher_cmd, env, logs / "flusher.log")
    stop = threading.Event()
    errors: list[BaseException] = []

    def shop_traffic() -> None:
        try:
            while not stop.is_set():
                sim.run(20, tps=100)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=shop_traffic, daemon=True),
        threading.Thread(target=_all_types_workload, args=(shop_db.dsn, stop, errors), daemon=True),
    ]
    offsets = tmp_path / "state" / "cdc" / f"offsets-{shop_db.slot}.json"
    wait_until(lambda: offsets.exists() and '"snapshot_completed": true' in offsets.read_text(),
               timeout=60, what="the first snapshot")  # fmt: skip
    for thread in threads:
        thread.start()
    rng = random.Random(3)
    for i in range(6):
        time.sleep(rng.uniform(0.5, 1.5))
        if i % 2 == 0:
            _kill9(reader)
            reader = _spawn(reader_cmd, env, logs / "reader.log")
        else:
            _kill9(flusher)
            flusher = _spawn(flusher_cmd, env, logs / "flusher.log")
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    sim.close()
    assert not errors, errors

    try:
        wait_caught_up(shop_db.dsn, shop_db.slot, timeout=120)
    finally:
        _kill9(flusher)
    drain = subprocess.run(
        [sys.executable, "-c", FLUSHER, str(catalog_file), "flush",
         "--until-idle-s", str(ACK_DEADLINE_S + 3), "--max-run-s", "180"],
        env=env, capture_output=True, text=True, timeout=240, check=False,
    )  # fmt: skip
    reader.send_signal(signal.SIGTERM)
    reader.wait(timeout=60)
    assert drain.returncode == 0, drain.stderr[-2000:]

    warehouse = DuckDBWarehouse(duckdb_path, catalog=catalog, settings=settings)
    try:
        refresh_staging(warehouse, [*SHOP, "all_types"], catalog=catalog)
        for table in SHOP:
            assert staging_rows(warehouse, table) == source_rows(shop_db.dsn, table), table
        ops = warehouse.query("SELECT DISTINCT op FROM raw.cdc_all_types").rows
        assert {r["op"] for r in ops} >= {"c", "u", "d"}  # creates, updates, deletes all seen
        rows = warehouse.query("SELECT * FROM staging.all_types").rows
    finally:
        warehouse.close()
    conn = connect(shop_db.dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT id, t FROM shop.all_types")
        source = dict(cur.fetchall())
    conn.close()
    assert {r["id"]: r["t"] for r in rows} == source
    for row in rows:
        for column, (_, _, expected) in EXPECTED.items():
            if column in EXCLUDED or column == "t":
                continue
            value: Any = row[column]
            if isinstance(expected, float) and math.isnan(expected):
                assert math.isnan(value), column
            else:
                assert value == expected, f"{row['id']}.{column}: {value!r} != {expected!r}"
