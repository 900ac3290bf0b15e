"""The collector under gunicorn with several workers: /metrics reports the pod's totals, and
the worker count follows the container's CPU limit.

Expected values are counted by hand: the test sends a known number of requests and every scrape,
whichever worker answers it, must report exactly that many (prometheus_client documents that
MultiProcessCollector sums the per-process files of ``PROMETHEUS_MULTIPROC_DIR``). cgroup file
formats are those of the kernel documentation: v2 ``cpu.max`` is ``"$MAX $PERIOD"`` with ``max``
for no limit; v1 ``cpu.cfs_quota_us`` is ``-1`` for no limit
(Documentation/admin-guide/cgroup-v2.rst, Documentation/scheduler/sched-bwc.rst).
"""

from __future__ import annotations

import http.client
import os
import re
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from edp.ingest.cpu_quota import container_cpus, default_workers
from edp.observability import multiprocess
from edp.observability.catalogue import metric
from edp_tools.local.processes import ManagedProcess, free_port, port_open

from .conftest import AUTH, WRITE_KEY, Bus, event


def _request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=AUTH if body is not None else {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _scraped_names() -> set[str]:
    """Bare (Managed Prometheus) metric names read by the alert policies and dashboards."""
    from observability.queries import dashboard_queries, terraform_queries

    return {
        sel.name
        for query in terraform_queries() + dashboard_queries()
        for sel in query.selectors()
        if ":" not in sel.name
    }


def _sample(text: str, name: str, labels: dict[str, str]) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if match:
            got = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
            if got == labels:
                return float(match.group(2))
    return 0.0


@pytest.mark.slow
def test_two_workers_one_total(bus: Bus, tmp_path: Path) -> None:
    port = free_port()
    metrics_dir = tmp_path / "prometheus"
    env = {
        **os.environ,
        "PUBSUB_EMULATOR_HOST": bus.emulator.host,
        "GOOGLE_CLOUD_PROJECT": bus.emulator.project,
        "EDP_TOPIC_EVENTS": bus.events_topic,
        "EDP_TOPIC_BAD_EVENTS": bus.bad_topic,
        "EDP_WRITE_KEYS": WRITE_KEY,
        "EDP_METRICS_EXPORTER": "prometheus",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    proc = ManagedProcess(
        "test:ingest-gunicorn-2",
        [sys.executable, "-m", "gunicorn", "-c", "python:edp.ingest.gunicorn_conf",
         "-b", f"127.0.0.1:{port}", "-w", "2", "--threads", "2", "edp.ingest.asgi:app"],
        env=env,
        log_path=tmp_path / "gunicorn.log",
    ).start()  # fmt: skip
    sent = 0
    try:
        proc.wait_ready(lambda: port_open("127.0.0.1", port), timeout=60)
        body = orjson.dumps(event())
        lock = threading.Lock()
        failures: list[str] = []

        def client(n: int) -> None:
            nonlocal sent
            for _ in range(n):
                try:
                    status, _ = _request(port, "POST", "/v1/events", body)
                except OSError as exc:  # would leave the server's count unknown
                    failures.append(repr(exc))
                    return
                with lock:
                    sent += 1
                    if status != 200:
                        failures.append(f"status {status}")

        def writers() -> set[str]:
            return {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}

        def both_wrote() -> bool:
            # A worker's counters reach its file up to FLUSH_AFTER_S after its requests (the
            # write-behind): a round that took less than that shows no file yet.
            deadline = time.monotonic() + multiprocess.FLUSH_AFTER_S + 1.0
            while len(writers()) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            return len(writers()) == 2

        # Until both workers have served (the kernel spreads accepts; bounded rounds).
        for _ in range(20):
            threads = [threading.Thread(target=client, args=(10,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert not failures, failures
            if both_wrote():
                break
        assert len(writers()) == 2, "both workers must have served requests"
        # Each worker writes what its loop kept within FLUSH_AFTER_S; the scraped worker writes
        # its own first, the other's last second may not be in its file yet.
        time.sleep(multiprocess.FLUSH_AFTER_S + 0.5)
        route = {"route": "/v1/events", "code": "200"}
        accepted = {"event_type": "page_view", "device_type": "unknown", "result": "accepted"}
        for _ in range(6):  # several scrapes: whichever worker answers, the pod's total
            status, text = _request(port, "GET", "/metrics")
            assert status == 200
            exposition = text.decode()
            assert _sample(exposition, "http_requests_total", route) == sent
            assert _sample(exposition, "request_latency_seconds_count", route) == sent
            events = [
                line
                for line in exposition.splitlines()
                if line.startswith("events_received_total{")
            ]
            assert sum(float(line.rsplit(" ", 1)[1]) for line in events) == sent, events
            for line in events:
                labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
                assert set(labels) == set(metric("events_received_total").labels)
            assert _sample(exposition, "events_received_total", accepted) in (0.0, sent)
        # What the dashboards and alerts read from the collector through Managed Prometheus.
        families = set(re.findall(r"^# TYPE (\S+) ", exposition, re.M))
        scraped = _scraped_names()
        assert "http_requests_total" in scraped
        for name in scraped:
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            assert name.removesuffix("_total") in families or base in families, name
    finally:
        proc.stop()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "100000 100000\n"}, 1.0),
        ({"cpu.max": "250000 100000\n"}, 2.5),
        ({"cpu.max": "50000 100000\n"}, 0.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "200000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 2.0),
        ({}, None),
    ],
)
def test_container_cpus_from_cgroup_files(
    tmp_path: Path, files: dict[str, str], expected: float | None
) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert container_cpus(tmp_path) == expected


def test_workers_follow_the_quota_not_the_node(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("100000 100000\n")  # the collector's limit: cpu "1"
    assert default_workers(tmp_path) == 1
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert default_workers(tmp_path) == min(2, os.cpu_count() or 1)
