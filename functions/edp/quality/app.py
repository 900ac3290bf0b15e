"""The ``quality_check`` HTTP function: one run of the quality agent.

Cloud Scheduler POSTs to it every 30 minutes (OIDC). The body is optional JSON::

    {"tables": ["raw.user_events"], "now": "2026-12-06T12:00:00Z"}

``tables`` limits the run (default: every table with declared checks); ``now`` replays a past
run time (default: the current time). It answers ``200`` with the run's summary (checks by
status, failing checks, incidents and their action), ``400`` for a bad body or an unknown table,
``503`` when the warehouse failed transiently (the scheduler retries), ``500`` on a
configuration error.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Request, Response, jsonify
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from edp.errors import ConfigError, TransientError, UnknownTableError, WarehouseError
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)


class QualityRequest(BaseModel):
    """Body of a ``quality_check`` call (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: list[str] | None = Field(None, min_length=1, description="Tables to check.")
    now: AwareDatetime | None = Field(None, description="Run time (default: now).")


def _error(status: int, error: str, **extra: object) -> Response:
    response = jsonify({"error": error, **extra})
    response.status_code = status
    return response


def handle(request: Request, warehouse: Warehouse | None = None) -> Response:
    """Validate the request, run the agent, map the outcome to a status code."""
    from edp.quality.agent import run_agent

    try:
        body = QualityRequest.model_validate(request.get_json(silent=True) or {})
    except ValidationError as exc:
        errors = [
            {"loc": ".".join(str(p) for p in e["loc"]), "msg": e["msg"]} for e in exc.errors()
        ]
        return _error(400, "invalid request", errors=errors)
    owned = warehouse is None
    try:
        if warehouse is None:
            from edp.warehouse import get_warehouse

            warehouse = get_warehouse()
        outcome = run_agent(warehouse, body.now or datetime.now(UTC), tables=body.tables)
    except UnknownTableError as exc:
        return _error(400, "unknown table", detail=str(exc))
    except (TransientError, WarehouseError) as exc:
        log.warning("quality_check: transient failure: %s", exc)
        return _error(503, "transient", detail=str(exc))
    except ConfigError as exc:
        log.error("quality_check: configuration error: %s", exc)
        return _error(500, "config", detail=str(exc))
    finally:
        if owned and warehouse is not None:
            warehouse.close()
    return jsonify(outcome.as_dict())
