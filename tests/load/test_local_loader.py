"""The local loader against the real Pub/Sub emulator and a real DuckDB warehouse."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import pytest
from typer.testing import CliRunner

from edp.bus.clients import build_publisher, build_subscriber
from edp.load.samples import Traffic, make_traffic
from edp.warehouse.port import Warehouse
from edp_tools.load.local_loader import CommittedBatch, LoaderConfig, LocalLoader


class Channel:
    """A fresh topic + subscription on the session emulator (tests never share one)."""

    def __init__(self, host: str, project: str) -> None:
        self.publisher = build_publisher(emulator_host=host)
        self.subscriber = build_subscriber(emulator_host=host)
        self.host = host
        name = f"events-{uuid.uuid4().hex[:10]}"
        self.topic = f"projects/{project}/topics/{name}"
        self.subscription = f"projects/{project}/subscriptions/{name}"
        self.name = name
        self.publisher.create_topic(name=self.topic)
        self.subscriber.create_subscription(
            name=self.subscription, topic=self.topic, ack_deadline_seconds=30
        )

    def publish(self, messages: list[bytes]) -> None:
        futures.wait([self.publisher.publish(self.topic, m) for m in messages])

    def backlog_empty(self) -> bool:
        response = self.subscriber.pull(
            request={"subscription": self.subscription, "max_messages": 10,
                     "return_immediately": True}
        )  # fmt: skip
        return not response.received_messages


@pytest.fixture
def channel(pubsub_emulator: Any) -> Iterator[Channel]:
    ch = Channel(pubsub_emulator.host, pubsub_emulator.project)
    yield ch
    ch.subscriber.delete_subscription(subscription=ch.subscription)
    ch.publisher.delete_topic(topic=ch.topic)


def _loader(warehouse: Warehouse, channel: Channel, **kwargs: Any) -> LocalLoader:
    config = LoaderConfig(subscription_path=channel.subscription, emulator_host=channel.host,
                          workers=2, max_batch_delay_s=0.05)  # fmt: skip
    return LocalLoader(warehouse, config, channel.subscriber, **kwargs)


def _drain(loader: LocalLoader) -> None:
    loader.run(threading.Event(), exit_when_idle_s=0.5)


def _raw_ids(warehouse: Warehouse) -> list[str]:
    return [r["event_id"] for r in warehouse.query("SELECT event_id FROM raw.user_events").rows]


def _errors(warehouse: Warehouse) -> list[dict[str, Any]]:
    sql = (
        "SELECT error_id, event_id, error_type, reason, payload, stage FROM raw.user_events_errors"
    )
    return warehouse.query(sql).rows


def _assert_loaded_exactly(warehouse: Warehouse, traffic: Traffic) -> None:
    ids = _raw_ids(warehouse)
    assert len(ids) == len(set(ids)), "a valid event_id is in raw more than once"
    assert set(ids) == traffic.valid_ids
    errors = _errors(warehouse)
    assert all(e["reason"] and e["error_type"] and e["payload"] for e in errors)
    for invalid in traffic.invalid_ids:
        assert any(invalid in e["payload"] for e in errors), f"{invalid} not in the error table"


def test_loads_valid_events_once_dead_letters_the_rest_and_acks(
    warehouse: Warehouse, channel: Channel
) -> None:
    traffic = make_traffic(
        600, duplicate_rate=0.05, invalid_rate=0.05, events_per_message=(1, 7), seed=11
    )
    channel.publish(traffic.messages)
    loader = _loader(warehouse, channel)

    _drain(loader)

    _assert_loaded_exactly(warehouse, traffic)
    assert loader.stats.rows_loaded == len(traffic.valid_ids)
    assert loader.stats.duplicates == traffic.duplicate_lines
    assert loader.stats.dead_letters == len(traffic.invalid_ids)
    assert loader.stats.messages == len(traffic.messages)
    assert channel.backlog_empty()  # everything was acked


def test_rows_carry_message_id_publish_time_and_load_time(
    warehouse: Warehouse, channel: Channel
) -> None:
    channel.publish(make_traffic(5, seed=2).messages)
    _drain(_loader(warehouse, channel))
    rows = warehouse.query(
        "SELECT pubsub_message_id, pubsub_publish_time, loaded_at, ingested_at FROM raw.user_events"
    ).rows
    assert len(rows) == 5
    for row in rows:
        assert row["pubsub_message_id"]
        assert row["ingested_at"] <= row["loaded_at"]
        assert row["pubsub_publish_time"] <= row["loaded_at"]


def test_a_restarted_loader_drops_events_already_in_raw(
    warehouse: Warehouse, channel: Channel
) -> None:
    traffic = make_traffic(300, events_per_message=(1, 5), seed=12)
    channel.publish(traffic.messages)
    _drain(_loader(warehouse, channel))
    assert sorted(_raw_ids(warehouse)) == sorted(traffic.valid_ids)

    # A new process (empty memory) sees the same events again - a redelivery after a lost ack,
    # or a client retry: the warm-up from raw recognises every one of them.
    channel.publish(traffic.messages)
    again = _loader(warehouse, channel)
    _drain(again)

    assert again.stats.rows_loaded == 0
    assert again.stats.duplicates == len(traffic.valid_ids)
    assert sorted(_raw_ids(warehouse)) == sorted(traffic.valid_ids)


def test_stop_flushes_and_acks_what_was_pulled(warehouse: Warehouse, channel: Channel) -> None:
    traffic = make_traffic(2000, events_per_message=(1, 3), seed=13)
    committed = threading.Event()

    def on_commit(batch: CommittedBatch) -> None:
        committed.set()

    loader = _loader(warehouse, channel, on_commit=on_commit)
    stop = threading.Event()
    runner = threading.Thread(target=loader.run, args=(stop,))
    runner.start()
    channel.publish(traffic.messages)
    assert committed.wait(30)
    stop.set()  # as SIGTERM does
    runner.join(30)
    assert not runner.is_alive()

    loaded = set(_raw_ids(warehouse))
    assert loaded <= traffic.valid_ids
    # Whatever was not loaded before the stop is still on the subscription: a second run
    # finishes the job with nothing lost and nothing twice.
    _drain(_loader(warehouse, channel))
    ids = _raw_ids(warehouse)
    assert sorted(ids) == sorted(traffic.valid_ids)


def test_ready_is_set_once_every_worker_pulls_and_events_then_load(
    warehouse: Warehouse, channel: Channel
) -> None:
    """The demo starts its replay clock on ``ready``: by then every worker pulls, so the first
    events published load promptly (and a second run clears the flag until its own start)."""
    loader = _loader(warehouse, channel)
    assert not loader.ready.is_set()
    stop = threading.Event()
    runner = threading.Thread(target=loader.run, args=(stop,))
    runner.start()
    try:
        assert loader.ready.wait(60), "the loader never reported its workers ready"
        traffic = make_traffic(200, seed=17)
        published = time.monotonic()
        channel.publish(traffic.messages)
        while loader.stats.rows_loaded < len(traffic.valid_ids):
            assert time.monotonic() - published < 30, "published events did not load"
            time.sleep(0.05)
    finally:
        stop.set()
        runner.join(30)
    assert not runner.is_alive()
    assert sorted(_raw_ids(warehouse)) == sorted(traffic.valid_ids)

    again = threading.Event()
    again.set()  # stopped before it starts: run() clears ready, and never reaches it
    loader.run(again)
    assert not loader.ready.is_set()


def test_on_commit_sees_durable_rows_before_the_ack(warehouse: Warehouse, channel: Channel) -> None:
    traffic = make_traffic(50, seed=14)
    seen: list[int] = []

    def on_commit(batch: CommittedBatch) -> None:
        # The rows are queryable when the hook runs; the messages are not acked yet.
        ids = set(_raw_ids(warehouse))
        assert set(batch.rows.column("event_id").to_pylist()) <= ids
        seen.append(batch.rows.num_rows)

    channel.publish(traffic.messages)
    _drain(_loader(warehouse, channel, on_commit=on_commit))
    assert sum(seen) == 50


def test_metrics_are_exported(warehouse: Warehouse, channel: Channel) -> None:
    from edp.observability.metrics import prometheus_text

    traffic = make_traffic(40, invalid_rate=0.1, seed=15)
    channel.publish(traffic.messages)
    _drain(_loader(warehouse, channel))
    text = prometheus_text().decode()
    for name in (
        "load_rows_total",
        "load_dead_letters_total",
        "load_freshness_seconds_bucket",
        "load_end_to_end_lag_seconds_bucket",
    ):
        assert name in text


def test_cli_run_drains_and_reports(
    warehouse: Warehouse, channel: Channel, monkeypatch: pytest.MonkeyPatch
) -> None:
    from edp_tools.cli.main import app

    traffic = make_traffic(120, invalid_rate=0.05, duplicate_rate=0.05, seed=16)
    channel.publish(traffic.messages)
    warehouse.close()  # the CLI opens the DuckDB file itself
    result = CliRunner().invoke(
        app,
        ["load", "run", "--subscription", channel.name, "--exit-when-idle", "0.5",
         "--no-ensure-topology"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert '"rows_loaded": 114' in result.output
    assert '"dead_letters": 6' in result.output


def test_share_warehouse_lets_another_process_use_the_duckdb_file(
    warehouse: Warehouse, channel: Channel, tmp_path: Any
) -> None:
    import os
    import subprocess
    import sys
    import time

    from edp.errors import TransientError
    from edp.warehouse import get_warehouse

    traffic = make_traffic(3000, events_per_message=(1, 3), seed=17)
    channel.publish(traffic.messages)
    warehouse.close()
    log = (tmp_path / "loader.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edp_tools.load", "run", "--subscription", channel.name,
         "--no-ensure-topology", "--share-warehouse", "--exit-when-idle", "2"],
        env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    opened = 0
    counts: list[int] = []
    while proc.poll() is None:
        try:
            other = get_warehouse()
        except TransientError:  # the loader is writing a batch right now
            time.sleep(0.02)
            continue
        try:
            counts.append(int(other.query("SELECT COUNT(*) AS n FROM raw.user_events").scalar()))
            opened += 1
        finally:
            other.close()
        time.sleep(0.05)
    assert proc.returncode == 0, (tmp_path / "loader.log").read_text()[-3000:]
    assert opened >= 3  # this process got the file while the loader ran
    final = get_warehouse()
    try:
        assert final.query("SELECT COUNT(*) AS n FROM raw.user_events").scalar() == len(
            traffic.valid_ids
        )
    finally:
        final.close()


def test_a_failed_write_is_not_acked_and_loads_on_redelivery(
    warehouse: Warehouse, channel: Channel
) -> None:
    # A real failure: another process holds the DuckDB file's lock, so the per-batch open fails
    # (TransientError). The loader must nack, keep nothing in its dedup memory, and load the
    # redelivered messages once the lock is gone - each event exactly once.
    import os
    import subprocess
    import sys

    from edp.warehouse import get_warehouse

    path = os.environ["EDP_DUCKDB_PATH"]
    warehouse.close()
    traffic = make_traffic(400, events_per_message=(1, 4), seed=18)
    config = LoaderConfig(subscription_path=channel.subscription, emulator_host=channel.host,
                          workers=1, max_batch_delay_s=0.05,
                          warehouse_open_wait_s=0.2)  # fmt: skip
    loader = LocalLoader(get_warehouse, config, channel.subscriber)
    stop = threading.Event()
    runner = threading.Thread(target=loader.run, args=(stop,))
    runner.start()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True);"
         " time.sleep(3); c.close()", path],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        channel.publish(traffic.messages)
        assert holder.wait(30) == 0
        deadline = time.monotonic() + 60
        while loader.stats.rows_loaded < len(traffic.valid_ids) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(60)
        holder.kill()
    assert loader.stats.write_failures >= 1
    final = get_warehouse()
    try:
        assert sorted(_raw_ids(final)) == sorted(traffic.valid_ids)
    finally:
        final.close()


def test_a_row_the_warehouse_refuses_is_dead_lettered_not_retried_forever(
    warehouse: Warehouse, channel: Channel
) -> None:
    # A real refusal: raw.user_events recreated with a CHECK constraint the contract does not
    # know (value < 1,000,000). The batch fails as a whole; the loader bisects, loads every
    # other row, dead-letters the refused ones as insert_error, and acks.
    import os
    import random

    import duckdb
    import orjson

    from edp.contracts.catalog import load_catalog
    from edp.load.samples import enriched_event
    from edp_tools.contracts.duckdb_ddl import duckdb_create_table_sql

    path = os.environ["EDP_DUCKDB_PATH"]
    warehouse.close()
    ddl = duckdb_create_table_sql(load_catalog().table("raw.user_events"), "raw").rstrip()
    ddl = ddl.rstrip(";").rstrip()[:-1] + ', CHECK ("value" IS NULL OR "value" < 1000000))'
    con = duckdb.connect(path)
    con.execute('DROP TABLE "raw"."user_events"')
    con.execute(ddl)
    con.close()

    traffic = make_traffic(300, events_per_message=(1, 6), seed=19)
    rng = random.Random(5)
    poison = []
    for n in range(3):
        event = enriched_event(rng, f"00000000-0000-4000-8000-00000000000{n}")
        event["value"], event["currency"] = 5_000_000.0, "KRW"
        poison.append(orjson.dumps(event))
    good = orjson.dumps(enriched_event(rng, "00000000-0000-4000-8000-000000000009"))
    messages = [*traffic.messages, poison[0], poison[1] + b"\n" + good, poison[2]]
    channel.publish(messages)

    from edp.warehouse import get_warehouse

    reopened = get_warehouse()
    try:
        loader = _loader(reopened, channel)
        _drain(loader)
        ids = _raw_ids(reopened)
        errors = reopened.query(
            "SELECT event_id, error_type, stage, reason, payload FROM raw.user_events_errors"
        ).rows
    finally:
        reopened.close()
    assert sorted(ids) == sorted({*traffic.valid_ids, "00000000-0000-4000-8000-000000000009"})
    assert sorted(e["event_id"] for e in errors) == [
        f"00000000-0000-4000-8000-00000000000{n}" for n in range(3)
    ]
    assert {(e["error_type"], e["stage"]) for e in errors} == {("insert_error", "insert")}
    assert all("constraint" in e["reason"].lower() and e["payload"] for e in errors)
    assert loader.stats.write_failures == 0
    assert channel.backlog_empty()


def test_a_message_twice_in_one_commit_is_dead_lettered_once(
    warehouse: Warehouse, channel: Channel
) -> None:
    """A bad line redelivered while its first copy is still in flight (the ack deadline passed
    on a busy machine) can land in the same commit twice: one row in the errors table."""
    from edp.load.transforms import DeadLetter

    loader = _loader(warehouse, channel)
    first = DeadLetter("parse_error", "not JSON", "{", "m-42", 3, 0)
    again = DeadLetter("parse_error", "not JSON", "{", "m-42", 3, 0)
    other = DeadLetter("parse_error", "not JSON", "{", "m-42", 4, 0)
    assert [d.error_id for d in loader._fresh_dead_letters([first, again, other])] == [
        "m-42:3",
        "m-42:4",
    ]
    loader._errors.remember(["m-42:4"])
    assert [d.error_id for d in loader._fresh_dead_letters([again, other])] == ["m-42:3"]
