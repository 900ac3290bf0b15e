"""Waiting for ``edp dev`` started by a test (tests/local, tests/observability)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from edp_tools.local.processes import wait_until


def wait_dev_ready(
    proc: subprocess.Popen[str], state: Path, timeout: float = 180
) -> dict[str, Any]:
    """``dev.json`` once ``edp dev`` wrote it (the stack is up); fails with its output if it
    exited first."""
    state_file = state / "dev.json"
    wait_until(
        lambda: proc.poll() is not None or state_file.exists(),
        timeout=timeout,
        what="edp dev to be ready",
    )
    if proc.poll() is not None:
        output, _ = proc.communicate()
        pytest.fail(f"edp dev exited with {proc.returncode}:\n{output}")
    doc: dict[str, Any] = json.loads(state_file.read_text())
    return doc
