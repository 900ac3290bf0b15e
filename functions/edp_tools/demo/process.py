"""``edp demo`` in a fresh Python process, as a user runs it (the benchmarks and the tests).

The demo starts its own emulator, database and warehouse in its state folder, so nothing of
the caller's environment that points elsewhere (``EDP_*``, ``PUBSUB_EMULATOR_HOST``) is passed
on.

Example (starts real services)::

    run = run_demo_process("--size", "small", folder=Path("/tmp/demo"), timeout=600)
    assert run.returncode == 0, run.stderr
    run.figures["accounting"]["balances"]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edp.settings import Settings
from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse


@dataclass(frozen=True)
class DemoProcess:
    """What one ``edp demo`` process left: its report folder, state folder and exit."""

    out: Path
    state: Path
    returncode: int
    stderr: str
    seconds: float

    @property
    def figures(self) -> dict[str, Any]:
        """``report.json``."""
        return dict(json.loads((self.out / "report.json").read_text()))

    def warehouse(self) -> DuckDBWarehouse:
        """The DuckDB file the run left behind, read-only."""
        settings = Settings(_env_file=None, EDP_STATE_DIR=str(self.state))
        return DuckDBWarehouse(self.state / "warehouse.duckdb", settings=settings, read_only=True)


def demo_argv(out: Path, state: Path, *options: str) -> list[str]:
    """The command line of ``edp demo <options>`` writing to ``out`` with state in ``state``."""
    return [sys.executable, "-m", "edp_tools.cli.main", "demo", *options,
            "--out", str(out), "--state-dir", str(state)]  # fmt: skip


def demo_env() -> dict[str, str]:
    """This process's environment without what would point the demo at other services."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("EDP_") and k != "PUBSUB_EMULATOR_HOST"
    }


def run_demo_process(*options: str, folder: Path, timeout: float) -> DemoProcess:
    """Run ``edp demo <options>`` to the end (``folder``/out and ``folder``/state)."""
    out, state = folder / "out", folder / "state"
    started = time.perf_counter()
    proc = subprocess.run(
        demo_argv(out, state, *options),
        env=demo_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return DemoProcess(out, state, proc.returncode, proc.stderr, time.perf_counter() - started)
