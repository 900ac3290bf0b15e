"""workflows/daily_etl.yaml: schema, structure, and end-to-end runs in the workflows-emulator.

The end-to-end tests run the real YAML in the emulator (isolated venv) against the real ``etl``
function served on loopback over a DuckDB file: a clean run with one transient 503 that is
retried, a permanent failure (an impossible date, refused with 400) that goes straight to the
failure path, and a mart that fails inside its parallel branch.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from edp.etl.models import load_models, parallel_groups
from edp.etl.runner import yesterday
from edp.settings import get_settings
from etl.golden import GOLDEN, load_case, play

from .conftest import HARNESS, WORKFLOW, Fault, FaultProxy, ServedEtl, run_workflow

DAY = "2026-11-21"


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return loaded


def steps_of(node: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every named step, however deeply nested (try/except/parallel/switch)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "steps" and isinstance(value, list):
                for item in value:
                    ((name, body),) = item.items()
                    yield name, body
            if key == "branches" and isinstance(value, list):
                for item in value:
                    ((name, body),) = item.items()
                    yield name, body
            yield from steps_of(value)
    elif isinstance(node, list):
        for value in node:
            yield from steps_of(value)


def expressions(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield from re.findall(r"\$\{(.*?)\}", node)
    elif isinstance(node, dict):
        for value in node.values():
            yield from expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from expressions(value)


# --- static checks ----------------------------------------------------------------------------


def test_valid_against_the_workflows_json_schema(emulator_python: Path) -> None:
    """The schema shipped in the workflows-emulator package (SchemaStore's workflows.json)."""
    verdict = subprocess.run(
        [emulator_python, HARNESS, "validate", WORKFLOW],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(verdict.stdout) == {"status": "valid", "errors": []}


def test_schema_check_catches_a_broken_step(emulator_python: Path, tmp_path: Path) -> None:
    broken = WORKFLOW.read_text(encoding="utf-8").replace("call: http.post", "cal: http.post", 1)
    path = tmp_path / "broken.yaml"
    path.write_text(broken, encoding="utf-8")
    verdict = subprocess.run(
        [emulator_python, HARNESS, "validate", path],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(verdict.stdout)["status"] == "invalid"


def test_parallel_branches_are_exactly_the_mart_models() -> None:
    (wave,) = parallel_groups(load_models(), "mart")  # marts depend on staging only
    parallel = next(body for name, body in steps_of(workflow()) if "parallel" in body)
    bodies = [
        step["args"]["body"] for name, step in steps_of(parallel) if step.get("call") == "callEtl"
    ]
    assert sorted(b["model"] for b in bodies) == sorted(wave)
    assert all(b["date"] == "${runDate}" for b in bodies)


def test_structure_follows_the_house_rules() -> None:
    wf = workflow()
    subworkflows = set(wf)
    assert {"main", "callEtl", "isRetryable", "recordFailedRun"} <= subworkflows
    for name, step in steps_of(wf):
        assert re.fullmatch(r"[a-z][a-zA-Z0-9]*", name), f"step {name!r} is not camelCase"
        call = step.get("call")
        if call is not None:
            assert call in subworkflows or call in {"http.post", "sys.log"}, call
        if call == "http.post":
            assert step["args"]["auth"]["type"] == "OIDC", name  # every call authenticated
        if "retry" in step:
            assert step["retry"]["predicate"] == "${isRetryable}", name
            assert step["retry"]["backoff"]["multiplier"] > 1, name
    env = {m for e in expressions(wf) for m in re.findall(r'sys\.get_env\("([A-Z_]+)"\)', e)}
    assert env == {"ETL_URL", "ETL_TIME_ZONE", "GOOGLE_CLOUD_WORKFLOW_EXECUTION_ID"}


def test_expressions_avoid_the_emulator_literal_trap() -> None:
    """The emulator evaluates ${} as Python: null/true/false inside one would break it."""
    for expression in expressions(workflow()):
        assert not re.search(r"\b(null|true|false)\b", expression), expression


# --- end to end in the emulator -------------------------------------------------------------


@pytest.fixture
def filled(warehouse_file: Path) -> Path:
    """The DuckDB file with the golden raw events and CDC orders of 2026-11-20/21."""
    from edp.warehouse import get_warehouse

    warehouse = get_warehouse(get_settings())
    try:
        for name in ("staging_user_events", "mart_orders_daily"):
            case = load_case(GOLDEN / f"{name}.yaml")
            play({"steps": [s for s in case["steps"] if "insert" in s]}, warehouse, get_settings())
    finally:
        warehouse.close()
    return warehouse_file


def recorded_runs(served: ServedEtl) -> list[dict[str, Any]]:
    served.stop()
    warehouse = served.open_warehouse()
    try:
        return warehouse.query(
            "SELECT task, run_date, status, error, `trigger`, execution_id "
            "FROM monitoring.pipeline_runs WHERE started_at IS NOT NULL ORDER BY task, status"
        ).rows
    finally:
        warehouse.close()


MARTS = sorted(ref for ref in load_models() if ref.startswith("mart."))


def test_end_to_end_with_a_transient_failure_retried(
    emulator_python: Path,
    filled: Path,
    serve_etl: Callable[[], ServedEtl],
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    served = serve_etl()
    proxy = fault_proxy(served.url)
    # the first staging call meets an overloaded instance
    proxy.faults.append(Fault(lambda path, body: body.get("layer") == "staging", 503, 1))

    verdict = run_workflow(emulator_python, {"date": DAY, "lookback_days": 1}, proxy.url, "exec-ok")

    assert verdict["status"] == "succeeded", verdict
    result = verdict["result"]
    assert result["date"] == DAY and result["status"] == "success"
    # 16 events of 11-20..11-21 (the golden staging case) + 5 human users first seen (u1, a2,
    # u3, u6, and u7, whose 5 events are a bot only under that case's lowered threshold) + 1
    # anonymous id stitched (a1, seen with u1)
    assert result["stagingRows"] == 16 + 5 + 1
    assert sorted(result["martRows"]) == MARTS
    staging_calls = proxy.requests_for("layer", "staging")
    assert [(s.status, s.injected) for s in staging_calls] == [(503, True), (200, False)]
    for mart in MARTS:
        assert [s.status for s in proxy.requests_for("model", mart)] == [200], mart
    assert not [s for s in proxy.seen if s.path == "/record-failure"]
    assert {s.body.get("lookback_days") for s in proxy.seen} == {1}  # passed on to every call
    runs = recorded_runs(served)
    assert sorted(r["task"] for r in runs) == sorted(
        ["staging.user_events", "staging.user_first_seen", "staging.user_identities", *MARTS]
    )
    assert {(r["status"], r["trigger"], r["execution_id"]) for r in runs} == {
        ("success", "workflow", "exec-ok")
    }
    assert {r["run_date"] for r in runs} == {dt.date(2026, 11, 21)}


def test_default_date_is_yesterday_in_seoul(
    emulator_python: Path,
    warehouse_file: Path,
    serve_etl: Callable[[], ServedEtl],
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    served = serve_etl()
    proxy = fault_proxy(served.url)
    verdict = run_workflow(emulator_python, None, proxy.url, "exec-default")
    assert verdict["status"] == "succeeded", verdict
    expected = yesterday("Asia/Seoul").isoformat()
    assert verdict["result"]["date"] == expected
    assert {s.body["date"] for s in proxy.seen} == {expected}
    assert not [s for s in proxy.seen if "lookback_days" in s.body]  # the function's default


def test_permanent_failure_ends_in_the_failure_path(
    emulator_python: Path,
    filled: Path,
    serve_etl: Callable[[], ServedEtl],
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    served = serve_etl()
    proxy = fault_proxy(served.url)

    verdict = run_workflow(emulator_python, {"date": "2026-02-30"}, proxy.url, "exec-bad")

    assert verdict["status"] == "failed", verdict
    assert verdict["error"]["code"] == 400
    # not retried (a 400 is not transient), no mart ran, the failure was recorded once
    assert [(s.path, s.status) for s in proxy.seen] == [("/", 400), ("/record-failure", 200)]
    # the etl function records the refused request itself (the execution's first row), and the
    # workflow's failure path records the execution's failure: two failed rows, one execution id
    runs = recorded_runs(served)
    assert [(r["task"], r["status"], r["trigger"], r["execution_id"]) for r in runs] == [
        ("staging", "failed", "workflow", "exec-bad")
    ] * 2
    assert all(r["run_date"] is None and "2026-02-30" in r["error"] for r in runs)
    refused, reported = sorted(runs, key=lambda r: r["error"].startswith("(date"), reverse=True)
    assert refused["error"].startswith("(date '2026-02-30') invalid request")
    assert '"code": 400' in reported["error"]  # the workflow's error map


def test_a_mart_failing_in_its_branch_fails_the_run_and_is_recorded(
    emulator_python: Path,
    filled: Path,
    serve_etl: Callable[[], ServedEtl],
    fault_proxy: Callable[[str], FaultProxy],
) -> None:
    from edp.warehouse import get_warehouse

    warehouse = get_warehouse(get_settings())
    try:
        warehouse.execute_script("DROP TABLE staging.orders")  # mart.orders_daily cannot run
    finally:
        warehouse.close()
    served = serve_etl()
    proxy = fault_proxy(served.url)

    verdict = run_workflow(emulator_python, {"date": DAY}, proxy.url, "exec-branch")

    assert verdict["status"] == "failed", verdict
    assert [s.status for s in proxy.requests_for("model", "mart.orders_daily")] == [422]
    for mart in MARTS:
        if mart != "mart.orders_daily":  # the other branches finished
            assert [s.status for s in proxy.requests_for("model", mart)] == [200], mart
    (report,) = [s for s in proxy.seen if s.path == "/record-failure"]
    assert report.body["layer"] == "mart" and "orders_daily" in report.body["error"]
    runs = recorded_runs(served)
    failed = {(r["task"], r["status"]) for r in runs if r["status"] == "failed"}
    assert failed == {("mart.orders_daily", "failed"), ("mart", "failed")}
