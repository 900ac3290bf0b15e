"""``edp dev`` runs the whole stack, and Ctrl-C (or SIGTERM) leaves no process behind."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
from tests.dev_stack import wait_dev_ready

from edp_tools.local.components.functions import entry_points
from edp_tools.local.processes import port_open, wait_until


@pytest.fixture
def state() -> Iterator[Path]:
    """A state folder outside pytest's 0700 temp root (as root, PostgreSQL runs as another user
    that must reach it, and a concurrent pytest session resets that root's mode)."""
    folder = Path(tempfile.mkdtemp(prefix="edp-dev-test-"))
    try:
        yield folder / "state"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _dev(state: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "EDP_STATE_DIR": str(state), "GOOGLE_CLOUD_PROJECT": "edp-dev-test"}
    env.pop("PUBSUB_EMULATOR_HOST", None)
    env.pop("EDP_DUCKDB_PATH", None)
    return subprocess.Popen(
        [sys.executable, "-m", "edp_tools.cli.main", "dev", "--port-base", "0", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def _children_of(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == pid:
            out.append(int(entry.name))
    return out


def test_dev_serves_the_stack_and_ctrl_c_leaves_no_process(state: Path) -> None:
    proc = _dev(state)
    try:
        doc = wait_dev_ready(proc, state)
        assert doc["ready"] is True
        assert doc["pid"] == proc.pid
        pids: dict[str, int] = doc["processes"]
        assert {"pubsub-emulator", "postgres"} <= set(pids)
        assert {f"fn:{fn}" for fn in entry_points()} <= set(pids)
        for pid in pids.values():
            assert not _group_gone(pid)
        # The services are real: PostgreSQL answers, every function listens.
        endpoints = doc["endpoints"]
        conn = psycopg2.connect(endpoints["postgres"])
        conn.close()
        for fn in entry_points():
            url = urllib.parse.urlsplit(endpoints[f"fn:{fn}"])
            assert url.hostname is not None and url.port is not None
            assert port_open(url.hostname, url.port), fn
        assert doc["env"]["PUBSUB_EMULATOR_HOST"] == endpoints["pubsub"]
        # The dashboards page renders the Cloud Monitoring dashboards from local scrapes.
        with urllib.request.urlopen(endpoints["dashboards"] + "d/event-throughput") as page:
            assert b"Events accepted / s by type" in page.read()

        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
        assert "stopped pubsub" in output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for name, pid in pids.items():
        assert _group_gone(pid), f"{name} (process group {pid}) survived"
    assert _children_of(proc.pid) == []
    assert not (state / "dev.json").exists()


def test_sigterm_stops_the_stack_too(state: Path) -> None:
    proc = _dev(state, "--only", "pubsub", "--only", "postgres")
    try:
        pids: dict[str, int] = wait_dev_ready(proc, state)["processes"]
        assert set(pids) == {"pubsub-emulator", "postgres"}
        proc.terminate()
        output, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for name, pid in pids.items():
        assert _group_gone(pid), f"{name} (process group {pid}) survived"
    assert _children_of(proc.pid) == []


def test_even_kill_9_of_edp_dev_leaves_no_process(state: Path) -> None:
    # No cleanup code runs on SIGKILL: the kernel's parent-death signal must take the children
    # down, and their own children (PostgreSQL backends, gunicorn workers) follow them.
    proc = _dev(state, "--only", "pubsub", "--only", "postgres", "--only", "functions")
    try:
        pids: dict[str, int] = wait_dev_ready(proc, state)["processes"]
        assert "postgres" in pids
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for name, pid in pids.items():
        wait_until(lambda pid=pid: _group_gone(pid), timeout=60, what=f"{name} to die")


def test_a_second_dev_on_the_same_state_folder_is_refused(state: Path) -> None:
    first = _dev(state, "--only", "pubsub")
    try:
        wait_dev_ready(first, state)
        second = _dev(state, "--only", "pubsub")
        output, _ = second.communicate(timeout=120)
        assert second.returncode == 1
        assert "already running" in output
        assert first.poll() is None
        assert (state / "dev.json").exists()
    finally:
        first.terminate()
        first.communicate(timeout=120)


def test_one_sigterm_stops_dev_even_in_the_middle_of_a_health_check(state: Path) -> None:
    # With no pause between health checks, the signal almost always lands inside one; a stop
    # request raised as an ordinary Exception was swallowed there ("a broken health check is
    # itself unhealthy") and edp dev ran on. Three rounds, one SIGTERM each.
    for _ in range(3):
        proc = _dev(state, "--only", "pubsub", "--interval", "0")
        try:
            wait_dev_ready(proc, state)
            proc.send_signal(signal.SIGTERM)
            output, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        assert "stopping" in output
        assert "stopped pubsub" in output
        assert not (state / "dev.json").exists()


def test_dev_check_starts_reports_and_stops(state: Path) -> None:
    proc = _dev(state, "--check", "--only", "pubsub", "--only", "topology")
    output, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, output
    assert "topics" in output
    assert "stopped pubsub" in output
    assert not (state / "dev.json").exists()


def test_dev_refuses_unknown_components(state: Path) -> None:
    proc = _dev(state, "--check", "--only", "nope")
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "unknown component" in output
