"""Soak benchmark: ingest at 10x the seed's peak (batched) for 10 minutes, loader draining.

The ingest app runs as deployed on GKE (gunicorn, 2 uvicorn workers, ``edp.ingest.asgi:app``)
on a fresh Pub/Sub emulator; a driver process sends ``POST /v1/events`` batches of 100 events at
118 requests/s (11,800 events/s = 10 x the seed's 1,180 RPS peak), open loop, every event with a
known ``event_id``; the local loader drains the ``events`` topic into DuckDB meanwhile.

Figures:

* ``reliability.soak.rss_growth_mib`` (bar < 50): the largest growth of one ingest worker's
  resident memory between the end of the warm-up (first 60 s) and the end of the run;
* ``reliability.soak.lost`` (bar == 0): events of acknowledged (200) requests that are not in
  ``raw.user_events`` once the loader has drained the backlog (compared id by id in DuckDB;
  ``drain_after_end_s`` is how long the loader needed after the driver stopped);
* for context: acknowledged events, requests not acknowledged (503 or timed out: a client
  resends them), the loader's own RSS growth.

Knobs: ``EDP_BENCH_SOAK_S`` (default 600), ``EDP_BENCH_SOAK_RPS`` (default 118).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, overload

import orjson

from edp_tools.bench import Bar, benchmark

BATCH = 100
WARMUP_S = 60.0


def event_id(i: int) -> str:
    """The id of the driver's ``i``-th event: a version-4-shaped UUID whose last group is ``i``
    in decimal, so the warehouse can tell which request an event came from.

    Example:
        >>> event_id(1234)
        '00000000-0000-4000-8000-000000001234'
    """
    return str(uuid.UUID(f"00000000-0000-4000-8000-{i:012d}"))


class _Requests(Sequence[bytes]):
    """Request ``k`` is a batch of events ``k*BATCH .. (k+1)*BATCH - 1``, built on demand."""

    def __init__(self, count: int) -> None:
        self._count = count

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, k: int) -> bytes: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[bytes]: ...
    def __getitem__(self, k: int | slice) -> bytes | Sequence[bytes]:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(self._count))]
        from edp_tools.bench.ingest import _event, _request

        first = k * BATCH
        events = [_event(i, event_id(i)) for i in range(first, first + BATCH)]
        return _request("/v1/events", orjson.dumps({"events": events}))


def _drive(port: int, seconds: float, rate: float, result: Any) -> None:
    """Child process: the batches at ``rate``/s; puts the indices of the 200 answers."""
    import asyncio

    from edp_tools.bench.ingest import _open_loop

    requests = _Requests(int(rate * seconds))
    _, statuses = asyncio.run(_open_loop(port, requests, rate, 32))
    result.put([k for k, status in enumerate(statuses) if status == 200])
    result.put(sum(1 for s in statuses if s != 200))


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _ingest_workers(emulator_host: str) -> list[int]:
    """The gunicorn worker pids of our ingest app (matched by its emulator, not by name only)."""
    pids: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if b"edp.ingest.asgi:app" not in cmdline:
                continue
            if f"PUBSUB_EMULATOR_HOST={emulator_host}".encode() not in (
                entry / "environ"
            ).read_bytes().split(b"\0"):
                continue
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pids[int(entry.name)] = int(stat[1])  # pid -> parent pid
    return [pid for pid, parent in pids.items() if parent in pids]  # workers: master's children


def soak(workdir: Path, seconds: float, rate: float) -> dict[str, float]:
    """Run the soak; return its figures."""
    from edp_tools.bench.ingest import PROJECT as INGEST_PROJECT
    from edp_tools.bench.ingest import _stack
    from edp_tools.bench.load import _subscription, _warehouse
    from edp_tools.load.local_loader import LoaderConfig, LocalLoader

    with _stack(workdir) as stack:
        _, subscriber, _, sub = _subscription(
            stack.emulator.host, "events", "soak-loader", INGEST_PROJECT
        )
        workers = _ingest_workers(stack.emulator.host)
        if not workers:
            raise RuntimeError("no ingest gunicorn worker found")
        with _warehouse(workdir / "soak") as warehouse:
            config = LoaderConfig(subscription_path=sub, emulator_host=stack.emulator.host)
            loader = LocalLoader(warehouse, config, subscriber)
            stop = threading.Event()
            runner = threading.Thread(target=loader.run, args=(stop,), daemon=True)
            runner.start()
            ctx = multiprocessing.get_context("spawn")
            result: Any = ctx.Queue()
            driver = ctx.Process(target=_drive, args=(stack.port, seconds, rate, result))
            driver.start()
            time.sleep(min(WARMUP_S, seconds / 2))
            warm = {pid: _rss_mib(pid) for pid in workers}
            loader_warm = _rss_mib(os.getpid())
            acked: list[int] = result.get(timeout=seconds + 600)
            refused = int(result.get(timeout=60))
            driver.join(60)
            end = {pid: _rss_mib(pid) for pid in workers}
            expected = len(acked) * BATCH
            drain_started = time.monotonic()
            # Drain to the end: "lost" must not count a backlog the loader had not reached yet.
            # Stop when every acknowledged event is in, or when nothing moved for 60 s.
            last, last_move = -1, time.monotonic()
            while loader.stats.rows_loaded < expected:
                if loader.stats.rows_loaded != last:
                    last, last_move = loader.stats.rows_loaded, time.monotonic()
                elif time.monotonic() - last_move > 60:
                    break
                time.sleep(0.5)
            drain_s = time.monotonic() - drain_started
            stop.set()
            runner.join(60)
            loader_end = _rss_mib(os.getpid())
            per_request = warehouse.query(
                f"SELECT DIV(CAST(RIGHT(event_id, 12) AS INT64), {BATCH}) AS k, "
                "COUNT(DISTINCT event_id) AS n FROM raw.user_events GROUP BY 1"
            ).rows
            loaded = {int(row["k"]): int(row["n"]) for row in per_request}
            lost = sum(BATCH - loaded.get(k, 0) for k in acked)
            duplicates = warehouse.query(
                "SELECT COUNT(*) - COUNT(DISTINCT event_id) AS n FROM raw.user_events"
            ).scalar()
    return {
        "reliability.soak.rss_growth_mib": round(max(end[p] - warm[p] for p in workers), 1),
        "reliability.soak.lost": float(lost or 0),
        "reliability.soak.duplicates_in_raw": float(duplicates or 0),
        "reliability.soak.events_acknowledged": float(expected),
        "reliability.soak.requests_not_acknowledged": float(refused),
        "reliability.soak.worker_rss_end_mib": round(max(end.values()), 1),
        "reliability.soak.loader_rss_growth_mib": round(loader_end - loader_warm, 1),
        "reliability.soak.seconds": float(seconds),
        "reliability.soak.drain_after_end_s": round(drain_s, 1),
    }


@benchmark(
    "reliability.soak",
    bars=[
        Bar("reliability.soak.rss_growth_mib", "<", 50, unit="MiB"),
        Bar("reliability.soak.lost", "<=", 0),
    ],
    units={
        "reliability.soak.worker_rss_end_mib": "MiB",
        "reliability.soak.loader_rss_growth_mib": "MiB",
        "reliability.soak.seconds": "s",
        "reliability.soak.drain_after_end_s": "s",
    },
)
def bench_soak() -> dict[str, float]:
    """10 x peak batched ingest for 10 minutes with the loader draining: memory and loss."""
    seconds = float(os.environ.get("EDP_BENCH_SOAK_S") or 600)  # bench knobs, not settings
    rate = float(os.environ.get("EDP_BENCH_SOAK_RPS") or 118)
    with tempfile.TemporaryDirectory() as tmp:
        return soak(Path(tmp), seconds, rate)
