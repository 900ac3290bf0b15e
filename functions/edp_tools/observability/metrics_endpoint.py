"""A ``/metrics`` side endpoint for a local process: ``python -m ... --port P MODULE [ARGS]``.

In GCP the Cloud Run functions push their OpenTelemetry metrics to Cloud Monitoring (and only
the GKE collector is scraped); the laptop has no Cloud Monitoring, so ``edp dev`` pulls instead.
Most local processes have no route of their own for that: a request to ``cdc_flush`` runs a
flush, ``etl`` and ``quality_check`` answer only their own paths, and the stream loader and the
CDC reader serve no HTTP at all. This launcher starts a small HTTP server on ``--port`` in a
daemon thread, answering ``GET /metrics`` with the process's Prometheus exposition
(:func:`edp.observability.metrics.prometheus_text`: the same instruments, names and labels the
process exports in GCP), then runs ``MODULE`` as ``python -m MODULE ARGS`` would, in the same
process. The module is unchanged (its signals, exit code and ``__main__`` guard behave as
usual), and production code knows nothing of the endpoint.

``--in-worker`` serves from the first forked child instead: functions-framework runs the
function in a gunicorn worker forked from the master (one worker, as on Cloud Run), so the
metrics live there, not in the master.

Example:
    >>> launcher_argv("python3", 9100, "edp_tools.cdc.reader")[1:]
    ['-m', 'edp_tools.observability.metrics_endpoint', '--port', '9100', 'edp_tools.cdc.reader']
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
import threading
from collections.abc import Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def launcher_argv(
    python: str, port: int, module: str, *args: str, in_worker: bool = False
) -> list[str]:
    """The command line that runs ``python -m module args`` with the endpoint on ``port``."""
    return [python, "-m", __name__, "--port", str(port), *(["--in-worker"] * in_worker), module,
            *args]  # fmt: skip


def serve_metrics(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """Serve ``GET /metrics`` (this process's metrics) on ``host:port`` from a daemon thread."""
    from edp.observability.metrics import prometheus_text

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] != "/metrics":
                self.send_error(404)
                return
            body = prometheus_text()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return  # a scrape every 5 s would drown the component's own log

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="metrics-endpoint", daemon=True).start()
    return server


_serving = False


def _serve_in_child(port: int) -> None:
    """At-fork hook: serve from the first forked child (a child of that child inherits
    ``_serving`` and does not try; a second worker finds the port taken and says so)."""
    global _serving  # noqa: PLW0603 - one endpoint per process tree
    if _serving:
        return
    try:
        serve_metrics(port)
    except OSError as exc:
        print(f"metrics endpoint: port {port} not served by pid {os.getpid()}: {exc}",
              file=sys.stderr)  # fmt: skip
        return
    _serving = True


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, required=True, help="Port of /metrics.")
    parser.add_argument(
        "--in-worker", action="store_true", help="Serve from the first forked child (gunicorn)."
    )
    parser.add_argument("module", help="Module to run as __main__ (as python -m does).")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="Its arguments.")
    ns = parser.parse_args(argv)
    if ns.in_worker:
        os.register_at_fork(after_in_child=lambda: _serve_in_child(ns.port))
    else:
        serve_metrics(ns.port)
    sys.argv = [ns.module, *ns.args]
    runpy.run_module(ns.module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
