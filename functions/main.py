"""Cloud Run function entry points, importable by name.

``functions-framework --source functions/main.py --target NAME`` serves any of them; Terraform
deploys each from the same source archive with ``entry_point = NAME``. Every entry point is a
thin adapter over a pure core in the ``edp`` package.
"""

from __future__ import annotations

import flask as _flask
import functions_framework as _ff
import functions_framework.aio as _ffa
from starlette.requests import Request as _AsgiRequest
from starlette.responses import Response as _AsgiResponse

# --- ingest ---------------------------------------------------------------------------


@_ffa.http
async def ingest(request: _AsgiRequest) -> _AsgiResponse:
    """Event ingest (HTTP): the ingest app on the worker's event loop (``edp.ingest.asgi``).

    An async function, so functions-framework serves it with its uvicorn worker: each request's
    Publish RPC is awaited on the loop instead of holding a thread. The app is built once per
    instance on the first request (settings, lazy Pub/Sub channel).
    """
    from edp.ingest.asgi import cached_app

    status, headers, body = await cached_app().respond(request.scope, request.receive)
    response = _AsgiResponse(body, status_code=status)
    response.raw_headers = headers  # as the app set them (Content-Length included)
    return response


# --- daily ETL ------------------------------------------------------------------------
@_ff.http
def etl(request: _flask.Request) -> _flask.Response:
    """Daily ETL (HTTP, called by workflows/daily_etl.yaml): run a model or layer for a date.

    Routes and status codes: ``edp.etl.app``. The app and warehouse client are built on the
    first request.
    """
    from edp.etl.app import handle

    return handle(request)


# --- CDC flush ------------------------------------------------------------------------
@_ff.http
def cdc_flush(request: _flask.Request) -> _flask.Response:
    """CDC flush (HTTP, Cloud Scheduler every minute): pull Debezium changes for up to
    ``EDP_CDC_FLUSH_MAX_RUN_SEC``, write ``raw.cdc_*`` idempotently, ack, refresh staging.

    Why scheduled synchronous pull and not a push subscription: ``edp.cdc.flush``.
    """
    from edp.cdc.app import handle

    return handle(request)


# --- SQL cost review ---------------------------------------------------------------------------
@_ff.http
def sql_review(request: _flask.Request) -> _flask.Response:
    """SQL cost review (HTTP): POST a query or script for priced findings; Cloud Scheduler's
    ``{"mode": "scheduled"}`` reviews the day's most expensive jobs and reports to Slack.

    Routes and status codes: ``edp.sqlreview.app``.
    """
    from edp.sqlreview.app import handle

    return handle(request)


# --- data-quality agent -----------------------------------------------------------------------
@_ff.http
def quality_check(request: _flask.Request) -> _flask.Response:
    """Data-quality agent (HTTP, Cloud Scheduler every 30 minutes): run every declared check,
    store the results, report and alert incidents. Routes and status codes: ``edp.quality.app``.
    """
    from edp.quality.app import handle

    return handle(request)
