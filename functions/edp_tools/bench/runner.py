"""Run selected benchmarks, each in a fresh interpreter, and update the reports.

``python -m edp_tools.bench [prefix ...] [--out docs] [--in-process]``; ``nox -s bench -- prefix``
passes its arguments straight through. Exit status 1 when a benchmark raised (its old figures
stay in the report), 0 otherwise; a failed *bar* is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tempfile
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path

from edp.errors import ConfigError, EdpError
from edp_tools.bench import Benchmark, all_bars, broken_modules, discover, select
from edp_tools.bench.report import load, load_average, machine_info, merge, now_iso, write
from edp_tools.bench.rss import run_with_peak_rss


def _check_figures(bench: Benchmark, figures: Mapping[str, object]) -> dict[str, float]:
    """Figures as floats; keys must lie under the benchmark's name."""
    out: dict[str, float] = {}
    for key, value in figures.items():
        if not (key == bench.name or key.startswith(bench.name + ".")):
            raise ConfigError(f"benchmark {bench.name!r} returned {key!r}, outside its prefix")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{key} is {value!r}, not a number")
        if not math.isfinite(value):
            raise ConfigError(f"{key} is {value!r}, not a finite number")
        out[key] = float(value)
    if not out:
        raise ConfigError(f"benchmark {bench.name!r} returned no figures")
    return out


def run_in_process(bench: Benchmark) -> dict[str, float]:
    """Call one benchmark here and check what it returns."""
    return _check_figures(bench, bench.fn())


def run_in_child(bench: Benchmark, timeout_s: float | None = None) -> dict[str, float]:
    """Run one benchmark in a fresh ``python -m edp_tools.bench --child`` and read its figures.

    Raises:
        EdpError: the child failed or wrote no figures.
    """
    with tempfile.TemporaryDirectory(prefix="edp-bench-") as tmp:
        result = Path(tmp) / "figures.json"
        run = run_with_peak_rss(
            [
                sys.executable,
                "-m",
                "edp_tools.bench",
                "--child",
                bench.name,
                "--result",
                str(result),
            ],
            timeout_s=timeout_s,
        )
        if run.returncode != 0 or not result.exists():
            raise EdpError(f"benchmark {bench.name!r} failed (exit code {run.returncode})")
        figures = json.loads(result.read_text(encoding="utf-8"))
    return _check_figures(bench, figures)


def _child(name: str, result: Path) -> int:
    bench = discover().get(name)
    if bench is None:
        print(f"no benchmark named {name!r}", file=sys.stderr)
        return 2
    figures = run_in_process(bench)
    result.write_text(json.dumps(figures), encoding="utf-8")
    return 0


def exit_on_sigterm() -> None:
    """Make SIGTERM raise SystemExit (143), so ``finally`` blocks stop what was started."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, _exit)


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m edp_tools.bench", description=__doc__)
    parser.add_argument("selectors", nargs="*", help="benchmark names or key prefixes (all)")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="report folder")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument(
        "--in-process", action="store_true", help="run in this interpreter (no fresh child)"
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per benchmark, seconds")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child:
        return _child(args.child, args.result)
    try:
        selected = select(args.selectors)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    broken = broken_modules()
    if args.list:
        for bench in discover().values():
            bars = ", ".join(f"{b.key} {b.describe()}" for b in bench.bars)
            print(f"{bench.name:<20} {bench.module:<28} {bars}")
        for module, error in broken.items():
            print(f"{'(broken)':<20} edp_tools.bench.{module:<18} {error}")
        return 1 if broken else 0

    machine = machine_info()
    doc = load(args.out / "benchmarks.json")
    # a module that does not import fails a full run; a partial run only warns about it
    failures = [f"module edp_tools.bench.{m} does not import: {e}" for m, e in broken.items()]
    if args.selectors:
        for failure in failures:
            print(f"[bench] WARNING {failure}", file=sys.stderr)
        failures = []
    for bench in selected:
        before = load_average()
        print(f"[bench] {bench.name} ... (load average {before})", flush=True)
        try:
            figures = (
                run_in_process(bench) if args.in_process else run_in_child(bench, args.timeout)
            )
        except Exception as exc:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failures.append(f"{bench.name}: {exc}")
            continue
        after = load_average()
        for key, value in figures.items():
            print(f"[bench]   {key} = {value:g}", flush=True)
        print(f"[bench]   (load average after: {after})", flush=True)
        doc = merge(
            doc,
            figures,
            benchmark=bench.name,
            machine=machine,
            now=now_iso(),
            load={"before": before, "after": after},
        )
        write(args.out, doc, all_bars(), _units())  # after each, so a later crash keeps it
    if not doc:
        doc = {"machine": machine, "date": now_iso(), "figures": {}, "measured": {}}
    json_path, md_path = write(args.out, doc, all_bars(), _units())
    print(f"[bench] wrote {json_path} and {md_path}")
    for failure in failures:
        print(f"[bench] FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


def _units() -> dict[str, str]:
    units: dict[str, str] = {}
    for bench in discover().values():
        units.update({bar.key: bar.unit for bar in bench.bars})
        units.update(bench.units)
    return units
