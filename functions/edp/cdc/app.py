"""The ``cdc_flush`` HTTP function: one bounded flush run, then the staging refresh.

Cloud Scheduler POSTs to it every minute (OIDC). One route: ``POST /`` with an optional JSON
object body::

    {"max_run_s": 50, "refresh_staging": true}

It pulls and writes for up to ``max_run_s`` (default ``cdc_flush_max_run_sec``), flushes the
buffer, MERGEs what it wrote into staging (the run of every
``cdc_staging_rebuild_every_min``-th minute rebuilds every staging table from the whole log
instead, as the check), and answers ``200`` with the run's counters.
``max_run_s`` is capped at :data:`MAX_RUN_S`, the function's Terraform timeout (540 s) minus
:data:`DRAIN_MARGIN_S` for the final flush and the staging refresh (a test compares them).
Any other path is ``404``, any other method ``405``, a body that is not such an object ``400``
(nothing is flushed). A failure that retrying may fix answers ``503`` (Cloud Scheduler retries
it; the unacked messages are redelivered anyway); a configuration error answers ``500``.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections.abc import Callable
from functools import cache
from typing import Any, Final

from flask import Flask, Request, Response, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edp.cdc.flush import CdcFlusher
from edp.cdc.staging import rebuild_due, refresh_staging
from edp.errors import ConfigError, TransientError, WarehouseError
from edp.http.dispatch import dispatch
from edp.http.errors import install_error_path, problem
from edp.http.reader import BodyReader, parse_json
from edp.observability import tracing
from edp.observability.catalogue import instrument
from edp.observability.metrics import flush_metrics, get_meter
from edp.settings import get_settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)

# Terraform: var.functions.cdc_flush.timeout_s = 540. A run pulls for at most MAX_RUN_S, then
# needs up to DRAIN_MARGIN_S to flush its buffer, ack and refresh staging before Cloud Run
# cuts the request off.
CDC_FLUSH_TIMEOUT_S: Final = 540
DRAIN_MARGIN_S: Final = 60
MAX_RUN_S: Final = CDC_FLUSH_TIMEOUT_S - DRAIN_MARGIN_S
_MAX_BODY_BYTES: Final = 4 * 1024


class FlushRequest(BaseModel):
    """Body of a ``cdc_flush`` call (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_run_s: float | None = Field(
        None, gt=0, le=MAX_RUN_S, description="Pull for this long (at most MAX_RUN_S)."
    )
    refresh_staging: bool = Field(True, description="Rebuild the staging tables written to.")


def flush_once(
    warehouse: Warehouse | Callable[[], Warehouse], body: FlushRequest
) -> dict[str, Any]:
    """The core of one invocation: flush run + staging refresh of the touched tables.

    ``warehouse`` may be a factory: then one is opened per flush (and for the refresh) and
    closed after, which the local single-writer DuckDB file needs.
    """
    settings = get_settings()
    started = dt.datetime.now(dt.UTC)
    flusher = CdcFlusher(warehouse, settings)
    stats = flusher.run(max_run_s=body.max_run_s or settings.cdc_flush_max_run_sec)
    out = stats.as_dict()
    full = rebuild_due(started, settings.cdc_staging_rebuild_every_min)
    if body.refresh_staging and (stats.per_table or full):
        # Each run MERGEs what it wrote; the periodic run rebuilds every table as the check and
        # re-appends old live versions so raw partition expiry never drops a key's only copy.
        touched = [ref.removeprefix("raw.cdc_") for ref in stats.per_table]
        refresh = functools.partial(
            refresh_staging,
            tables=None if full else touched,
            full=full,
            checkpoint_days=settings.cdc_checkpoint_days if full else None,
        )
        if isinstance(warehouse, Warehouse):
            out["staging"] = refresh(warehouse)
        else:
            opened = warehouse()
            try:
                out["staging"] = refresh(opened)
            finally:
                opened.close()
        out["staging_mode"] = "rebuild" if full else "merge"
    return out


def _run(warehouse: Warehouse | Callable[[], Warehouse] | None, body: FlushRequest) -> Response:
    """Run :func:`flush_once`; map its outcome to a status code; record the run's metrics."""
    started = time.perf_counter()
    status = "failed"
    try:
        if warehouse is None:
            from edp.warehouse import get_warehouse

            warehouse = get_warehouse  # opened per flush, closed after
        result = flush_once(warehouse, body)
        status = "success"
    except (TransientError, WarehouseError) as exc:
        log.warning("cdc_flush: transient failure: %s", exc)
        return problem(503, "transient", str(exc), headers={"Retry-After": "60"})
    except ConfigError as exc:
        log.error("cdc_flush: configuration error: %s", exc)
        return problem(500, "config", str(exc))
    finally:
        _record_run(status, time.perf_counter() - started)
    return jsonify(result)


def create_app(warehouse: Warehouse | Callable[[], Warehouse] | None = None) -> Flask:
    """The ``cdc_flush`` flask app: ``POST /`` only, bodies through the bounded reader."""
    app = Flask("edp.cdc_flush")
    install_error_path(app)
    reader = BodyReader(_MAX_BODY_BYTES, timeout_s=get_settings().body_read_timeout_sec)

    @app.post("/")
    def flush() -> Response:
        raw = reader.read(request)
        payload = parse_json(raw, max_depth=8) if raw.strip() else {}
        if not isinstance(payload, dict):
            return problem(400, "invalid request", "the body must be a JSON object")
        try:
            body = FlushRequest.model_validate(payload)
        except ValidationError as exc:
            errors = [
                {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            return problem(400, "invalid request", errors[0]["msg"], errors=errors)
        return _run(warehouse, body)

    return app


@cache
def default_app() -> Flask:
    """The app the Cloud Run entry point serves (built on the first request)."""
    return create_app()


def handle(
    request: Request, warehouse: Warehouse | Callable[[], Warehouse] | None = None
) -> Response:
    """Dispatch a functions-framework request through the app's single route."""
    app = default_app() if warehouse is None else create_app(warehouse)
    return dispatch(app, request)


def _record_run(status: str, duration_s: float) -> None:
    """One invocation in the pipeline metrics, exported before the instance is frozen."""
    runs, duration = _run_instruments()
    labels = {"pipeline": "cdc_flush", "task": "flush"}
    runs.add(1, {**labels, "status": status})
    duration.record(duration_s, labels)
    flush_metrics()
    tracing.flush_traces()


@cache
def _run_instruments() -> tuple[Any, Any]:
    meter = get_meter("edp.cdc.app")
    return instrument(meter, "pipeline_runs_total"), instrument(meter, "pipeline_duration_seconds")
