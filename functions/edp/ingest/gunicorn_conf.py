"""gunicorn settings of the ingest collector.

Run: ``gunicorn -c python:edp.ingest.gunicorn_conf edp.ingest.wsgi:app``.

Measured on the 2-core bench machine: gthread workers (keep-alive + a few threads per process so
the synchronous publish RPC of one request overlaps with the parsing of others) match sync
workers on raw throughput and beat them on latency under concurrency. Every knob can be
overridden with the usual ``GUNICORN_CMD_ARGS`` or ``--flag`` on the command line.
"""

from __future__ import annotations

import multiprocessing
import os
from typing import Any

bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("EDP_INGEST_WORKERS", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("EDP_INGEST_THREADS", "8"))
keepalive = 75  # longer than a typical load balancer's idle timeout (GCLB: 600 s backend, 60 s)
# Kubernetes sends SIGTERM, waits terminationGracePeriodSeconds, then SIGKILL: finish in-flight
# requests (and their publishes) well inside that.
graceful_timeout = 25
timeout = 30
max_requests = 0
accesslog = None
errorlog = "-"
loglevel = os.environ.get("EDP_INGEST_LOG_LEVEL", "info")


def worker_exit(server: Any, worker: Any) -> None:
    """Flush and close the worker's publisher after its last request."""
    from edp.ingest.wsgi import shutdown

    shutdown()
    server.log.info("ingest worker %s: publisher flushed and closed", worker.pid)
