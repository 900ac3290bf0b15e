"""``edp demo`` end to end at the small size, then its report in a real headless Chromium.

One module-scoped run of the real command (a subprocess: the stack, the HTTP replay, CDC, the
ETL over HTTP, the report); the tests then check what it wrote against the warehouse it left
behind, open the page in Debian's chromium over DevTools, and interrupt a second run to see
that Ctrl-C leaves no process behind.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edp_tools.demo.browser import check_report
from edp_tools.demo.process import DemoProcess, demo_argv, demo_env, run_demo_process

pytestmark = pytest.mark.slow

CHARTS = {
    "throughput",
    "funnel",
    "dau",
    "retention",
    "products",
    "freshness",
    "cdc_lag",
    "cdc_changes",
    "etl",
    "orders",
}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    yield run_demo_process("--size", "small", folder=tmp_path_factory.mktemp("demo"), timeout=600)


def test_demo_exits_zero_and_writes_the_report(demo_run: DemoProcess) -> None:
    assert demo_run.returncode == 0, demo_run.stderr[-4000:]
    for name in ("index.html", "summary.md", "report.json"):
        assert (demo_run.out / name).stat().st_size > 0
    summary = (demo_run.out / "summary.md").read_text()
    assert "| loss accounting | balances |" in summary


def test_loss_accounting_balances(demo_run: DemoProcess) -> None:
    acc = demo_run.figures["accounting"]
    assert acc["sent"] > 1000
    assert acc["unanswered"] == 0
    assert acc["sent"] == acc["accepted"] + acc["refused"]
    # every deliberately malformed event was refused, nothing valid was
    assert acc["malformed"] > 0
    assert acc["refused"] == acc["malformed"]
    assert acc["bad_topic_messages"] == acc["refused"]
    assert acc["accepted_distinct"] == acc["raw_distinct"]
    assert acc["missing_in_raw"] == 0
    assert acc["unexpected_in_raw"] == 0
    assert acc["balances"] is True


def test_report_states_the_replay_speed_and_client_latency(demo_run: DemoProcess) -> None:
    """Which way the replay kept up (on schedule, or paced by backpressure) is in the report,
    with the effective speed-up consistent with the replay's wall time."""
    figures = demo_run.figures
    nominal = 86_400 / 12.0  # the small size's replay_seconds
    assert figures["replay_speedup_nominal"] == pytest.approx(nominal)
    assert figures["replay_speedup"] == pytest.approx(86_400 / figures["replay_s"])
    assert 0 < figures["replay_speedup"] <= nominal * 1.05
    assert figures["replay_paced_s"] >= 0
    p50, p99 = figures["ingest_request_ms_p50_p99"]
    assert 0 < p50 <= p99
    summary = (demo_run.out / "summary.md").read_text()
    assert "Replay speed: the day's 24 h in" in summary
    assert ("on schedule" in summary) or ("paced to what the machine sustained" in summary)
    assert "| replay speed-up |" in summary
    assert "Replay speed: the day&#x27;s 24 h" in (demo_run.out / "index.html").read_text()


def test_report_figures_match_the_warehouse_left_behind(demo_run: DemoProcess) -> None:
    """The report's counts are the warehouse's: recount them independently."""
    figures = demo_run.figures
    wh = demo_run.warehouse()
    try:
        raw = wh.query(
            "SELECT COUNT(*) AS n, COUNT(DISTINCT event_id) AS ids, "
            "COUNTIF(loaded_at IS NOT NULL) AS streamed "
            "FROM raw.user_events WHERE event_timestamp >= TIMESTAMP '2000-01-01'"
        ).rows[0]
        runs = wh.query(
            "SELECT COUNT(*) AS n, COUNTIF(status = 'success') AS ok FROM monitoring.pipeline_runs "
            "WHERE started_at >= TIMESTAMP '2000-01-01'"
        ).rows[0]
        dau = wh.query(
            "SELECT COUNT(*) AS n FROM mart.daily_active_users "
            "WHERE report_date >= DATE '2000-01-01'"
        ).scalar()
        cdc = wh.query(
            "SELECT COUNT(*) AS n FROM raw.cdc_orders WHERE source_ts >= TIMESTAMP '2000-01-01'"
        ).scalar()
    finally:
        wh.close()
    acc = figures["accounting"]
    assert raw["streamed"] == acc["raw_rows"] == figures["live_rows"]
    assert raw["n"] == figures["history_rows"] + figures["live_rows"]
    assert raw["ids"] == raw["n"] - (acc["raw_rows"] - acc["raw_distinct"])
    assert runs["n"] >= 7 and runs["ok"] == runs["n"]  # 2 staging + 5 mart models
    assert figures["etl_mode"] in ("workflow", "calls")
    assert dau > 0
    assert cdc > 0


def test_report_draws_every_chart_in_chromium(demo_run: DemoProcess) -> None:
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required (.ci/run installs it: apt-get install chromium)")
    page = check_report(demo_run.out / "index.html")
    assert page.errors == []
    assert {c["id"] for c in page.charts} == CHARTS
    for chart in page.charts:
        assert chart["svgs"] > 0, chart
        assert chart["traces"] > 0, chart
        assert chart["values"] > 0, chart
        assert chart["marks"] > 0, chart


def _processes_with(marker: str) -> list[int]:
    """Pids whose environment or command line mention ``marker`` (the run's state folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            blob = (entry / "environ").read_bytes() + (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in blob:
            found.append(int(entry.name))
    return found


def test_ctrl_c_during_the_replay_stops_everything(tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    proc = subprocess.Popen(
        demo_argv(out, state, "--size", "small"),
        env=demo_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stderr:
        seen.append(line)
        if "replay" in line and "live over HTTP" in line:
            break
        assert time.monotonic() < deadline, "".join(seen)
    assert _processes_with(str(state)), "the stack should be running now"
    time.sleep(2.0)  # mid-replay
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=120) == 130, "".join(seen) + rest
    leftover = _processes_with(str(state))
    deadline = time.monotonic() + 10  # helpers (e.g. a forkserver) exit once their parent is gone
    while leftover and time.monotonic() < deadline:
        time.sleep(0.2)
        leftover = _processes_with(str(state))
    assert leftover == [], f"processes left behind: {leftover}"
    assert not (out / "index.html").exists()
