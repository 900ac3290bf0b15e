"""Guardrails: every BigQuery query job the platform runs carries a valid byte cap.

BigQuery bills at least 10 MB per query and rejects ``maximum_bytes_billed`` below 10485760
("Query exceeded limit for bytes billed: 1000000. 10485760 or higher required.", BigQuery's
cost-control docs), so the setting refuses smaller caps; the production package is scanned so
a new ``client.query(...)`` without a capped job config fails here; and the scheduled review's
own ``INFORMATION_SCHEMA.JOBS`` query is checked on the wire against a local REST stand-in.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError
from tests.warehouse.test_bigquery_adapter import StandIn

from edp.errors import TransientError
from edp.settings import Settings
from edp.sqlreview.bigquery_jobs import BigQueryJobs
from edp.warehouse.bigquery_adapter import bigquery_client

PRODUCTION = Path(__file__).resolve().parents[2] / "functions" / "edp"


def test_cap_below_the_bigquery_minimum_is_refused() -> None:
    with pytest.raises(ValidationError, match="10485760"):
        Settings(_env_file=None, maximum_bytes_billed=1_000_000)
    assert Settings(_env_file=None, maximum_bytes_billed=10_485_760).maximum_bytes_billed == (
        10_485_760
    )


def _calls(tree: ast.AST) -> list[ast.Call]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def test_every_query_job_config_in_production_code_sets_the_cap() -> None:
    configs, queries = 0, 0
    for path in PRODUCTION.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls(tree):
            keywords = {k.arg for k in call.keywords}
            if _name(call.func) == "QueryJobConfig":
                configs += 1
                assert "maximum_bytes_billed" in keywords, f"{path}:{call.lineno}"
            receiver = call.func.value if isinstance(call.func, ast.Attribute) else None
            if (
                _name(call.func) == "query"
                and isinstance(receiver, ast.Attribute | ast.Name)
                and "client" in ast.unparse(receiver)
            ):
                queries += 1
                assert "job_config" in keywords, f"{path}:{call.lineno}: query without job_config"
    assert configs >= 2 and queries >= 2  # the warehouse adapter and the jobs reader


def test_jobs_history_query_carries_the_cap_on_the_wire() -> None:
    stand_in = StandIn()
    try:
        settings = Settings(
            _env_file=None,
            warehouse="bigquery",
            project="edp-standin",
            bigquery_api_endpoint=stand_in.endpoint,
            maximum_bytes_billed=10_485_760 * 3,
        )
        client = bigquery_client(settings.project, settings.bigquery_location, stand_in.endpoint)
        with pytest.raises(TransientError):  # the stand-in answers 503
            BigQueryJobs(settings, client=client, deadline_s=1.5).jobs(dt.date(2026, 12, 5))
        _, _, body = stand_in.requests[0]
        query = body["configuration"]["query"]
        assert query["maximumBytesBilled"] == str(10_485_760 * 3)
        assert "INFORMATION_SCHEMA.JOBS_BY_PROJECT" in query["query"]
        assert "`region-asia-northeast3`" in query["query"]
    finally:
        stand_in.close()
