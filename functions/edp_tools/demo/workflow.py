"""Run ``workflows/daily_etl.yaml`` itself in the ``workflows-emulator`` against the etl function.

The emulator pins an old fastapi/starlette that conflicts with functions-framework, so it lives
in its own venv (``.nox/workflows``, the same one ``tests/workflows`` uses), built with uv on
first use — in the background while the demo's other phases run. The emulator has no OIDC, so
``auth:`` blocks are stripped before the run (the deployed YAML keeps them), and each execution
gets a timeout (it can hang on a failing ``assign``; DESIGN.md).

Example::

    venv = EmulatorVenv(repo_root).start()          # builds in the background if needed
    outcome = run_workflow(venv.wait(), repo_root / "workflows/daily_etl.yaml",
                           etl_url, date(2026, 11, 27), lookback_days=15, execution_id="demo-1")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edp.errors import EdpError

#: Same pin as tests/workflows (keep the two in step).
EMULATOR = "workflows-emulator==1.10.0"

# Executed by the emulator venv's interpreter (it cannot import edp: different pins).
_RUNNER = r"""
import json, sys
import yaml
from workflows_emulator.main import execute_workflow
from workflows_emulator.utils import WorkflowError

def strip_auth(node):
    if isinstance(node, dict):
        return {k: strip_auth(v) for k, v in node.items() if k != "auth"}
    if isinstance(node, list):
        return [strip_auth(v) for v in node]
    return node

with open(sys.argv[1], encoding="utf-8") as handle:
    workflow = yaml.safe_load(handle)
try:
    result = execute_workflow(strip_auth(workflow), {"args": json.loads(sys.argv[2])})
except WorkflowError as err:
    print(json.dumps({"status": "failed", "error": err.payload}, default=str))
else:
    print(json.dumps({"status": "succeeded", "result": result}, default=str))
"""


class WorkflowRunError(EdpError):
    """The workflow execution failed (or the emulator could not run it)."""


class EmulatorVenv:
    """The emulator's venv under ``<root>/.nox/workflows``, built in a background thread."""

    def __init__(self, root: Path) -> None:
        self.path = root / ".nox" / "workflows"
        self.python = self.path / "bin" / "python"
        self.error: str | None = None
        self.built = False
        self.seconds = 0.0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._ensure, name="demo-wf-venv", daemon=True)

    def importable(self) -> bool:
        if not self.python.exists():
            return False
        probe = subprocess.run(
            [self.python, "-c", "import workflows_emulator.main, yaml"],
            capture_output=True,
            timeout=60,
            check=False,
        )
        return probe.returncode == 0

    def _run(self, argv: list[str | Path]) -> None:
        """One build step, killable by :meth:`stop`."""
        if self._stopped.is_set():
            raise OSError("stopped")
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )
        _, err = self._proc.communicate(timeout=600)
        if self._proc.returncode != 0:
            raise OSError(f"{argv[0]} failed: {err.decode(errors='replace')[-500:]}")

    def _ensure(self) -> None:
        started = time.monotonic()
        # Built beside the final path and renamed at the end: an interrupted build never
        # leaves a half-built venv where tests/workflows or the next demo look for it.
        tmp = self.path.with_name(f"{self.path.name}.building-{os.getpid()}")
        try:
            if self.importable():
                return
            tmp_python = tmp / "bin" / "python"
            uv = shutil.which("uv")
            if uv:
                self._run([uv, "venv", "--quiet", "--python", sys.executable, tmp])
                self._run([uv, "pip", "install", "--quiet", "--python", tmp_python, EMULATOR])
            else:
                self._run([sys.executable, "-m", "venv", tmp])
                self._run([tmp_python, "-m", "pip", "install", "--quiet", EMULATOR])
            shutil.rmtree(self.path, ignore_errors=True)
            tmp.rename(self.path)
            self.built = True
            if not self.importable():
                self.error = f"{EMULATOR} did not install into {self.path}"
        except (OSError, subprocess.SubprocessError) as exc:
            self.error = f"could not build the workflows-emulator venv: {exc}"
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
            self.seconds = time.monotonic() - started

    def stop(self) -> None:
        """Stop a build in progress (Ctrl-C); the final path is left untouched."""
        self._stopped.set()
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        self._thread.join(10)

    def start(self) -> EmulatorVenv:
        self._thread.start()
        return self

    def wait(self, timeout: float = 600.0) -> Path | None:
        """The venv's python once ready, or None (see :attr:`error`)."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.error = "the workflows-emulator venv is still building"
            return None
        return None if self.error else self.python


@dataclass
class WorkflowOutcome:
    """One workflow execution."""

    run_date: dt.date
    lookback_days: int
    execution_id: str
    result: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def run_workflow(
    python: Path,
    workflow: Path,
    etl_url: str,
    run_date: dt.date,
    *,
    lookback_days: int,
    execution_id: str,
    time_zone: str = "UTC",
    timeout_s: float = 600.0,
) -> WorkflowOutcome:
    """Execute ``workflow`` for ``run_date`` in the emulator; the steps call ``etl_url``.

    Raises:
        WorkflowRunError: The execution failed, timed out or printed no result.
    """
    argument = {"date": run_date.isoformat(), "lookback_days": lookback_days}
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("EDP_")},
        "ETL_URL": etl_url,
        "ETL_TIME_ZONE": time_zone,
        "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID": execution_id,
    }
    started = time.monotonic()
    try:
        proc = subprocess.run(
            [python, "-c", _RUNNER, str(workflow), json.dumps(argument)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise WorkflowRunError(f"workflow execution timed out after {timeout_s:.0f} s") from exc
    seconds = time.monotonic() - started
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise WorkflowRunError(f"the emulator printed no result: {proc.stderr[-1500:]}")
    doc = json.loads(lines[-1])
    if doc.get("status") != "succeeded":
        raise WorkflowRunError(f"workflow execution failed: {doc.get('error')}")
    return WorkflowOutcome(run_date, lookback_days, execution_id, dict(doc["result"]), seconds)
