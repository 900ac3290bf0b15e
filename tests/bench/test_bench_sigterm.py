"""A benchmark run stopped with SIGTERM stops everything it started.

The runner starts each benchmark in a child of its own session (so its peak memory is its
own), and the child starts servers and emulators. Terminating the runner once left all of them
running (an emulator and five gunicorn servers, found by hand after ``pkill``). Every process
of the run is found here by a marker in its environment, which children inherit.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(180)


def _marked(marker: str) -> dict[int, str]:
    """pid -> command line of every live process whose environment holds ``marker``."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker.encode() not in (entry / "environ").read_bytes():
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if state != "Z":  # a zombie has stopped; only its parent's wait is missing
            found[int(entry.name)] = cmdline
    return found


def test_sigterm_to_the_runner_stops_the_benchmark_and_its_servers(tmp_path: Path) -> None:
    """The ingest group (minutes long: it cannot end on its own within the test's wait) is
    terminated once its servers run."""
    marker = f"EDP_BENCH_SIGTERM_TEST={uuid.uuid4().hex}"
    key, value = marker.split("=")
    runner = subprocess.Popen(
        [sys.executable, "-m", "edp_tools.bench", "ingest", "--out", str(tmp_path)],
        env={**os.environ, key: value},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 90
        while not any("gunicorn" in c for c in _marked(marker).values()):
            assert runner.poll() is None, "the benchmark ended before its servers were seen"
            assert time.monotonic() < deadline, "the ingest benchmark's servers did not start"
            time.sleep(0.2)
        runner.send_signal(signal.SIGTERM)
        assert runner.wait(timeout=60) == 128 + signal.SIGTERM
        deadline = time.monotonic() + 30
        while _marked(marker) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _marked(marker) == {}
    finally:
        for pid in _marked(marker):
            os.kill(pid, signal.SIGKILL)
        runner.kill()
        runner.wait()
