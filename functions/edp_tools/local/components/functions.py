"""Every Cloud Run entry point of ``functions/main.py`` served by functions-framework.

One process per function (as on Cloud Run), each on its own port: ``--port-base`` + the
function's slot in :data:`ENTRY_POINTS` (``ingest`` on 8080 by default), or free ports when the
base is 0. Entry points not (yet) defined in ``functions/main.py`` are skipped; others found
there are served after the known ones.

Metrics: ingest serves ``/metrics`` itself (the same app is the GKE collector, which Managed
Service for Prometheus scrapes); every other function runs under
:mod:`edp_tools.observability.metrics_endpoint`, which adds a ``/metrics`` side port, because in
GCP they push to Cloud Monitoring instead and a request to them does work (``cdc_flush`` flushes).
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

from edp.errors import ConfigError
from edp_tools.local.processes import ManagedProcess, free_port, port_open
from edp_tools.local.scrape import add_target, metered
from edp_tools.local.stack import Component, Health, StackContext, component
from edp_tools.local.with_parent import WITH_PARENT, argv_with_parent

__all__ = ["ENTRY_POINTS", "FunctionsServer", "entry_points", "functions_source"]

#: Known entry points in port order (a slot stays reserved even while its function is missing).
ENTRY_POINTS = ("ingest", "cdc_flush", "etl", "quality_check", "sql_review")
#: Entry points whose app answers ``GET /metrics`` itself (scraped there, no side endpoint).
OWN_METRICS_ROUTE = ("ingest",)


def functions_source() -> Path:
    """``functions/main.py`` of this checkout (next to the ``edp`` package)."""
    import edp

    source = Path(edp.__file__).resolve().parent.parent / "main.py"
    if not source.is_file():
        raise ConfigError(f"cannot find the functions entry points at {source}")
    return source


def entry_points(source: Path | None = None) -> list[str]:
    """Public top-level functions of ``functions/main.py``, known ones first, in slot order.

    Read with :mod:`ast`, so listing does not import the functions' dependencies.
    """
    tree = ast.parse((source or functions_source()).read_text())
    defined = [
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and not node.name.startswith("_")
    ]
    known = [name for name in ENTRY_POINTS if name in defined]
    return known + [name for name in defined if name not in ENTRY_POINTS]


def _port_for(name: str, ctx: StackContext) -> int:
    if not ctx.port_base:
        return free_port()
    slot = ENTRY_POINTS.index(name) if name in ENTRY_POINTS else len(ENTRY_POINTS)
    if slot == len(ENTRY_POINTS):
        return free_port()
    return ctx.port_base + slot


@component
class FunctionsServer(Component):
    """functions-framework, one process per entry point."""

    name = "functions"
    order = 50
    description = "Cloud Run functions (functions-framework)"

    def __init__(self) -> None:
        self.servers: dict[str, tuple[ManagedProcess, int]] = {}

    def start(self, ctx: StackContext) -> None:
        source = functions_source()
        urls: dict[str, str] = {}
        for fn in entry_points(source):
            port = _port_for(fn, ctx)
            if port_open("127.0.0.1", port):
                raise ConfigError(
                    f"port {port} for function {fn!r} is in use; pass --port-base 0 "
                    "(free ports) or another base"
                )
            args = ["--source", str(source), "--target", fn, "--host", "127.0.0.1"]
            args += ["--port", str(port)]
            urls[fn] = f"http://127.0.0.1:{port}"
            # Every function's gunicorn workers die with their master: uvicorn's (async entry
            # points such as ingest) would outlive a killed one on their own.
            if fn in OWN_METRICS_ROUTE:
                argv = argv_with_parent(sys.executable, "functions_framework", *args)
                add_target(ctx, fn, urls[fn])
            else:
                # functions-framework serves through gunicorn: one forked worker runs the code
                argv = metered(ctx, fn, WITH_PARENT, "functions_framework", *args, in_worker=True)
            proc = ctx.spawn(f"fn:{fn}", argv, cwd=source.parent.parent)
            self.servers[fn] = (proc, port)
        for fn, (proc, port) in self.servers.items():
            proc.wait_ready(
                lambda port=port: port_open("127.0.0.1", port),  # type: ignore[misc]
                timeout=60,
                what=f"function {fn} on port {port}",
            )
            ctx.endpoints[f"fn:{fn}"] = urls[fn]
        ctx.values["functions"] = urls

    def stop(self) -> None:
        for proc, _ in self.servers.values():
            proc.stop()

    def health(self) -> Health:
        if not self.servers:
            return Health(True, "no entry points in functions/main.py")
        down = [
            fn
            for fn, (proc, port) in self.servers.items()
            if not (proc.running and port_open("127.0.0.1", port))
        ]
        if down:
            return Health(False, f"down: {', '.join(down)}")
        return Health(True, ", ".join(self.servers))

    def processes(self) -> list[ManagedProcess]:
        return [proc for proc, _ in self.servers.values()]
