"""gunicorn settings of the ingest collector.

Run: ``gunicorn -c python:edp.ingest.gunicorn_conf edp.ingest.asgi:app``.

Workers: one per CPU of the container's CPU limit (cgroup quota, :mod:`edp.ingest.cpu_quota`),
not per core of the node. Metrics: every worker's counters are summed at ``/metrics`` through
``prometheus_client``'s multiprocess mode (:mod:`edp.observability.multiprocess`); the folder
(``PROMETHEUS_MULTIPROC_DIR``, default under ``/tmp``, the pod's writable emptyDir) is emptied
when the server starts, as prometheus_client's documentation requires.

Workers are uvicorn's (httptools + uvloop): one event loop per process runs every request, and
each request's Publish RPC is awaited on it (:mod:`edp.ingest.asgi`). Measured on the 2-core
bench machine at 1,180 single-event requests/s, the gthread workers used before spent ~1,100 µs
of CPU per request, mostly on thread hand-offs; see docs/benchmarks.md for the figures now. Every
knob can be overridden with the usual ``GUNICORN_CMD_ARGS`` or ``--flag`` on the command line.
Graceful shutdown: on SIGTERM uvicorn stops accepting, finishes in-flight requests (each one
answers only after its publish), then its lifespan shutdown closes the publisher.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from edp.ingest.cpu_quota import default_workers

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("EDP_INGEST_WORKERS") or default_workers())
worker_class = "uvicorn_worker.UvicornWorker"
keepalive = 75  # longer than a typical load balancer's idle timeout (GCLB: 600 s backend, 60 s)
# Kubernetes sends SIGTERM, waits terminationGracePeriodSeconds, then SIGKILL: finish in-flight
# requests (and their publishes) well inside that.
graceful_timeout = 25
timeout = 30
max_requests = 0
accesslog = None
errorlog = "-"
loglevel = os.environ.get("EDP_INGEST_LOG_LEVEL", "info")


def on_starting(server: Any) -> None:
    """In the master, before the workers fork: give them one empty metrics folder.

    Every worker inherits ``PROMETHEUS_MULTIPROC_DIR`` and writes its values there (unless
    metrics are off: ``EDP_METRICS_EXPORTER=none``). One folder per server (the master's pid)
    so two servers never mix values; emptied first, as prometheus_client requires.
    """
    if os.environ.get("EDP_METRICS_EXPORTER", "prometheus") != "prometheus":
        return
    os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR",
        f"/tmp/edp-prometheus-{os.getpid()}",  # noqa: S108 - the pod's writable emptyDir
    )
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)


def child_exit(server: Any, worker: Any) -> None:
    """Drop a dead worker's live-gauge files (its counters stay: totals must not go down)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]
