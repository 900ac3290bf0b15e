"""The golden cases on the BigQuery adapter, against ``bqemulator`` (DuckDB-backed BigQuery REST).

bqemulator 1.4.0 does not bind query parameters inside multi-statement scripts (measured by the
warehouse contract suite), so the runner's write scripts cannot run there. What can run is the
part that is ours and dialect-sensitive: each model's SELECT, sent through the real BigQuery
client with bound parameters, over the case's input rows loaded with the streaming API. For a
case with one run on empty target tables, that SELECT's rows are exactly the expected table.
Cases with several runs (each reading the previous run's writes: reruns, incremental days, late
events) are played step by step: each run's SELECT goes to the emulator, and its rows are written
the way the runner's script writes them (insert_overwrite: delete the window's partitions, insert;
merge: delete the matched keys, insert), one plain DML statement at a time; the expected table is
then read back.

Two more bqemulator 1.4.0 gaps, measured: it counts ``@params`` in SQL comments when it turns
named parameters into positional ones ("Parameter argument/count mismatch"), so comments are
stripped before sending (BigQuery ignores them anyway); and it cannot parse ``TIMESTAMP(expr,
@tz)`` with a parameter as the time zone (its older sqlglot: "syntax error at or near ?"), so the
two models that build day boundaries that way are expected failures here, as is the one whose
DATE_TRUNC(..., WEEK) comes back as a TIMESTAMP (xfail strict: the day the emulator learns it,
the mark must go).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edp.etl.models import load_models, plan
from edp.etl.runner import EtlRunner, window
from edp.settings import Settings, get_settings
from edp.warehouse.bigquery_adapter import BigQueryWarehouse
from edp.warehouse.port import Warehouse

from .golden import GOLDEN, load_case, mismatches, normalise, typed_rows

pytestmark = [pytest.mark.bqemu, pytest.mark.timeout(300)]

CASES = sorted(GOLDEN.glob("*.yaml"))
_projects = itertools.count()
TIMESTAMP_ZONE_PARAM = "bqemulator 1.4.0 cannot parse TIMESTAMP(expr, @tz) (a parameter as zone)"
EMULATOR_GAPS = {
    "staging_user_events": TIMESTAMP_ZONE_PARAM,
    "mart_orders_daily": TIMESTAMP_ZONE_PARAM,
    # values all right, types not: BigQuery's DATE_TRUNC(date, WEEK(MONDAY)) is a DATE
    "mart_retention_cohorts": "bqemulator 1.4.0 returns DATE_TRUNC(date, WEEK(MONDAY)) as a "
    "TIMESTAMP (its DuckDB translation), so the DATE columns come back as timestamps",
}
EMULATOR_GAPS["mart_retention_cohorts_identity"] = EMULATOR_GAPS["mart_retention_cohorts"]


def without_comments(sql: str) -> str:
    """The SQL minus ``--`` comments (the models put none inside string literals)."""
    return "\n".join(line.split("--", 1)[0] for line in sql.splitlines())


@pytest.fixture(scope="module")
def bq_endpoint() -> Iterator[str]:
    from warehouse.bqemu import BqEmulator, BqemuUnavailable

    emulator = BqEmulator()
    try:
        emulator.start()
    except BqemuUnavailable as exc:
        pytest.skip(f"bqemulator venv cannot be built here (offline?): {exc}")
    try:
        yield emulator.endpoint
    finally:
        emulator.stop()


@pytest.fixture
def bq(bq_endpoint: str) -> Iterator[Warehouse]:
    settings = Settings(
        _env_file=None,
        warehouse="bigquery",
        project=f"edp-etl-{next(_projects)}",
        bigquery_api_endpoint=bq_endpoint,
        bigquery_location="US",
    )
    warehouse = BigQueryWarehouse(settings=settings, deadline_s=60)
    warehouse.create_tables()
    yield warehouse
    warehouse.close()


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(p, marks=pytest.mark.xfail(reason=EMULATOR_GAPS[p.stem], strict=True))
        if p.stem in EMULATOR_GAPS
        else p
        for p in CASES
    ],
    ids=[p.stem for p in CASES],
)
def test_golden_select_on_bigquery(path: Path, bq: Warehouse) -> None:
    case = load_case(path)
    runs = [step["run"] for step in case["steps"] if "run" in step]
    if len(runs) != 1 or "insert" not in case["steps"][0] or len(case["steps"]) != 2:
        play_runs(case, bq)
        return
    for table, rows in case["steps"][0]["insert"].items():
        bq.insert_rows(table, typed_rows(table, rows))
    run = runs[0]
    (model,) = plan(load_models(), run["select"])
    settings = get_settings().model_copy(update=case.get("settings", {}))
    start, end = window(model, run["date"], run["lookback_days"])
    params = EtlRunner(bq, settings=settings).params(model, start, end)

    result = bq.query(without_comments(model.sql), params)

    ((table, want),) = case["expect"].items()
    assert table == model.ref
    actual = sorted(
        ([normalise(row[c]) for c in want["columns"]] for row in result.rows),
        key=_order,
    )
    expected = sorted(want["rows"], key=lambda r: _order([normalise(v) for v in r]))
    problems = mismatches(actual, expected)
    assert not problems, f"{table} on BigQuery (bqemulator):\n" + "\n".join(problems)


def _order(row: list[Any]) -> list[tuple[bool, str]]:
    return [(v is None, str(v)) for v in row]


def play_runs(case: dict[str, Any], bq: Warehouse) -> None:
    """Several runs on the emulator: each SELECT there, its rows written as the runner would."""
    settings = get_settings().model_copy(update=case.get("settings", {}))
    runner = EtlRunner(bq, settings=settings)
    for step in case["steps"]:
        if "insert" in step:
            for table, rows in step["insert"].items():
                bq.insert_rows(table, typed_rows(table, rows))
            continue
        run = step["run"]
        (model,) = plan(load_models(), run["select"])
        start, end = window(model, run["date"], run["lookback_days"])
        params = runner.params(model, start, end)
        rows = bq.query(without_comments(model.sql), params).rows
        config = model.config
        if config.strategy == "insert_overwrite":
            bq.query(
                f"DELETE FROM {model.ref} WHERE {config.partition_by} BETWEEN @start AND @end",
                {"start": start, "end": end},
            )
        else:
            for row in rows:
                where = " AND ".join(f"{key} = @{key}" for key in config.unique_key)
                bq.query(
                    f"DELETE FROM {model.ref} WHERE {where}",
                    {key: row[key] for key in config.unique_key},
                )
        if rows:
            bq.insert_rows(model.ref, [dict(row) for row in rows])
    for table, want in case["expect"].items():
        spec_rows = bq.query(f"SELECT {', '.join(want['columns'])} FROM {table}").rows
        actual = sorted(([normalise(r[c]) for c in want["columns"]] for r in spec_rows), key=_order)
        expected = sorted(want["rows"], key=lambda r: _order([normalise(v) for v in r]))
        problems = mismatches(actual, expected)
        assert not problems, f"{table} on BigQuery (bqemulator), several runs:\n" + "\n".join(
            problems
        )
