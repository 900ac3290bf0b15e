"""The exactly-once effect under crashes: kill -9 the loader (a real process) twice mid-run.

100,000 events with 2 % duplicates and 1 % invalid are published; the loader runs as
``python -m edp_tools.load run`` and is SIGKILLed twice while it loads (each run once it has
loaded 15,000 rows of its own), then restarted to drain. Unacked messages come back after the
ack deadline, rows written but not acked are recognised by the restart's dedup warm-up. At the
end raw holds every valid event_id exactly once, every invalid one is in the error table with a
reason, nothing is missing.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from concurrent import futures
from pathlib import Path
from typing import Any

import duckdb
import pytest

from edp.bus.clients import build_publisher, build_subscriber
from edp.load.samples import make_traffic

ACK_DEADLINE_S = 10  # the minimum: redelivery after a kill comes back this fast
LOADED = re.compile(r"loaded (\d+) rows so far")
KILL_AFTER_ROWS = 15_000


def _start(log: Path, env: dict[str, str], subscription: str, idle_s: float | None) -> Any:
    argv = [sys.executable, "-m", "edp_tools.load", "run", "--subscription", subscription,
            "--no-ensure-topology", "--workers", "2"]  # fmt: skip
    if idle_s is not None:
        argv += ["--exit-when-idle", str(idle_s)]
    handle = log.open("ab")
    return subprocess.Popen(argv, env=env, stdout=handle, stderr=subprocess.STDOUT)


def _wait_loaded(log: Path, at_least: int, proc: Any, timeout: float = 120, skip: int = 0) -> int:
    """This run's loaded-row count once it reaches ``at_least`` (``skip``: earlier runs' lines)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = [int(n) for n in LOADED.findall(log.read_text(errors="replace"))][skip:]
        if counts and counts[-1] >= at_least:
            return counts[-1]
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.05)
    raise AssertionError(f"loader did not reach {at_least} rows: {log.read_text()[-3000:]}")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_kill_9_twice_loses_nothing_and_duplicates_nothing(
    pubsub_emulator: Any, warehouse: Any, tmp_path: Path
) -> None:
    traffic = make_traffic(
        100_000, duplicate_rate=0.02, invalid_rate=0.01, events_per_message=(1, 10), seed=2026
    )
    publisher = build_publisher(emulator_host=pubsub_emulator.host)
    subscriber = build_subscriber(emulator_host=pubsub_emulator.host)
    name = f"fault-{uuid.uuid4().hex[:8]}"
    topic = f"projects/{pubsub_emulator.project}/topics/{name}"
    subscription = f"projects/{pubsub_emulator.project}/subscriptions/{name}"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(
        name=subscription, topic=topic, ack_deadline_seconds=ACK_DEADLINE_S
    )
    futures.wait([publisher.publish(topic, m) for m in traffic.messages])
    warehouse.close()  # the loader processes own the DuckDB file from here on

    env = {**os.environ}
    log = tmp_path / "loader.log"
    kills = []
    for _ in range(2):
        # The progress counter is per run, and a run loads tens of thousands of rows a second,
        # so each kill waits for this run's own count: one absolute mark for the second run may
        # need more rows than the first run's kill left to it.
        offset = len(LOADED.findall(log.read_text())) if log.exists() else 0
        proc = _start(log, env, name, idle_s=None)
        kills.append(_wait_loaded(log, KILL_AFTER_ROWS, proc, skip=offset))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
    # Drain: wait longer than the ack deadline so every unacked message has come back.
    final = _start(log, env, name, idle_s=ACK_DEADLINE_S + 3)
    assert final.wait(300) == 0, log.read_text()[-3000:]

    summary = json.loads(log.read_text().strip().splitlines()[-1])
    con = duckdb.connect(os.environ["EDP_DUCKDB_PATH"], read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT event_id FROM raw.user_events").fetchall()]
        errors = con.execute(
            "SELECT error_id, error_type, reason, payload FROM raw.user_events_errors"
        ).fetchall()
    finally:
        con.close()

    assert min(kills) >= KILL_AFTER_ROWS
    assert summary["rows_loaded"] > 0  # the second kill, too, left work behind
    # Progress lines are rate-limited, but the last one comes once batches stop: the final count.
    assert int(LOADED.findall(log.read_text())[-1]) == summary["rows_loaded"]
    assert len(ids) == len(set(ids)), f"{len(ids) - len(set(ids))} event_ids twice in raw"
    assert set(ids) == traffic.valid_ids, "valid events missing from raw"
    assert all(reason and error_type for _, error_type, reason, _ in errors)
    payload_text = "\n".join(payload for *_, payload in errors)
    missing = [i for i in traffic.invalid_ids if i not in payload_text]
    assert not missing, f"{len(missing)} invalid events not in the error table"
    assert len({error_id for error_id, *_ in errors}) == len(errors)
    assert summary["rows_loaded"] < len(traffic.valid_ids)  # the last run only finished the job


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigterm_to_the_process_group_flushes_acks_and_leaves_no_process(
    pubsub_emulator: Any, warehouse: Any, tmp_path: Path
) -> None:
    # What `edp dev` does on Ctrl-C: SIGTERM to the loader's whole process group (the writer,
    # the forkserver, the workers). The writer must hand over, write, ack and exit 0; nothing of
    # the group may survive.
    traffic = make_traffic(20_000, events_per_message=(1, 5), seed=7)
    publisher = build_publisher(emulator_host=pubsub_emulator.host)
    subscriber = build_subscriber(emulator_host=pubsub_emulator.host)
    name = f"term-{uuid.uuid4().hex[:8]}"
    topic = f"projects/{pubsub_emulator.project}/topics/{name}"
    subscriber_path = f"projects/{pubsub_emulator.project}/subscriptions/{name}"
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscriber_path, topic=topic, ack_deadline_seconds=60)
    futures.wait([publisher.publish(topic, m) for m in traffic.messages])
    warehouse.close()

    log = tmp_path / "loader.log"
    argv = [sys.executable, "-m", "edp_tools.load", "run", "--subscription", name,
            "--no-ensure-topology"]  # fmt: skip
    with log.open("ab") as handle:
        proc = subprocess.Popen(
            argv, env=dict(os.environ), stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    _wait_loaded(log, 1, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    assert proc.wait(60) == 0, log.read_text()[-3000:]
    first = json.loads(log.read_text().strip().splitlines()[-1])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break  # the group is empty: no worker or forkserver left behind
        time.sleep(0.2)
    else:
        raise AssertionError("processes of the loader's group survived its SIGTERM")

    # Everything acked was written; the rest is still on the subscription. Drain it.
    drain = subprocess.run([*argv, "--exit-when-idle", "2"], env=dict(os.environ), check=False,
                           capture_output=True, text=True, timeout=240)  # fmt: skip
    assert drain.returncode == 0, drain.stderr[-3000:]
    second = json.loads(drain.stdout.strip().splitlines()[-1])
    con = duckdb.connect(os.environ["EDP_DUCKDB_PATH"], read_only=True)
    try:
        ids = [r[0] for r in con.execute("SELECT event_id FROM raw.user_events").fetchall()]
    finally:
        con.close()
    assert first["rows_loaded"] > 0
    assert first["rows_loaded"] + second["rows_loaded"] == len(traffic.valid_ids)
    assert sorted(ids) == sorted(traffic.valid_ids)
