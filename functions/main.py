"""Cloud Run function entry points, importable by name.

``functions-framework --source functions/main.py --target NAME`` serves any of them; Terraform
deploys each from the same source archive with ``entry_point = NAME``. Every entry point is a
thin adapter over a pure core in the ``edp`` package.
"""

from __future__ import annotations

import flask as _flask
import functions_framework as _ff

# --- ingest ---------------------------------------------------------------------------


@_ff.http
def ingest(request: _flask.Request) -> _flask.Response:
    """Event ingest (HTTP): delegates to the ingest flask app (``edp.ingest.app``).

    The app is built once per instance on the first request (settings, lazy Pub/Sub client).
    """
    from edp.http.dispatch import dispatch
    from edp.ingest.app import cached_app

    # The inner app reads the body once, bounded; functions-framework's drain reads no more.
    return dispatch(cached_app(), request)


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
