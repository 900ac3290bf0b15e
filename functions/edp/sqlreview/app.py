"""The ``sql_review`` HTTP function (flask): review SQL on demand, or the day's costly jobs.

Routes:

* ``POST /`` with ``{"sql": "...", "params": {...}, "runs_per_day": 24,
  "maximum_bytes_billed": 1073741824, "check_job": true}`` (or the SQL itself as a
  ``text/plain`` / ``application/sql`` body): ``200`` with the findings (rule, severity, line,
  column, message, bytes and dollars before/after, per-day saving, proven rewrite), the
  per-statement costs and ``has_errors``.
* ``POST /`` with ``{"mode": "scheduled", "day": "2026-12-06"}`` (Cloud Scheduler; ``day``
  defaults to yesterday, UTC): reviews the day's most expensive jobs, posts the report to the
  Slack webhook from settings (when set) and answers with the report's summary.

Bytes come from the warehouse's dry run (BigQuery's in GCP; the DuckDB estimate locally).
Exact rewrites are shown only when an installed verifier proved them on sample data.

Status codes: ``400`` invalid body or SQL that does not parse (with the reason), ``405`` not
POST, ``413`` body over 1 MiB, ``415`` another content type, ``502`` Slack refused the report
(revoked webhook, bad payload), ``503`` a transient failure (warehouse or Slack; Cloud
Scheduler retries).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Literal

from flask import Flask, Request, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edp.errors import TransientError
from edp.settings import Settings, get_settings
from edp.sqlreview.context import Pricing, RuleContext
from edp.sqlreview.estimators import DryRunEstimator, referenced_catalog_tables, row_counts
from edp.sqlreview.history import JobSource, QueryLogFile
from edp.sqlreview.reviewer import review
from edp.sqlreview.rewrites import Verifier, find_verifier, verify_rewrites
from edp.sqlreview.scheduled import daily_review, slack_message
from edp.sqlreview.slack import SlackError, post
from edp.sqlreview.source import Source, SqlSyntaxError
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


class ReviewRequest(BaseModel):
    """Body of an on-demand review."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    sql: str = Field(min_length=1, description="A BigQuery statement or ;-separated script.")
    params: dict[str, Any] = Field(default_factory=dict, description="Values of @params.")
    runs_per_day: float | None = Field(None, ge=0, description="How often the SQL runs.")
    maximum_bytes_billed: int | None = Field(None, ge=0, description="The job's cap, if any.")
    check_job: bool = Field(False, description="Check job settings (maximum_bytes_billed).")


