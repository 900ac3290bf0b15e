"""The benchmark harness: registry, selection, report merging and rendering, peak RSS."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import edp_tools.bench as bench
from edp.errors import ConfigError, EdpError
from edp_tools.bench import Bar, benchmark, select
from edp_tools.bench.report import machine_info, merge, render_markdown
from edp_tools.bench.rss import call_with_peak_rss, peak_rss_mib_of_pid, run_with_peak_rss
from edp_tools.bench.runner import main

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def toy_benchmarks() -> Iterator[None]:
    """Two throwaway benchmarks in the global registry, removed afterwards."""
    saved = dict(bench.discover())  # import the real modules first: restoring keeps them

    @benchmark("toyfast", bars=[Bar("toyfast.ms", "<", 10, unit="ms")])
    def fast() -> dict[str, float]:
        return {"toyfast.ms": 3.0, "toyfast.ops": 1_000.0}

    @benchmark("toyslow", bars=[Bar("toyslow.ms", "<", 10, unit="ms")], units={"toyslow.ms": "ms"})
    def slow() -> dict[str, float]:
        return {"toyslow.ms": 25.0}

    @benchmark("toybroken")
    def broken() -> dict[str, float]:
        return {"elsewhere.key": 1.0}

    yield
    bench._REGISTRY.clear()
    bench._REGISTRY.update(saved)


def test_bars_compare_as_declared() -> None:
    assert Bar("k", "<", 60).passes(59.9) and not Bar("k", "<", 60).passes(60)
    assert Bar("k", ">=", 1000).passes(1000) and not Bar("k", ">", 1000).passes(1000)
    assert Bar("k", "<", 60, unit="s").describe() == "< 60 s"


def test_selection_by_prefix_and_key(toy_benchmarks: None) -> None:
    assert [b.name for b in select(["toyf"])] == ["toyfast"]
    assert [b.name for b in select(["toyslow.ms"])] == ["toyslow"]
    with pytest.raises(ConfigError):
        select(["nosuchbench"])


def test_a_name_registered_twice_by_different_code_is_refused(toy_benchmarks: None) -> None:
    with pytest.raises(ConfigError):

        @benchmark("toyfast")
        def other() -> dict[str, float]:
            return {}


def test_generate_benchmark_is_discovered_with_its_bar() -> None:
    found = bench.discover()
    assert "generate" in found
    assert found["generate"].bars[0] == Bar(
        "generate.day_seconds", "<", 60, unit="s", source="generator throughput"
    )


def test_merge_keeps_figures_of_benchmarks_not_rerun() -> None:
    old = merge({}, {"a.x": 1.0, "b.y": 2.0}, benchmark="a", machine={}, now="2026-01-01T00:00:00")
    new = merge(old, {"a.x": 5.0}, benchmark="a", machine={"cpu": "c"}, now="2026-02-01T00:00:00")
    assert new["figures"] == {"a.x": 5.0, "b.y": 2.0}
    assert new["measured"]["a.x"]["date"] == "2026-02-01T00:00:00"
    assert new["measured"]["b.y"]["date"] == "2026-01-01T00:00:00"
    assert new["machine"] == {"cpu": "c"} and new["date"] == "2026-02-01T00:00:00"


def test_markdown_shows_machine_pass_fail_and_unmeasured_bars() -> None:
    doc = merge({}, {"g.s": 12.5, "h.s": 90.0}, benchmark="g", machine=machine_info(), now="D")
    bars = {
        "g.s": Bar("g.s", "<", 60, unit="s"),
        "h.s": Bar("h.s", "<", 60, unit="s"),
        "i.s": Bar("i.s", "<", 1, unit="s"),
    }
    text = render_markdown(doc, bars, {})
    assert "| `g.s` | (not explained) | 12.5 | s | < 60 s | pass | D |" in text
    assert "| `h.s` | (not explained) | 90 | s | < 60 s | **FAIL** | D |" in text
    assert "| `i.s` | (not explained) | — | s | < 1 s | not measured |  |" in text
    assert "Bars: 1 pass, 1 fail, 1 not measured." in text
    assert f"{machine_info()['cores']} cores" in text


def test_runner_writes_both_reports_and_keeps_old_keys(
    toy_benchmarks: None, tmp_path: Path
) -> None:
    (tmp_path / "benchmarks.json").write_text(
        json.dumps({"figures": {"other.key": 7.0}, "measured": {"other.key": {"date": "old"}}})
    )
    assert main(["toyfast", "toyslow", "--in-process", "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "benchmarks.json").read_text())
    assert doc["figures"] == {"other.key": 7.0, "toyfast.ms": 3.0, "toyfast.ops": 1000.0,
                              "toyslow.ms": 25.0}  # fmt: skip
    assert set(doc["machine"]) == {"cpu", "cores", "ram_gib", "os", "python"}
    assert all(len(v["before"].split()) == 3 for v in doc["load"].values())
    md = (tmp_path / "benchmarks.md").read_text()
    assert "| `toyslow.ms` | (not explained) | 25 | ms | < 10 ms | **FAIL** |" in md
    assert "| `toyfast.ms` | (not explained) | 3 | ms | < 10 ms | pass |" in md
    # the machine's load average before and after each group is on record
    assert set(doc["load"]) == {"toyfast", "toyslow"}
    assert "## Machine load per benchmark group" in md


def test_a_benchmark_returning_foreign_keys_fails_the_run(
    toy_benchmarks: None, tmp_path: Path
) -> None:
    assert main(["toybroken", "toyfast", "--in-process", "--out", str(tmp_path)]) == 1
    doc = json.loads((tmp_path / "benchmarks.json").read_text())
    assert "elsewhere.key" not in doc["figures"] and "toyfast.ms" in doc["figures"]


def test_list_runs_in_a_fresh_interpreter_and_imports_every_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edp_tools.bench", "--list"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "generate" in out and "generate.day_seconds < 60 s" in out


def test_a_module_that_does_not_import_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = pkgutil.iter_modules

    def with_a_broken_one(path: Any) -> Iterator[Any]:
        yield from real(path)
        yield pkgutil.ModuleInfo(None, "no_such_benchmark_module", False)  # type: ignore[arg-type]

    monkeypatch.setattr(pkgutil, "iter_modules", with_a_broken_one)
    found = bench.discover()
    assert "generate" in found
    assert "no_such_benchmark_module" in bench.broken_modules()
    assert main(["--list"]) == 1
    monkeypatch.setattr(pkgutil, "iter_modules", real)
    bench.discover()
    assert bench.broken_modules() == {}


def test_unknown_selector_exits_2(tmp_path: Path) -> None:
    assert main(["nosuchbench", "--out", str(tmp_path)]) == 2
    assert not (tmp_path / "benchmarks.json").exists()


def test_peak_rss_of_a_command_sees_its_allocation() -> None:
    small = run_with_peak_rss([sys.executable, "-c", "pass"])
    big = run_with_peak_rss(
        [sys.executable, "-c", "x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096])"]
    )
    assert small.returncode == big.returncode == 0
    assert big.peak_rss_mib - small.peak_rss_mib > 150


def test_peak_rss_reports_exit_codes_and_kills_on_timeout() -> None:
    assert run_with_peak_rss([sys.executable, "-c", "raise SystemExit(3)"]).returncode == 3
    with pytest.raises(EdpError):
        run_with_peak_rss([sys.executable, "-c", "import time; time.sleep(30)"], timeout_s=0.5)


def _allocate(mib: int) -> int:
    block = bytearray(mib * 2**20)
    block[::4096] = b"1" * len(block[::4096])
    return len(block) // 2**20


def _fail() -> None:
    raise ValueError("boom")


def test_call_with_peak_rss_runs_in_a_fresh_child() -> None:
    result, peak = call_with_peak_rss(_allocate, 120)
    assert result == 120 and peak > 120
    with pytest.raises(EdpError, match="boom"):
        call_with_peak_rss(_fail)


def test_peak_rss_of_a_live_pid() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; print('ready', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
        assert 3 < peak_rss_mib_of_pid(proc.pid) < 500
    finally:
        proc.communicate(b"")
    with pytest.raises(EdpError):
        peak_rss_mib_of_pid(proc.pid)


def test_every_registered_bar_key_is_explained() -> None:
    from edp_tools.bench import all_bars
    from edp_tools.bench.meanings import meaning

    unexplained = sorted(key for key in all_bars() if meaning(key) is None)
    assert not unexplained, f"add a line to edp_tools/bench/meanings.py for {unexplained}"
