"""kill -9 the reader and the flusher, several times each, during a mixed workload: afterwards
staging equals the source row for row, and every change made it to raw."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edp.bus.clients import get_subscriber, subscription_path
from edp.settings import Settings
from edp.warehouse import get_warehouse
from edp_tools.cdc.shop_simulator import ShopSimulator
from edp_tools.local.processes import wait_until

from .conftest import ShopDb
from .pipeline import compare_all, wait_caught_up

pytestmark = pytest.mark.slow
ACK_DEADLINE_S = 10


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, *argv], env=env, stdout=out, stderr=subprocess.STDOUT
        )


def _kill9(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_kill9_reader_and_flusher_during_mixed_workload(
    shop_db: ShopDb, cdc_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    duckdb_path = tmp_path / "warehouse.duckdb"
    env = {
        **os.environ,
        "EDP_CDC_SOURCE_DSN": shop_db.dsn,
        "EDP_CDC_SLOT_NAME": shop_db.slot,
        "EDP_STATE_DIR": str(tmp_path / "state"),
        "EDP_WAREHOUSE": "duckdb",
        "EDP_DUCKDB_PATH": str(duckdb_path),
        "EDP_CDC_HEARTBEAT_INTERVAL_SEC": "0.5",
        "CDC_FLUSH_INTERVAL_SEC": "0.5",
        "EDP_METRICS_EXPORTER": "none",
    }
    for key in ("EDP_WAREHOUSE", "EDP_DUCKDB_PATH", "EDP_STATE_DIR"):
        monkeypatch.setenv(key, env[key])
    warehouse = get_warehouse(Settings(_env_file=None))  # type: ignore[call-arg]
    warehouse.create_tables()
    warehouse.close()

    # Messages leased by a killed flusher come back after the ack deadline: use the shortest
    # Pub/Sub allows (and no redelivery backoff) so the final drain does not wait minutes.
    subscriber = get_subscriber(cdc_settings)
    for table in cdc_settings.cdc_tables:
        name = subscription_path(
            cdc_settings.project, f"{cdc_settings.cdc_subscription_prefix}.{table}"
        )
        subscriber.update_subscription(
            request={
                "subscription": {
                    "name": name,
                    "ack_deadline_seconds": ACK_DEADLINE_S,
                    # Redelivery of expired leases without the production backoff.
                    "retry_policy": {
                        "minimum_backoff": {"seconds": 0},
                        "maximum_backoff": {"seconds": 1},
                    },
                },
                "update_mask": {"paths": ["ack_deadline_seconds", "retry_policy"]},
            }
        )

    sim = ShopSimulator(shop_db.dsn, seed=5)
    sim.seed_inventory()
    sim.run(200)  # some history before the first snapshot
    reader_cmd = ["-m", "edp_tools.cdc.reader"]
    flusher_cmd = ["-m", "edp_tools.cli.cdc", "flush", "--forever", "--refresh-every-s", "3600"]
    logs = tmp_path / "logs"
    logs.mkdir()
    reader = _spawn(reader_cmd, env, logs / "reader.log")
    flusher = _spawn(flusher_cmd, env, logs / "flusher.log")

    done = threading.Event()
    stop_workload = threading.Event()

    def workload() -> None:
        try:
            while not stop_workload.is_set():
                sim.run(20, tps=150)  # mixed: orders, payments, shipments, stock, deletes
        finally:
            done.set()

    offsets = tmp_path / "state" / "cdc" / f"offsets-{shop_db.slot}.json"

    def snapshot_done() -> bool:
        return offsets.exists() and bool(json.loads(offsets.read_text())["snapshot_completed"])

    wait_until(snapshot_done, timeout=60, what="the first snapshot")
    first_streamed_order = sim._next_order
    purges_before = sim.stats.actions.get("purge", 0)
    worker = threading.Thread(target=workload, daemon=True)
    worker.start()
    kills = {"reader": 0, "flusher": 0}
    rng = random.Random(7)
    for i in range(6):
        if i % 2 == 0:
            # Kill the reader while it streams (a kill during its snapshot only redoes it).
            wait_until(snapshot_done, timeout=60, what="the reader's snapshot")
            time.sleep(rng.uniform(0.3, 1.2))
            _kill9(reader)
            kills["reader"] += 1
            reader = _spawn(reader_cmd, env, logs / "reader.log")
        else:
            time.sleep(rng.uniform(0.3, 1.2))
            _kill9(flusher)
            kills["flusher"] += 1
            flusher = _spawn(flusher_cmd, env, logs / "flusher.log")
    assert not done.is_set(), "the workload died during the kills"
    time.sleep(0.5)
    stop_workload.set()
    worker.join(timeout=120)
    assert done.is_set()
    sim.close()
    assert kills == {"reader": 3, "flusher": 3}

    # Let the (restarted) reader catch up, then drain with a flusher that exits when idle.
    try:
        wait_caught_up(shop_db.dsn, shop_db.slot, timeout=90)
    finally:
        _kill9(flusher)
    drain = subprocess.run(
        [
            sys.executable,
            "-m",
            "edp_tools.cli.cdc",
            "flush",
            "--until-idle-s",
            str(ACK_DEADLINE_S + 3),
            "--max-run-s",
            "120",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    reader.send_signal(signal.SIGTERM)
    reader.wait(timeout=60)
    assert drain.returncode == 0, drain.stderr[-2000:]

    warehouse = get_warehouse(Settings(_env_file=None))  # type: ignore[call-arg]
    try:
        problems = compare_all(shop_db.dsn, warehouse)
        assert problems == {t: [] for t in problems}, (logs / "reader.log").read_text()[-3000:]
        # No change lost: every order created while streaming has its insert in raw, every
        # purge its delete (even though staging no longer shows those orders).
        created = warehouse.query(
            "SELECT COUNT(DISTINCT order_id) FROM raw.cdc_orders "
            "WHERE op = 'c' AND order_id >= @first",
            {"first": first_streamed_order},
        ).scalar()
        assert created == sim._next_order - first_streamed_order
        deletes = warehouse.query(
            "SELECT COUNT(DISTINCT order_id) FROM raw.cdc_orders WHERE op = 'd'"
        ).scalar()
        assert deletes == sim.stats.actions.get("purge", 0) - purges_before
    finally:
        warehouse.close()