class ScheduledRequest(BaseModel):
    """Body of the scheduled run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["scheduled"]
    day: dt.date | None = Field(None, description="UTC day to review; default yesterday.")


def _problem(status: int, error: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"status": "error", "error": error, **extra}), status


def default_jobs(settings: Settings) -> JobSource:
    """``INFORMATION_SCHEMA.JOBS`` on BigQuery, the local query log otherwise."""
    if settings.warehouse == "bigquery":
        from edp.sqlreview.bigquery_jobs import BigQueryJobs

        return BigQueryJobs(settings)
    return QueryLogFile(settings.query_log_path or Path(settings.state_dir) / "query_log.jsonl")


def create_app(
    settings: Settings | None = None,
    warehouse_factory: Callable[[], Warehouse] | None = None,
    jobs_factory: Callable[[Settings], JobSource] = default_jobs,
    verifier: Verifier | Literal["auto"] | None = "auto",
) -> Flask:
    """The flask app; the factories default to the configured warehouse and job history."""
    app = Flask("edp.sqlreview")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES

    def conf() -> Settings:
        return settings or get_settings()

    def warehouse() -> Warehouse:
        if warehouse_factory is not None:
            return warehouse_factory()
        from edp.warehouse import get_warehouse

        return get_warehouse(conf())

    @cache
    def the_verifier() -> Verifier | None:
        return find_verifier(conf()) if verifier == "auto" else verifier

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> tuple[Response, int]:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "reason": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return _problem(400, "invalid request", fields=fields)

    @app.errorhandler(SqlSyntaxError)
    def _syntax(exc: SqlSyntaxError) -> tuple[Response, int]:
        return _problem(400, "SQL does not parse as BigQuery", reason=str(exc))

    @app.errorhandler(TransientError)
    def _transient(exc: TransientError) -> tuple[Response, int]:
        log.warning("sql_review: transient failure: %s", exc)
        return _problem(503, str(exc))

    @app.errorhandler(SlackError)
    def _slack(exc: SlackError) -> tuple[Response, int]:
        return _problem(502, "Slack refused the report", reason=str(exc))

    @app.errorhandler(413)
    def _too_large(_: Exception) -> tuple[Response, int]:
        return _problem(413, f"body over {MAX_BODY_BYTES} bytes")

    @app.errorhandler(405)
    def _method(_: Exception) -> tuple[Response, int]:
        return _problem(405, "POST a query, a script or {'mode': 'scheduled'}")

    def on_demand(body: ReviewRequest) -> Response:
        source = Source.parse(body.sql)
        wh = warehouse()
        try:
            ctx = RuleContext(
                source=source,
                estimator=DryRunEstimator(wh, body.params),
                row_counts=row_counts(wh, referenced_catalog_tables(source.statements)),
                pricing=Pricing(conf().sql_review_usd_per_tib, body.runs_per_day),
                maximum_bytes_billed=body.maximum_bytes_billed,
                check_job=body.check_job,
                params=body.params,
            )
            result = verify_rewrites(review(ctx), source, the_verifier(), body.params)
        finally:
            wh.close()
        return jsonify(
            {
                "status": "ok",
                "has_errors": result.has_errors(),
                "findings": [f.model_dump(mode="json") for f in result.findings],
                "costs": [c.model_dump(mode="json") for c in result.costs],
            }
        )

    def scheduled(body: ScheduledRequest) -> Response:
        settings_now = conf()
        day = body.day or (dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1))
        jobs = jobs_factory(settings_now).jobs(day)
        pricing = Pricing(settings_now.sql_review_usd_per_tib)
        wh = warehouse()
        try:
            report = daily_review(
                jobs,
                day,
                top=settings_now.sql_review_top_jobs,
                pricing=pricing,
                estimator=DryRunEstimator(wh),  # prices the fixes; jobs price themselves
                min_repeats=settings_now.sql_review_mv_min_repeats,
            )
        finally:
            wh.close()
        text, blocks = slack_message(report, pricing)
        posted = False
        # the warning channel: a cost report is for reading today, not for waking anyone
        if settings_now.slack_webhook_warning is not None:
            post(settings_now.slack_webhook_warning.get_secret_value(), text, blocks)
            posted = True
        else:
            log.info("sql_review: no Slack webhook configured; report: %s", text)
        return jsonify(
            {
                "status": "ok",
                "day": day.isoformat(),
                "jobs": report.jobs_seen,
                "findings": sum(len(r.findings) for r in report.reviews),
                "materialized_views": [v.statement for v in report.views],
                "saving_bytes_per_day": report.saving_bytes_per_day,
                "slack_posted": posted,
                "summary": text,
            }
        )

    @app.post("/")
    def handle_post() -> Response | tuple[Response, int]:
        mime = request.mimetype
        if mime in ("text/plain", "application/sql"):
            return on_demand(ReviewRequest(sql=request.get_data(as_text=True)))
        if mime != "application/json":
            return _problem(415, "send application/json, text/plain or application/sql")
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return _problem(400, "invalid request", reason="the body is not a JSON object")
        if data.get("mode") == "scheduled":
            return scheduled(ScheduledRequest.model_validate(data))
        return on_demand(ReviewRequest.model_validate(data))

    return app


@cache
def default_app() -> Flask:
    return create_app()


def handle(req: Request) -> Response:
    """Dispatch a functions-framework request through the app's routes.

    The inner app reads the body through the outer request's (length-limited) stream, so
    functions-framework's own after-request drain of that stream finds it consistent (reading
    the raw ``wsgi.input`` a second way made the drain fail with a 500).
    """
    app = default_app()
    environ = {**req.environ, "wsgi.input": req.stream, "wsgi.input_terminated": True}
    with app.request_context(environ):
        return app.full_dispatch_request()
