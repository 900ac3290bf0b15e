"""The Cloud Trace stand-in as the ingest benchmark runs it: a process of its own, counting.

The real exporter (``EDP_TRACES_EXPORTER=cloud_trace`` pointed at the stand-in by
``EDP_TRACES_API_ENDPOINT``) writes three spans; the process's count file says 3, and SIGTERM
stops it cleanly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edp.observability import tracing
from edp.settings import get_settings
from edp_tools.bench._cloud_trace import spans_received
from edp_tools.local.processes import free_port, port_open, wait_until

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def standin(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, Path]]:
    port, count_file = free_port(), tmp_path / "spans"
    argv = [sys.executable, "-m", "edp_tools.bench._cloud_trace", "--port", str(port)]
    proc = subprocess.Popen([*argv, "--count-file", str(count_file)])
    try:
        wait_until(lambda: port_open("127.0.0.1", port), timeout=20, what="the stand-in")
        yield proc, port, count_file
    finally:
        proc.kill()
        proc.wait()


def test_the_standin_process_counts_what_the_real_exporter_writes(
    standin: tuple[subprocess.Popen[bytes], int, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    proc, port, count_file = standin
    assert spans_received(count_file) == 0
    monkeypatch.setenv("EDP_TRACES_EXPORTER", "cloud_trace")
    monkeypatch.setenv("EDP_TRACES_API_ENDPOINT", f"127.0.0.1:{port}")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "edp-standin-test")
    get_settings.cache_clear()
    tracing.reset_for_tests()
    try:
        tracer = tracing.get_tracer("test")
        for name in ("a", "b", "c"):
            tracer.start_span(name).end()
        tracing.flush_traces()
        assert spans_received(count_file) == 3
    finally:
        tracing.reset_for_tests()
        get_settings.cache_clear()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 0
