"""Which local processes ``edp dev`` scrapes for metrics, and how each serves them.

Components call :func:`metered` for the command line of a child that should expose
``/metrics`` (it runs the module under :mod:`edp_tools.observability.metrics_endpoint` on a free
port), or :func:`add_target` for one that serves ``/metrics`` itself (ingest, as the GKE
collector does). Both record the target in ``ctx.values[TARGETS]`` (job -> base URL); the
dashboards component scrapes every one of them.

Example:
    >>> from pathlib import Path
    >>> from edp.settings import Settings
    >>> from edp_tools.local.stack import StackContext
    >>> ctx = StackContext(Settings(_env_file=None), Path("/tmp"), Path("/tmp"))
    >>> argv = metered(ctx, "cdc-reader", "edp_tools.cdc.reader")
    >>> argv[2], argv[-1], list(targets(ctx))
    ('edp_tools.observability.metrics_endpoint', 'edp_tools.cdc.reader', ['cdc-reader'])
"""

from __future__ import annotations

import sys

from edp_tools.local.processes import free_port
from edp_tools.local.stack import StackContext
from edp_tools.observability.metrics_endpoint import launcher_argv

#: ``ctx.values`` key of the scrape targets (job -> base URL; ``/metrics`` is appended).
TARGETS = "metrics_targets"


def add_target(ctx: StackContext, job: str, base_url: str) -> None:
    """Scrape ``base_url``/metrics under ``job``."""
    ctx.values.setdefault(TARGETS, {})[job] = base_url


def metered(
    ctx: StackContext, job: str, module: str, *args: str, in_worker: bool = False
) -> list[str]:
    """``python -m module args`` with a ``/metrics`` side endpoint, registered as ``job``
    (``in_worker``: served by the forked worker, for gunicorn-served modules)."""
    port = free_port()
    add_target(ctx, job, f"http://127.0.0.1:{port}")
    return launcher_argv(sys.executable, port, module, *args, in_worker=in_worker)


def targets(ctx: StackContext) -> dict[str, str]:
    """Every registered target so far (job -> base URL)."""
    return dict(ctx.values.get(TARGETS, {}))
