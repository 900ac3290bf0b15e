"""``reliability.chaos.*``: the chaos demo (``edp demo --chaos --size small``), measured.

One run of the real command in a fresh process and scratch folder: during the replay it
SIGKILLs the stream loader, the CDC flusher, the CDC reader and the Pub/Sub emulator, and
restarts PostgreSQL (:mod:`edp_tools.demo.chaos`). The figures are the run's ``report.json``
``chaos`` block, computed from DuckDB and PostgreSQL after the faults:

* ``reliability.chaos.lost`` (bar == 0): accepted events missing from ``raw.user_events`` +
  CDC keys whose staging row is missing, extra or different from the PostgreSQL source;
* ``reliability.chaos.duplicates_in_staging`` (bar == 0): repeated event_ids in
  ``staging.user_events`` + repeated keys in the CDC staging tables;
* ``reliability.chaos.recovery_s.<fault>``: seconds from the fault to its data path moving data
  again (``not_recovered`` counts faults that did not within 90 s);
* the parts of ``lost``, the events never answered, and the supervisor's unplanned restarts.

A non-zero exit of the demo is not an error here when it only reports lost or duplicated rows
(that is the figure); any other failure is.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from edp.errors import EdpError
from edp_tools.bench import Bar, benchmark
from edp_tools.demo.process import run_demo_process


@benchmark(
    "reliability.chaos",
    bars=[
        Bar("reliability.chaos.lost", "<=", 0, source="nothing lost under faults"),
        Bar("reliability.chaos.duplicates_in_staging", "<=", 0, source="no duplicates"),
    ],
    units={
        "reliability.chaos.lost_events": "events",
        "reliability.chaos.lost_cdc": "rows",
        "reliability.chaos.unanswered": "events",
        "reliability.chaos.supervisor_restarts": "restarts",
        "reliability.chaos.recovery_s.stream-loader": "s",
        "reliability.chaos.recovery_s.cdc-flush": "s",
        "reliability.chaos.recovery_s.cdc-reader": "s",
        "reliability.chaos.recovery_s.pubsub": "s",
        "reliability.chaos.recovery_s.postgres": "s",
        "reliability.chaos.seconds": "s",
    },
)
def bench_chaos() -> dict[str, float]:
    """``edp demo --chaos --size small`` once; the loss checks and recovery times."""
    with tempfile.TemporaryDirectory(prefix="edp-bench-chaos-") as tmp:
        run = run_demo_process(
            "--chaos", "--size", "small", "--etl", "calls", folder=Path(tmp), timeout=1800
        )
        if not (run.out / "report.json").exists():
            raise EdpError(f"edp demo --chaos exited {run.returncode}: {run.stderr[-3000:]}")
        figures, seconds = run.figures, run.seconds
    return chaos_figures(figures["chaos"], seconds)


def chaos_figures(chaos: dict[str, object], seconds: float) -> dict[str, float]:
    """The benchmark keys from a run's ``report.json`` ``chaos`` block.

    Example:
        >>> c = {"lost": 0, "lost_events": 0, "lost_cdc": 0, "duplicates_in_staging": 0,
        ...      "unanswered": 0, "restarts": [], "faults": [
        ...      {"target": "pubsub", "recovered_s": 7.5}, {"target": "postgres",
        ...      "recovered_s": None}]}
        >>> f = chaos_figures(c, 200.0)
        >>> f["reliability.chaos.recovery_s.pubsub"], f["reliability.chaos.not_recovered"]
        (7.5, 1.0)
    """
    faults = chaos.get("faults") or []
    restarts = chaos.get("restarts") or []
    assert isinstance(faults, list) and isinstance(restarts, list)
    out = {
        f"reliability.chaos.{key}": float(chaos[key])  # type: ignore[arg-type]
        for key in ("lost", "lost_events", "lost_cdc", "duplicates_in_staging", "unanswered")
    }
    out["reliability.chaos.supervisor_restarts"] = float(len(restarts))
    out["reliability.chaos.not_recovered"] = float(
        sum(1 for f in faults if f.get("recovered_s") is None)
    )
    for fault in faults:
        if fault.get("recovered_s") is not None:
            out[f"reliability.chaos.recovery_s.{fault['target']}"] = float(fault["recovered_s"])
    out["reliability.chaos.seconds"] = round(seconds, 1)
    return out
