"""A process forked by a module run under ``edp_tools.local.with_parent`` dies with its parent,
as uvicorn's workers must when ``edp dev`` (and so the gunicorn master) is killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from edp_tools.local.processes import wait_until
from edp_tools.local.with_parent import argv_with_parent

FORKER = """
import os, sys, time
child = os.fork()
if child == 0:
    time.sleep(120)  # a worker that never checks on its parent
    os._exit(0)
print(child, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped


def _forked_child_outlives_kill_9(tmp_path: Path, *, guarded: bool) -> bool:
    (tmp_path / "forker.py").write_text(FORKER)
    argv = [sys.executable, "-m", "forker"]
    if guarded:
        argv = argv_with_parent(sys.executable, "forker")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    parent = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    try:
        wait_until(lambda: not _alive(child), timeout=3, what="the forked child to die")
    except Exception:
        os.kill(child, signal.SIGKILL)
        return True
    return False


def test_a_forked_child_dies_with_its_killed_parent(tmp_path: Path) -> None:
    assert not _forked_child_outlives_kill_9(tmp_path, guarded=True)


def test_without_the_launcher_it_would_outlive_it(tmp_path: Path) -> None:
    """The control: the same child, started without the launcher, survives (the bug fixed)."""
    assert _forked_child_outlives_kill_9(tmp_path, guarded=False)
