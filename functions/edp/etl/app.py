"""The ``etl`` HTTP function (flask): run a model or a layer for a day; record a failure.

Called by ``workflows/daily_etl.yaml`` (OIDC-authenticated by Cloud Run in GCP). A thin layer
over :class:`edp.etl.runner.EtlRunner`: validate the JSON body with pydantic, run, map the
outcome to a status code the workflow's retry predicate understands.

Routes:

* ``POST /`` (or ``/run``) ``{"date": "2026-11-25", "model": "mart.orders_daily"}`` or
  ``{"date": ..., "layer": "staging"}`` (neither: every model), optional ``lookback_days`` and
  ``execution_id``. ``date`` defaults to yesterday in the ETL time zone. Answers ``200`` with
  one entry per model run (rows written, bytes processed, duration).
* ``POST /record-failure`` ``{"date", "model"|"layer", "error", "execution_id"}``: the
  workflow's failure path; writes a ``failed`` row to ``monitoring.pipeline_runs``.
* ``POST /freshness``: the freshness probe (:mod:`edp.etl.freshness`, Cloud Scheduler every
  few minutes): sets ``data_freshness_minutes{table}`` and answers the figures.
* ``GET /models``: the models by layer, in parallel waves (what the workflow runs).

Status codes: ``400`` invalid body (per-field reasons), ``404`` unknown model/layer or path,
``405`` wrong method, ``422`` a model failed and retrying will not help (SQL or data error),
``503`` a transient warehouse failure (retry), ``500`` anything unexpected (retry). Every run
request that does not succeed leaves a ``failed`` row in ``monitoring.pipeline_runs`` (a model
that failed is recorded by the runner; a refused request or an unexpected error by the app).
Bodies go through the shared bounded reader (:mod:`edp.http.reader`): at most 64 KiB, JSON
nested at most 16 deep, else ``400``/``413`` in the one refusal shape of :mod:`edp.http.errors`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable
from functools import cache
from typing import Any, Literal

from flask import Flask, Request, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edp.errors import ConfigError
from edp.etl.models import LAYERS, load_models, parallel_groups
from edp.etl.runner import EtlRunner, ModelRunError, RunResult, yesterday
from edp.http.dispatch import dispatch
from edp.http.errors import RequestError, install_error_path, problem
from edp.http.reader import BodyReader, parse_json
from edp.observability.metrics import flush_metrics
from edp.settings import Settings, get_settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)

_REF = r"^(staging|mart)\.[a-z_][a-z0-9_]*$"
_MAX_BODY_BYTES = 64 * 1024
_MAX_DEPTH = 16
# A run date whose lookback window (up to 30 days back, one day ahead) stays inside the DATE
# range of BigQuery and Python (0001-01-01 .. 9999-12-31), with room to spare.
MIN_RUN_DATE = dt.date(1970, 1, 1)
MAX_RUN_DATE = dt.date(9999, 12, 1)


class RunRequest(BaseModel):
    """Body of ``POST /``: what to run, for which day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: dt.date | None = Field(None, description="Run date; default yesterday (ETL time zone).")
    model: str | None = Field(None, pattern=_REF, description="One model, e.g. mart.orders_daily.")
    layer: Literal["staging", "mart"] | None = Field(None, description="Every model of a layer.")
    lookback_days: int | None = Field(None, ge=0, le=30, description="Override the lookback.")
    execution_id: str | None = Field(None, max_length=256, description="Workflows execution id.")

    @model_validator(mode="after")
    def _one_target(self) -> RunRequest:
        if self.model is not None and self.layer is not None:
            raise ValueError("give either model or layer, not both")
        if self.date is not None and not MIN_RUN_DATE <= self.date <= MAX_RUN_DATE:
            raise ValueError(f"date must be between {MIN_RUN_DATE} and {MAX_RUN_DATE}")
        return self


