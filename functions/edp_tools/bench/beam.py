"""Beam stream-load benchmarks: the dedup's throughput on FnApiRunner, against the design it
replaced (``beam.dedup.*``).

apache-beam lives in its own venv (``.nox/beam``, built by ``tests/beam/beam_venv.py`` on first
use), so this group runs :mod:`edp_tools.bench._beam_dedup` there as a subprocess and reads its
JSON. Bars: at 10 k ids per window the dedup is >= 10x the replaced one and >= 5,000 events/s on
one shard. Per-event_id keyed state (Beam's ``DeduplicatePerKey``) is measured at 1 k ids as
the evidence for the design (see ``beam/README.md``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edp.errors import EdpError
from edp_tools.bench import Bar, benchmark

REPO = Path(__file__).resolve().parents[3]
_TIMEOUT_S = 1800


def beam_python() -> Path:
    """The Beam venv's python (built with uv when missing, by the tests' own helper)."""
    helper = REPO / "tests" / "beam" / "beam_venv.py"
    if not helper.exists():
        raise EdpError("the Beam benchmarks run from a source checkout (tests/beam/beam_venv.py)")
    done = subprocess.run(
        [sys.executable, str(helper)], capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        raise EdpError(f"building the Beam venv failed: {done.stderr[-2000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


@benchmark(
    "beam",
    bars=[
        Bar("beam.dedup.events_per_s_10k", ">=", 5000, unit="events/s"),
        Bar("beam.dedup.speedup_10k", ">=", 10, unit="x"),
    ],
    units={
        "beam.dedup.events_per_s_1k": "events/s",
        "beam.dedup.baseline_events_per_s_1k": "events/s",
        "beam.dedup.baseline_events_per_s_10k": "events/s",
        "beam.dedup.per_event_id_events_per_s_1k": "events/s",
    },
)
def bench_beam() -> dict[str, float]:
    """Dedup events/s on FnApiRunner, one shard, 1 k and 10 k ids per window."""
    python = beam_python()
    done = subprocess.run(
        [
            str(python),
            "-m",
            "edp_tools.bench._beam_dedup",
            "1000:current,baseline,per_event_id",
            "10000:current,baseline",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise EdpError(f"the Beam dedup benchmark failed: {done.stderr[-3000:]}")
    figures: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    figures["beam.dedup.speedup_10k"] = round(
        figures["beam.dedup.events_per_s_10k"] / figures["beam.dedup.baseline_events_per_s_10k"], 1
    )
    return figures
