"""The one error path of every HTTP function: client faults become a 4xx with a reason.

Every function (``ingest``, ``etl``, ``cdc_flush``) answers refusals in one shape::

    {"success": false, "error": "<short code>", "reason": "<what was wrong>", ...}

:class:`RequestError` carries the status, code and reason of a request refused as a whole (the
bounded reader raises its subclasses); :func:`install_error_path` registers the handlers that
turn it, werkzeug's HTTP errors and anything unexpected into that shape. Only a fault of ours
(a bug, a dependency that failed in a way nobody mapped) answers 500, and it is logged with its
traceback; client input never reaches that branch.

Example:
    >>> problem_body("format_error", "empty body")
    {'success': False, 'error': 'format_error', 'reason': 'empty body'}
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

import orjson
from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from edp.errors import ContractError

log = logging.getLogger(__name__)

JSON: Final = "application/json"


class RequestError(ContractError):
    """A request refused as a whole because of what the client sent.

    Attributes:
        status: the HTTP status (4xx; 503 only for "busy, retry").
        error: short machine-readable code (``format_error``, ``size_violation``, ...).
        reason: what was wrong, for the client.
        close: answer with ``Connection: close`` (the body was not read to its end, so the
            connection cannot carry another request).
        retry_after: seconds for a ``Retry-After`` header, when retrying later helps.
    """

    status: int = 400
    error: str = "format_error"
    close: bool = False
    retry_after: str | None = None

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def failure_type(self) -> str:
        """The code under its ingest name (Snowplow-style failure type)."""
        return self.error


def problem_body(error: str, reason: str, **extra: Any) -> dict[str, Any]:
    """The JSON body of a refusal (one shape for every function)."""
    return {"success": False, "error": error, "reason": reason, **extra}


def problem(
    status: int,
    error: str,
    reason: str,
    *,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response:
    """A refusal response: ``problem_body`` as JSON with ``status`` (and ``headers``)."""
    response = Response(
        orjson.dumps(problem_body(error, reason, **extra), default=str),
        status=status,
        mimetype=JSON,
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def request_error_response(exc: RequestError, **extra: Any) -> Response:
    """The response of a :class:`RequestError` (status, reason, Connection/Retry-After)."""
    headers: dict[str, str] = {}
    if exc.close:
        headers["Connection"] = "close"
    if exc.retry_after:
        headers["Retry-After"] = exc.retry_after
    return problem(exc.status, exc.error, exc.reason, headers=headers, **extra)


def http_error_response(exc: HTTPException) -> Response:
    """A werkzeug HTTP error (404, 405, 400 from the server layer) in the refusal shape."""
    code = exc.code or 400
    name = (exc.name or "error").lower().replace(" ", "_")
    headers: dict[str, str] = {}
    allow = exc.get_response().headers.get("Allow")
    if code == 405 and allow:
        headers["Allow"] = allow
    return problem(code, name, exc.description or name, headers=headers)


def install_error_path(app: Flask) -> None:
    """Register the shared error handlers on ``app``.

    ``RequestError`` -> its 4xx; ``HTTPException`` -> its status; any other exception -> 500,
    logged with its traceback (a fault of ours, never of the input).
    """

    @app.errorhandler(RequestError)
    def _request_error(exc: RequestError) -> Response:
        return request_error_response(exc)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return http_error_response(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("%s: unexpected error", app.name)
        return problem(500, "internal", f"internal error ({type(exc).__name__})")


__all__ = [
    "RequestError",
    "http_error_response",
    "install_error_path",
    "problem",
    "problem_body",
    "request_error_response",
]