class FailureReport(BaseModel):
    """Body of ``POST /record-failure`` (sent by the workflow's failure path)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # kept as text: the failure being reported may be an unparseable date
    date: str | None = Field(None, max_length=64)
    model: str | None = Field(None, max_length=128)
    layer: str | None = Field(None, max_length=32)
    error: str | dict[str, Any] | list[Any] = Field(description="The workflow's error map.")
    execution_id: str | None = Field(None, max_length=256)

    def run_date(self) -> dt.date | None:
        try:
            return dt.date.fromisoformat(self.date) if self.date else None
        except ValueError:
            return None

    def error_text(self) -> str:
        text = self.error if isinstance(self.error, str) else json.dumps(self.error, default=str)
        if self.date and self.run_date() is None:
            text = f"(date {self.date!r}) {text}"
        return text


def _problem(status: int, error: str, **extra: Any) -> tuple[Response, int]:
    return problem(status, error, error, **extra), status


def _failed_target(payload: object) -> tuple[str, dt.date | None, str]:
    """Task name, run date and date text of a run request that could not run (best effort)."""
    fields = payload if isinstance(payload, dict) else {}
    target = fields.get("model") or fields.get("layer")
    task = target[:128] if isinstance(target, str) and target else "daily_etl"
    text = fields.get("date")
    day = None
    if isinstance(text, str):
        try:
            day = dt.date.fromisoformat(text)
        except ValueError:
            day = None
    return task, day, repr(text)[:64] if text is not None else ""


def _summary(results: list[RunResult]) -> dict[str, Any]:
    return {
        "rows_written": sum(r.rows_written for r in results),
        "bytes_processed": sum(r.bytes_processed for r in results),
        "duration_s": round(sum(r.duration_s for r in results), 6),
        "runs": [r.to_json() for r in results],
    }


def _record_refused(
    warehouse: Callable[[], Warehouse],
    settings: Settings,
    lock: threading.Lock,
    payload: object,
    reason: str,
) -> None:
    """Record a run request that could not run (the runner records model failures itself).

    A request from the workflow keeps its execution id and trigger, so this row and the one the
    workflow's failure path adds (``/record-failure``) are found as one execution's failure.
    """
    task, day, text = _failed_target(payload)
    fields = payload if isinstance(payload, dict) else {}
    execution = fields.get("execution_id")
    execution_id = execution if isinstance(execution, str) and 0 < len(execution) <= 256 else None
    try:
        runner = EtlRunner(
            warehouse(),
            settings=settings,
            trigger="workflow" if execution_id else "http",
            execution_id=execution_id,
        )
        with lock:
            runner.record_failure(task, day, f"(date {text}) {reason}" if text else reason)
    except Exception:  # the refusal stands; its record is best effort, and logged
        log.exception("etl: could not record a refused run")


def _install_handlers(app: Flask) -> None:
    """The ETL-specific error mappings (on top of the shared error path)."""

    @app.errorhandler(ValidationError)
    def _invalid(exc: ValidationError) -> tuple[Response, int]:
        fields = [
            {"field": ".".join(str(p) for p in e["loc"]) or "(body)", "reason": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return _problem(400, "invalid request", fields=fields)

    @app.errorhandler(ConfigError)
    def _unknown(exc: ConfigError) -> tuple[Response, int]:
        return _problem(404, str(exc))

    @app.errorhandler(ModelRunError)
    def _failed(exc: ModelRunError) -> tuple[Response, int]:
        status = 500 if exc.unexpected else 503 if exc.transient else 422
        log.error("etl model failed: %s", exc)
        return _problem(
            status,
            str(exc),
            failed=exc.result.to_json(),
            **_summary(exc.completed),
        )


def create_app(
    warehouse_factory: Callable[[], Warehouse] | None = None,
    settings: Settings | None = None,
) -> Flask:
    """The ETL flask app; ``warehouse_factory`` defaults to :func:`edp.warehouse.get_warehouse`."""
    app = Flask("edp.etl")
    install_error_path(app)
    reader = BodyReader(_MAX_BODY_BYTES)
    lock = threading.Lock()  # DuckDB is single-writer; BigQuery runs need no lock

    def warehouse() -> Warehouse:
        if warehouse_factory is not None:
            return warehouse_factory()
        from edp.warehouse import get_warehouse

        return get_warehouse()

    def conf() -> Settings:
        return settings or get_settings()

    def body() -> Any:
        raw = reader.read(request)
        # Not an object: the pydantic model refuses it with a per-field reason ("(body)").
        return parse_json(raw, max_depth=_MAX_DEPTH) if raw.strip() else {}

    def record_refused(payload: object, reason: str) -> None:
        _record_refused(warehouse, conf(), lock, payload, reason)

    _install_handlers(app)

    @app.post("/")
    @app.post("/run")
    def run() -> tuple[Response, int]:
        payload: object = None
        try:
            payload = body()
            return execute(RunRequest.model_validate(payload))
        except ModelRunError:
            raise  # recorded by the runner
        except ValidationError as exc:
            first = exc.errors(include_url=False, include_input=False)[0]
            record_refused(payload, f"invalid request: {first['msg']}")
            raise
        except (RequestError, ConfigError) as exc:
            record_refused(payload, f"refused: {exc}")
            raise
        except Exception as exc:
            record_refused(payload, f"unexpected {type(exc).__name__}: {exc}")
            raise

    def execute(req: RunRequest) -> tuple[Response, int]:
        s = conf()
        day = req.date or yesterday(s.etl_timezone)
        runner = EtlRunner(
            warehouse(),
            settings=s,
            trigger="workflow" if req.execution_id else "http",
            execution_id=req.execution_id,
        )
        with lock:
            results = runner.run(day, req.model or req.layer, req.lookback_days)
        return jsonify({"status": "success", "date": day.isoformat(), **_summary(results)}), 200

    @app.post("/record-failure")
    def record_failure() -> tuple[Response, int]:
        report = FailureReport.model_validate(body())
        runner = EtlRunner(
            warehouse(), settings=conf(), trigger="workflow", execution_id=report.execution_id
        )
        task = report.model or report.layer or "daily_etl"
        with lock:
            run_id = runner.record_failure(task, report.run_date(), report.error_text())
        return jsonify({"status": "recorded", "run_id": run_id, "task": task}), 200

    @app.post("/freshness")
    def freshness() -> tuple[Response, int]:
        from edp.etl.freshness import probe

        measured = probe(warehouse(), dt.datetime.now(dt.UTC))
        return jsonify({"status": "measured", "tables": [f.to_json() for f in measured]}), 200

    @app.get("/models")
    def models() -> tuple[Response, int]:
        m = load_models()
        return jsonify(
            {
                layer: {
                    "waves": parallel_groups(m, layer),
                    "depends_on": {
                        ref: sorted(m[ref].depends_on) for ref in m if ref.startswith(layer + ".")
                    },
                }
                for layer in LAYERS
            }
        ), 200

    return app


@cache
def default_app() -> Flask:
    """The app the Cloud Run entry point serves (created on first request, not at import)."""
    return create_app()


def handle(req: Request) -> Response:
    """Dispatch a functions-framework request through the app's routes."""
    app = default_app()
    try:
        return dispatch(app, req)
    finally:
        flush_metrics()  # CPU is only allocated during the request
