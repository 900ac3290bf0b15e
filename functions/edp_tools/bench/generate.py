"""``generate.*``: one full default day (2.84 M events) straight into a fresh DuckDB file.

The bar: ``edp generate`` writes one 2.84 M-event day into DuckDB in under 60 s.
``generate.day_seconds`` is the wall time of generation + load (catalogue, population, the
day's rows, ``load_arrow`` into ``raw.user_events`` in 500 k-row chunks, each chunk's Arrow
columns built just before it is loaded); ``generate.day_events`` the rows written;
``generate.rss_mib`` the benchmark process's peak RSS (generator + embedded DuckDB);
``generate.cpu_seconds`` its user + system CPU time over the same span (all threads), which
tells a slow wall time on a busy machine from a real regression.
"""

from __future__ import annotations

import os
import resource
import tempfile
import time
from datetime import date
from pathlib import Path

from edp.errors import EdpError
from edp_tools.bench import Bar, benchmark

BENCH_DAY = date(2026, 11, 24)  # a Tuesday: weekday factor 1.0


@benchmark(
    "generate",
    bars=[Bar("generate.day_seconds", "<", 60, unit="s", source="generator throughput")],
    units={
        "generate.events_per_s": "events/s",
        "generate.day_events": "events",
        "generate.rss_mib": "MiB",
        "generate.cpu_seconds": "s",
    },
)
def bench_generate() -> dict[str, float]:
    """One default day of traffic into a fresh DuckDB warehouse file."""
    from edp.contracts.catalog import load_catalog
    from edp.settings import Settings
    from edp.warehouse import get_warehouse
    from edp_tools.bench.rss import peak_rss_mib_of_pid
    from edp_tools.generator import Generator, GeneratorConfig
    from edp_tools.generator.sinks import RAW_EVENTS, write_warehouse

    with tempfile.TemporaryDirectory(prefix="edp-bench-generate-") as tmp:
        settings = Settings(
            warehouse="duckdb", state_dir=Path(tmp), duckdb_path=Path(tmp) / "warehouse.duckdb"
        )
        warehouse = get_warehouse(settings)
        warehouse.create_tables([load_catalog().table(RAW_EVENTS)])
        try:
            cpu_before = _cpu_seconds()
            started = time.perf_counter()
            generator = Generator(GeneratorConfig(start=BENCH_DAY, seed=42))
            day = generator.day(0)
            written = write_warehouse(warehouse, day)
            elapsed = time.perf_counter() - started
            cpu = _cpu_seconds() - cpu_before
            counted = warehouse.query(
                "SELECT COUNT(*) AS n FROM raw.user_events WHERE DATE(event_timestamp) >= @d",
                {"d": BENCH_DAY},
            ).scalar()
        finally:
            warehouse.close()
    if int(counted) != written:
        raise EdpError(f"wrote {written} rows but the warehouse has {counted}")
    return {
        "generate.day_seconds": round(elapsed, 2),
        "generate.cpu_seconds": round(cpu, 2),
        "generate.events_per_s": round(written / elapsed),
        "generate.day_events": float(written),
        "generate.rss_mib": round(peak_rss_mib_of_pid(os.getpid())),
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
