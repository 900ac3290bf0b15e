"""``edp demo --chaos`` end to end at the small size: faults during the replay, nothing lost.

One module-scoped run of the real command (a subprocess) that SIGKILLs the stream loader, the
CDC flusher, the CDC reader and the Pub/Sub emulator and restarts PostgreSQL during the replay.
The checks are recomputed here from what the run left behind, not from the demo's counters:

- the client's receipts (``accepted_event_ids.txt``: every event_id ingest answered 200 for)
  against ``raw.user_events`` in the DuckDB file, and against the generated day itself;
- the shop tables in the run's PostgreSQL cluster (started again here on its data folder)
  against the CDC staging tables in DuckDB, row by row;
- repeated keys in ``staging.user_events`` and the CDC staging tables;
- the report, opened in headless Chromium: the fault timeline is drawn and lists every fault.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from edp.cdc.staging import STAGING_META, captured_tables
from edp.contracts.catalog import load_catalog
from edp_tools.cdc.shop import connect
from edp_tools.demo.browser import check_report
from edp_tools.demo.chaos import FAULTS
from edp_tools.demo.process import DemoProcess, run_demo_process
from edp_tools.local.postgres import PostgresCluster

# The module fixture runs the whole chaos demo (about 6-9 minutes on a busy 2-core machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


@pytest.fixture(scope="module")
def chaos_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    yield run_demo_process(
        "--chaos", "--size", "small", "--etl", "calls",
        folder=tmp_path_factory.mktemp("chaos"), timeout=1500,
    )  # fmt: skip


def test_chaos_demo_exits_zero_after_every_fault(chaos_run: DemoProcess) -> None:
    assert chaos_run.returncode == 0, chaos_run.stderr[-4000:]
    chaos = chaos_run.figures["chaos"]
    assert [f["target"] for f in chaos["faults"]] == list(FAULTS)
    for fault in chaos["faults"]:
        assert fault["during_replay"], fault
        assert fault["recovered_s"] is not None and fault["recovered_s"] > 0, fault


def test_every_accepted_event_is_in_raw_once_staged(chaos_run: DemoProcess) -> None:
    """sent = accepted + refused (client side); accepted = distinct event_ids in raw."""
    acc = chaos_run.figures["accounting"]
    assert acc["unanswered"] == 0
    assert acc["sent"] == acc["accepted"] + acc["refused"]
    accepted = set((chaos_run.out / "accepted_event_ids.txt").read_text().split())
    assert len(accepted) == acc["accepted_distinct"] > 1000
    wh = chaos_run.warehouse()
    try:
        ids = wh.query_arrow(
            "SELECT DISTINCT event_id FROM raw.user_events "
            "WHERE event_timestamp >= TIMESTAMP '2000-01-01' AND loaded_at IS NOT NULL"
        ).column("event_id")
        raw = {str(v) for v in ids.to_pylist()}
        staged_dups = wh.query(
            "SELECT COUNT(*) - COUNT(DISTINCT event_id) AS n FROM staging.user_events "
            "WHERE event_date >= DATE '2000-01-01'"
        ).scalar()
    finally:
        wh.close()
    lost = accepted - raw
    assert not lost, f"{len(lost)} accepted events missing from raw, e.g. {sorted(lost)[:5]}"
    # The streamed rows are the replay's accepted events: nothing refused got in either.
    assert raw == accepted
    assert staged_dups == 0
    assert chaos_run.figures["chaos"]["lost_events"] == 0


def _source(dsn: str, table: str, columns: list[str], key: list[str]) -> dict[Any, Any]:
    conn = connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(columns)} FROM shop.{table}")
            rows = cur.fetchall()
    finally:
        conn.close()
    return {tuple(r[columns.index(k)] for k in key): tuple(r) for r in rows}


def test_cdc_staging_equals_the_source_after_the_postgres_restart(chaos_run: DemoProcess) -> None:
    """The shop database the run left behind, started again, against staging in DuckDB."""
    catalog = load_catalog()
    wh = chaos_run.warehouse()
    cluster = PostgresCluster(chaos_run.state / "postgres").start()
    try:
        for table in captured_tables():
            spec = catalog.table(f"staging.{table}")
            columns = [f.name for f in spec.fields if f.name not in STAGING_META]
            key = list(spec.primary_key)
            source = _source(cluster.dsn_for("shop"), table, columns, key)
            rows = wh.query(f"SELECT {', '.join(columns)} FROM {spec.ref}").rows
            staging = {tuple(r[k] for k in key): tuple(r[c] for c in columns) for r in rows}
            assert len(staging) == len(rows), f"staging.{table} repeats a key"
            assert source, f"shop.{table} is empty"
            missing = source.keys() - staging.keys()
            extra = staging.keys() - source.keys()
            different = [k for k in source.keys() & staging.keys() if source[k] != staging[k]]
            assert not missing and not extra and not different, (
                f"staging.{table}: {len(missing)} missing, {len(extra)} extra, "
                f"{len(different)} different (e.g. {different[:2]})"
            )
    finally:
        cluster.stop()
        wh.close()
    chaos = chaos_run.figures["chaos"]
    assert chaos["lost"] == 0 and chaos["duplicates_in_staging"] == 0


def test_report_shows_the_fault_timeline(chaos_run: DemoProcess) -> None:
    if shutil.which("chromium") is None:
        pytest.fail("Debian's chromium is required (.ci/run installs it: apt-get install chromium)")
    page = check_report(chaos_run.out / "index.html")
    assert page.errors == []
    faults = [c for c in page.charts if c["id"] == "faults"]
    assert faults and faults[0]["traces"] > 0 and faults[0]["marks"] > 0, page.charts
    html = (chaos_run.out / "index.html").read_text()
    table = html.split('data-section="faults"', 1)[1].split("</table>", 1)[0]
    for target in FAULTS:
        assert f"<td>{target}</td>" in table
    assert "not recovered" not in table
    summary = (chaos_run.out / "summary.md").read_text()
    assert "## Faults injected during the replay" in summary
