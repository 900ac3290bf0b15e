"""``docs/pipelines/`` is generated from the code and cannot drift: ``edp docs check`` runs here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edp_tools.cli.main import app
from edp_tools.docs.build import PAGES_DIR, compare, render
from edp_tools.docs.code import scan
from edp_tools.docs.infra import read_infra
from edp_tools.docs.pages import pipeline_page
from edp_tools.docs.pipelines import PIPELINES, Pipeline
from edp_tools.docs.sections import Facts

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return render(ROOT)


def test_committed_pages_are_what_the_code_generates() -> None:
    result = CliRunner().invoke(app, ["docs", "check", "--root", str(ROOT)])
    assert result.exit_code == 0, (
        result.output + "\nrun `edp docs build` and commit docs/pipelines/"
    )


def test_check_fails_on_a_hand_edited_page(tmp_path: Path) -> None:
    pages = tmp_path / "pipelines"
    shutil.copytree(ROOT / PAGES_DIR, pages)
    page = pages / "mart.product_performance.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("(aggregate)", "(copy)", 1), encoding="utf-8")

    result = CliRunner().invoke(app, ["docs", "check", "--root", str(ROOT), "--pages", str(pages)])

    assert result.exit_code == 1
    assert "mart.product_performance.md (committed)" in result.output
    assert "out of date" in result.output


def test_check_fails_on_a_missing_or_stray_page(tmp_path: Path, generated: dict[str, str]) -> None:
    shutil.copytree(ROOT / PAGES_DIR, tmp_path, dirs_exist_ok=True)
    (tmp_path / "ingest.md").unlink()
    (tmp_path / "old_pipeline.md").write_text("# gone\n", encoding="utf-8")
    problems = compare(generated, tmp_path)
    assert problems == [
        "ingest.md: missing (run `edp docs build`)",
        "old_pipeline.md: no pipeline generates it (run `edp docs build`)",
    ]


def test_every_pipeline_and_model_has_a_page(generated: dict[str, str]) -> None:
    expected = {"index.md", *(f"{p.key}.md" for p in PIPELINES)}
    expected |= {
        f"{ref}.md"
        for ref in (
            "staging.user_events",
            "staging.user_first_seen",
            "mart.conversion_funnel",
            "mart.daily_active_users",
            "mart.orders_daily",
            "mart.product_performance",
            "mart.retention_cohorts",
        )
    }
    assert expected <= set(generated)
    for name in ("ingest.md", "cdc_flush.md", "mart.conversion_funnel.md"):
        page = generated[name]
        for section in (
            "## Overview",
            "## Schedule and trigger",
            "## Inputs and outputs",
            "## Configuration",
            "## SLA and monitoring",
            "## Troubleshooting",
        ):
            assert section in page, (name, section)
    assert "```mermaid" in generated["index.md"]


def test_schedules_and_retries_come_from_terraform_and_the_workflow() -> None:
    # terraform/07-workflows.tf + variables.tf: daily ETL "0 3 * * *" in Asia/Seoul, 2 retries
    # (60 s -> 600 s); cdc_flush every minute in UTC, no retry; daily_etl.yaml: callEtl retries
    # 4 times from 2 s, x2, up to 60 s.
    infra = read_infra(ROOT)
    jobs = {job.name: job for job in infra.jobs}
    assert (jobs["daily_etl"].schedule, jobs["daily_etl"].time_zone) == ("0 3 * * *", "Asia/Seoul")
    assert jobs["daily_etl"].retry == "2 retries, backoff 60s -> 600s"
    assert (jobs["cdc_flush"].schedule, jobs["cdc_flush"].target) == (
        "* * * * *",
        "function:cdc_flush",
    )
    (call,) = [r for r in infra.workflows["daily_etl"].retries if r.subworkflow == "callEtl"]
    assert (call.max_retries, call.backoff) == (4, "2 s x2 up to 60 s")
    # the workflow runs the models; the scheduler calls the freshness probe (POST /freshness)
    assert infra.functions["etl"].invokers == ("local.sa.workflows", "local.sa.scheduler")


def test_the_cdc_flush_facts_are_read_from_its_code() -> None:
    # edp/cdc/flush.py reads s.cdc_batch_size and s.cdc_flush_interval_sec, creates the
    # cdc_replication_lag_seconds histogram and raises DecodeError on poison messages.
    facts = scan(["edp.cdc"], ROOT)
    assert {"cdc_batch_size", "cdc_flush_interval_sec", "cdc_flush_max_run_sec"} <= facts.settings
    assert {"cdc_replication_lag_seconds", "cdc_rows_flushed_total"} <= facts.metric_names
    assert "DecodeError" in {e.name for e in facts.errors}


def test_a_pipeline_page_fills_in_when_its_code_arrives() -> None:
    facts = Facts(ROOT)
    absent = Pipeline(
        key="future", title="Future", packages=("edp.not_built_yet",), overview="edp.not_built_yet"
    )
    page = pipeline_page(facts, absent)
    assert "is not in this checkout yet" in page and "## Troubleshooting" in page

    # its overview module has no docstring (here: does not exist): the package's own is used
    present = Pipeline(
        key="lineage", title="Lineage", packages=("edp.lineage",), overview="edp.lineage.nope"
    )
    page = pipeline_page(facts, present)
    assert "not in this checkout" not in page
    assert "Column-level lineage of the SQL models" in page
    assert "`EDP_OPENLINEAGE_URL`" in page and "`LineageError`" in page
