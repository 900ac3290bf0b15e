"""Stream-load benchmarks: the local loader's throughput and the platform's freshness.

``load.local.events_per_s`` (bar >= 10,000): N events are published to a fresh Pub/Sub emulator
first (messages of 1-20 events, as SDKs batch and ingest publishes one message per request),
then the loader drains them into a DuckDB file; the figure is the sustained rate, rows
committed after the first batch / (last commit - first commit) (process start-up excluded).
``load.local.events_per_s_single`` is the same with one event per message (every request a
single event: the emulator's per-message cost dominates).

``load.freshness.p99_s`` (bar < 5 s): the ingest app (gunicorn, as deployed) receives
single-event requests at 1,180 RPS from a separate process (the ingest benchmark's open-loop
driver); the loader runs here on the ``events`` topic; for each event, freshness = the moment its
batch is committed to DuckDB (queryable) - its ``ingested_at`` (stamped by ingest when it
accepted the event). Reports p50/p99/max and the number of events checked.

Knobs: ``EDP_BENCH_LOAD_EVENTS`` (default 200,000), ``EDP_BENCH_LOAD_FRESHNESS_S`` (default 30).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from edp_tools.bench import Bar, benchmark

PROJECT = "edp-bench-load"


def _env_number(name: str, default: float) -> float:
    value = os.environ.get(name)  # bench knobs are not platform settings
    return float(value) if value else default


@contextmanager
def _warehouse(workdir: Path) -> Iterator[Any]:
    from edp.settings import Settings
    from edp.warehouse import get_warehouse

    settings = Settings(
        _env_file=None, warehouse="duckdb", duckdb_path=workdir / "warehouse.duckdb",
        state_dir=workdir,
    )  # fmt: skip
    warehouse = get_warehouse(settings)
    warehouse.create_tables()
    try:
        yield warehouse
    finally:
        warehouse.close()


def _subscription(
    emulator_host: str, topic: str, name: str, project: str = PROJECT
) -> tuple[Any, Any, str, str]:
    from edp.bus.clients import build_publisher, build_subscriber

    publisher = build_publisher(emulator_host=emulator_host)
    subscriber = build_subscriber(emulator_host=emulator_host)
    topic_path = f"projects/{project}/topics/{topic}"
    sub_path = f"projects/{project}/subscriptions/{name}"
    with contextlib.suppress(Exception):  # the topic exists (ingest's stack created it)
        publisher.create_topic(name=topic_path)
    subscriber.create_subscription(
        request={"name": sub_path, "topic": topic_path, "ack_deadline_seconds": 60}
    )
    return publisher, subscriber, topic_path, sub_path


def _drain_rate(
    emulator_host: str, workdir: Path, n_events: int, per_message: tuple[int, int]
) -> float:
    from edp.load.samples import make_traffic
    from edp_tools.load.local_loader import CommittedBatch, LoaderConfig, LocalLoader

    name = f"load-{uuid.uuid4().hex[:8]}"
    publisher, subscriber, topic, sub = _subscription(emulator_host, name, name)
    traffic = make_traffic(n_events, events_per_message=per_message, seed=42)
    futures.wait([publisher.publish(topic, m) for m in traffic.messages])
    commits: list[tuple[float, int]] = []

    def on_commit(batch: CommittedBatch) -> None:
        commits.append((time.monotonic(), batch.rows.num_rows))

    with _warehouse(workdir / name) as warehouse:
        config = LoaderConfig(subscription_path=sub, emulator_host=emulator_host)
        loader = LocalLoader(warehouse, config, subscriber, on_commit=on_commit)
        stats = loader.run(threading.Event(), exit_when_idle_s=1.0)
    if stats.rows_loaded != n_events:
        raise RuntimeError(f"loaded {stats.rows_loaded} of {n_events} events")
    # Sustained rate: rows committed after the first batch / time from the first to the last
    # commit (start-up - worker processes, dedup warm-up - is not load throughput).
    (first_at, first_rows), (last_at, _) = commits[0], commits[-1]
    if last_at <= first_at:
        raise RuntimeError("too few batches to measure a rate; publish more events")
    return (n_events - first_rows) / (last_at - first_at)


def _drive_ingest(port: int, seconds: float, rate: float, result: Any) -> None:
    """Child process: single-event requests at ``rate``/s for ``seconds`` (open loop)."""
    import asyncio

    from edp_tools.bench.ingest import _event, _open_loop, _request

    n = int(rate * seconds)
    requests = [
        _request("/v1/events", orjson.dumps(_event(i, str(uuid.uuid4())))) for i in range(n)
    ]
    _, statuses = asyncio.run(_open_loop(port, requests, rate, 32))
    result.put(sum(1 for s in statuses if s == 200))


def _freshness(workdir: Path, seconds: float, rate: float) -> dict[str, float]:
    import numpy as np

    from edp_tools.bench.ingest import PROJECT as INGEST_PROJECT
    from edp_tools.bench.ingest import _stack
    from edp_tools.load.local_loader import CommittedBatch, LoaderConfig, LocalLoader

    samples: list[Any] = []

    def on_commit(batch: CommittedBatch) -> None:
        queryable_us = time.time_ns() // 1000
        ingested = batch.rows.column("ingested_at").cast("int64").to_numpy()
        samples.append((queryable_us - ingested) / 1e6)

    with _stack(workdir) as stack:
        _, subscriber, _, sub = _subscription(
            stack.emulator.host, "events", "bench-loader", INGEST_PROJECT
        )
        with _warehouse(workdir / "fresh") as warehouse:
            config = LoaderConfig(subscription_path=sub, emulator_host=stack.emulator.host)
            loader = LocalLoader(warehouse, config, subscriber, on_commit=on_commit)
            stop = threading.Event()
            runner = threading.Thread(target=loader.run, args=(stop,), daemon=True)
            runner.start()
            ctx = multiprocessing.get_context("spawn")
            accepted: Any = ctx.Queue()
            driver = ctx.Process(target=_drive_ingest, args=(stack.port, seconds, rate, accepted))
            driver.start()
            ok = int(accepted.get(timeout=seconds + 120))
            driver.join(30)
            deadline = time.monotonic() + 30
            while loader.stats.rows_loaded < ok and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            runner.join(30)
    values = np.concatenate(samples) if samples else np.zeros(0)
    if values.size < ok:
        raise RuntimeError(f"only {values.size} of {ok} accepted events reached raw")
    return {
        "load.freshness.p99_s": round(float(np.percentile(values, 99)), 3),
        "load.freshness.p50_s": round(float(np.percentile(values, 50)), 3),
        "load.freshness.max_s": round(float(values.max()), 3),
        "load.freshness.events": float(values.size),
    }


@benchmark(
    "load",
    bars=[
        Bar("load.local.events_per_s", ">=", 10_000, unit="events/s", source="stream-load SLA"),
        Bar("load.freshness.p99_s", "<", 5, unit="s", source="stream-load SLA"),
    ],
    units={
        "load.local.events_per_s_single": "events/s",
        "load.freshness.p50_s": "s",
        "load.freshness.max_s": "s",
        "load.freshness.events": "events",
    },
)
def bench_load() -> dict[str, float]:
    """Local loader: drain rate emulator -> DuckDB; accepted -> queryable at 1,180 RPS."""
    from edp_tools.local.pubsub_emulator import PubSubEmulator

    n_events = int(_env_number("EDP_BENCH_LOAD_EVENTS", 200_000))
    seconds = _env_number("EDP_BENCH_LOAD_FRESHNESS_S", 30.0)
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="edp-bench-load-") as tmp:
        workdir = Path(tmp)
        emulator = PubSubEmulator(PROJECT, log_path=workdir / "emulator.log").start()
        try:
            _drain_rate(emulator.host, workdir, 20_000, (1, 20))  # warm-up (JVM, caches)
            figures["load.local.events_per_s"] = round(
                _drain_rate(emulator.host, workdir, n_events, (1, 20)), 0
            )
            figures["load.local.events_per_s_single"] = round(
                _drain_rate(emulator.host, workdir, n_events // 2, (1, 1)), 0
            )
        finally:
            emulator.stop()
        figures.update(_freshness(workdir, seconds, 1180.0))
    return figures


if __name__ == "__main__":
    print(orjson.dumps(bench_load(), option=orjson.OPT_INDENT_2).decode())
