"""ManagedProcess: own process group, group-wide stop, and the safety nets."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from edp_tools.local.processes import ManagedProcess, ProcessError, free_port, port_open, wait_until


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for_file(path: Path) -> str:
    wait_until(lambda: path.exists() and path.read_text().strip() != "", timeout=30, what=str(path))
    return path.read_text().strip()


SPAWNER = textwrap.dedent(
    """
    import subprocess, sys, time
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    open(sys.argv[1], "w").write(str(child.pid))
    time.sleep(600)
    """
)


def test_stop_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    proc = ManagedProcess("spawner", [sys.executable, "-c", SPAWNER, str(pidfile)]).start()
    grandchild = int(_wait_for_file(pidfile))
    assert proc.pgid == proc.pid
    assert os.getpgid(grandchild) == proc.pgid
    assert proc.pgid != os.getpgid(0)
    proc.stop()
    assert not proc.running
    assert not _alive(grandchild)
    assert proc.pgid is not None and not _group_alive(proc.pgid)


def test_a_child_ignoring_the_polite_signal_is_killed(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        f"open({str(ready)!r}, 'w').write('1')\n"
        "time.sleep(600)\n"
    )
    proc = ManagedProcess("stubborn", [sys.executable, "-c", code], stop_timeout=0.5).start()
    _wait_for_file(ready)
    returncode = proc.stop()
    assert returncode == -signal.SIGKILL


def test_wait_ready_fails_fast_with_the_log_tail_when_the_child_dies() -> None:
    proc = ManagedProcess(
        "crasher", [sys.executable, "-c", "print('boom: bad config'); raise SystemExit(3)"]
    ).start()
    with pytest.raises(ProcessError, match="boom: bad config") as info:
        proc.wait_ready(lambda: False, timeout=60)
    assert "exited with code 3" in str(info.value)
    assert not proc.running


def test_wait_until_times_out() -> None:
    with pytest.raises(ProcessError, match="timed out"):
        wait_until(lambda: False, timeout=0.2, what="nothing")


def test_ports() -> None:
    port = free_port()
    assert not port_open("127.0.0.1", port)
    server = ManagedProcess(
        "http", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    )
    with server:
        server.wait_ready(lambda: port_open("127.0.0.1", port), timeout=30)
        assert port_open("127.0.0.1", port)
    assert not port_open("127.0.0.1", port)


PARENT = textwrap.dedent(
    """
    import sys, time
    from edp_tools.local.processes import ManagedProcess
    proc = ManagedProcess("child", [sys.executable, "-c", "import time; time.sleep(600)"]).start()
    open(sys.argv[1], "w").write(str(proc.pid))
    if sys.argv[2] == "exit":
        sys.exit(0)          # no stop(): the atexit hook must do it
    time.sleep(600)          # the test SIGKILLs us: the kernel's parent-death signal must do it
    """
)


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_children_do_not_outlive_their_parent(tmp_path: Path, how: str) -> None:
    pidfile = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(pidfile), how])
    try:
        child = int(_wait_for_file(pidfile))
        if how == "sigkill":
            parent.kill()
        parent.wait(timeout=60)
        wait_until(lambda: not _alive(child), timeout=30, what="the orphan to die")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
