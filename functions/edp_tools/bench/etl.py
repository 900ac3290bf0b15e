"""``etl.*``: one synthetic 2.84 M-event day through staging and every mart on DuckDB.

The bar: under 30 s on this 2-core machine (the reference daily batch took 504 s on
BigQuery). The day is generated and loaded into a fresh DuckDB file first (not timed); the ETL
then runs in a fresh interpreter (so its peak RSS is its own): every model for the day, with
the default 3-day lookback, exactly as the daily workflow would run it (see RUN_DAY).

In the same run, the same statements run straight on DuckDB (:func:`engine_day`: the rendered
model scripts, transpiled before the clock starts, on a plain connection with the same engine
settings, against a second copy of the same prepared file; no runner, so no checks, no byte
estimates, no run records, no lineage): ``etl.day.engine_ratio`` is the runner's time over the
engine's, i.e. what the runner costs on top of the SQL.

Keys: ``etl.day.seconds`` (wall time of the whole run), ``etl.day.rss_mib`` (peak RSS of the
ETL process), ``etl.day.speedup_vs_seed`` (504 s / our seconds), ``etl.day.events``,
``etl.day.cpu_seconds`` (CPU time of the run, all threads: what the run costs when the machine
is shared), ``etl.day.engine_seconds`` / ``etl.day.engine_cpu_seconds`` /
``etl.day.engine_rss_mib`` (the same for the engine alone), ``etl.day.engine_ratio``, and
``etl.model.<model>.seconds`` per model.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

from edp_tools.bench import Bar, benchmark

BENCH_DAY = date(2026, 11, 24)  # a Tuesday (weekday factor 1.0), as the generate benchmark
# Generated days are UTC days; reporting days are KST days (UTC+9), so the generated day spans
# the KST days 11-24 and 11-25. The daily run for 11-25 (default lookback 3: 11-22..11-25)
# processes every event of it, exactly as production's 03:00 KST run would.
RUN_DAY = BENCH_DAY + timedelta(days=1)
SEED_SECONDS = 504.0  # the reference daily batch: 8 min 24 s on BigQuery


def _use_duckdb(path: Path) -> None:
    from edp.settings import get_settings

    os.environ["EDP_WAREHOUSE"] = "duckdb"
    os.environ["EDP_STATE_DIR"] = str(path.parent)
    os.environ["EDP_DUCKDB_PATH"] = str(path)
    os.environ["EDP_METRICS_EXPORTER"] = "none"
    get_settings.cache_clear()


def prepare_day(path: Path, scale: float = 1.0) -> int:
    """Create every table in a DuckDB file and load one generated day into raw.user_events."""
    from edp.settings import get_settings
    from edp.warehouse import get_warehouse
    from edp_tools.generator import Generator, GeneratorConfig
    from edp_tools.generator.sinks import write_warehouse

    _use_duckdb(path)
    warehouse = get_warehouse(get_settings())
    try:
        warehouse.create_tables()
        day = Generator(GeneratorConfig(start=BENCH_DAY, seed=42, scale=scale)).day(0)
        return int(write_warehouse(warehouse, day.table))
    finally:
        warehouse.close()


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_day(path: str) -> dict[str, float]:
    """Every model for RUN_DAY (in the child process); wall time per model and in total."""
    from edp.etl.runner import EtlRunner
    from edp.settings import get_settings
    from edp.warehouse import get_warehouse

    _use_duckdb(Path(path))
    warehouse = get_warehouse(get_settings())
    try:
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        results = EtlRunner(warehouse, trigger="bench").run(RUN_DAY)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
    finally:
        warehouse.close()
    figures = {f"etl.model.{r.model}.seconds": round(r.duration_s, 3) for r in results}
    figures["etl.day.seconds"] = round(elapsed, 2)
    # CPU time of the run (all DuckDB threads): on a shared machine wall time also measures the
    # neighbours, CPU time does not
    figures["etl.day.cpu_seconds"] = round(cpu, 2)
    figures["etl.day.staging_rows"] = float(
        next(r.rows_written for r in results if r.model == "staging.user_events")
    )
    return figures


def engine_day(path: str) -> dict[str, float]:
    """The statements of :func:`run_day`, straight on DuckDB (in the child process).

    Every model in plan order, each rendered and transpiled exactly as the runner's warehouse
    does it (before the clock starts), then executed on one plain connection opened with the
    adapter's engine settings (memory limit, threads, temp folder; session time zone UTC).
    """
    import duckdb

    from edp.etl.models import load_models, plan
    from edp.etl.runner import model_params, render, window
    from edp.settings import get_settings
    from edp.warehouse.dialect import to_duckdb
    from edp_tools.warehouse.duckdb_adapter import datasets_of, engine_config

    _use_duckdb(Path(path))
    settings = get_settings()
    datasets = datasets_of(settings)
    scripts = []
    for model in plan(load_models(), None):
        start, end = window(model, RUN_DAY, settings.etl_lookback_days)
        params = model_params(settings, model, start, end)
        statements = [
            (s.sql, {name: params[name] for name in s.params})
            for s in to_duckdb(render(model), datasets)
        ]
        scripts.append((model.ref, statements))
    conn = duckdb.connect(path, config=engine_config(settings))
    try:
        conn.execute("SET TimeZone = 'UTC'")
        cpu_before = _cpu_seconds()
        started = time.perf_counter()
        for _ref, statements in scripts:
            for sql, bound in statements:
                conn.execute(sql, bound)
        elapsed = time.perf_counter() - started
        cpu = _cpu_seconds() - cpu_before
        (count,) = to_duckdb(
            "SELECT COUNT(*) AS n FROM staging.user_events"
            " WHERE event_date BETWEEN @start AND @end",
            datasets,
        )
        window_start = RUN_DAY - timedelta(days=settings.etl_lookback_days)
        staged = conn.execute(count.sql, {"start": window_start, "end": RUN_DAY}).fetchone()
    finally:
        conn.close()
    return {
        "etl.day.engine_seconds": round(elapsed, 2),
        "etl.day.engine_cpu_seconds": round(cpu, 2),
        "engine_staging_rows": float(staged[0] if staged else 0),
    }


@benchmark(
    "etl",
    bars=[
        Bar("etl.day.seconds", "<", 30, unit="s", source="daily ETL run time"),
        Bar("etl.day.rss_mib", "<", 1500, unit="MiB", source="performance issue: bounded engine"),
        Bar(
            "etl.day.engine_ratio",
            "<=",
            1.5,
            unit="x",
            source="performance issue: the runner costs at most half the SQL on top",
        ),
    ],
    units={
        "etl.day.rss_mib": "MiB",
        "etl.day.cpu_seconds": "s",
        "etl.day.engine_seconds": "s",
        "etl.day.engine_cpu_seconds": "s",
        "etl.day.engine_rss_mib": "MiB",
        "etl.day.speedup_vs_seed": "x",
        "etl.day.events": "events",
        "etl.day.staging_rows": "rows",
    },
)
def bench_etl() -> dict[str, float]:
    """One default generated day through staging + all marts on DuckDB."""
    from edp_tools.bench.rss import call_with_peak_rss

    with tempfile.TemporaryDirectory(prefix="edp-bench-etl-") as tmp:
        path = Path(tmp) / "runner" / "warehouse.duckdb"
        events = prepare_day(path)
        # the engine-only run gets its own copy of the same prepared day (and its own temp dir)
        engine_path = Path(tmp) / "engine" / "warehouse.duckdb"
        engine_path.parent.mkdir()
        shutil.copyfile(path, engine_path)
        figures, peak_mib = call_with_peak_rss(run_day, str(path))
        engine, engine_peak_mib = call_with_peak_rss(engine_day, str(engine_path))
    if figures["etl.day.staging_rows"] < events * 0.9:  # duplicates are a few %, not more
        raise AssertionError(f"{events} raw events but {figures['etl.day.staging_rows']} staged")
    if engine.pop("engine_staging_rows") != figures["etl.day.staging_rows"]:
        raise AssertionError("the engine-only run staged a different number of events")
    return {
        **figures,
        **engine,
        "etl.day.engine_ratio": round(
            figures["etl.day.seconds"] / engine["etl.day.engine_seconds"], 2
        ),
        "etl.day.engine_rss_mib": round(engine_peak_mib),
        "etl.day.rss_mib": round(peak_mib),
        "etl.day.speedup_vs_seed": round(SEED_SECONDS / figures["etl.day.seconds"], 1),
        "etl.day.events": float(events),
    }
