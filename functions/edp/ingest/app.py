"""The ingest HTTP app (flask): native API, Segment/RudderStack-compatible API, probes, metrics.

The routes, CORS preflight and response hooks over :class:`~edp.ingest.service.IngestService`,
which authenticates (:mod:`edp.ingest.auth`), reads the body (size-capped, gzip-bomb safe),
parses JSON, shapes the route's payload into an :class:`~edp.ingest.core.IngestRequest` for
:class:`~edp.ingest.core.IngestCore`, and maps the outcome to a response. The same app is
served three ways: the ``ingest`` Cloud Run function (``functions/main.py``) and gunicorn on GKE
(``edp.ingest.asgi:app`` with ``edp.ingest.gunicorn_conf``), both through :mod:`edp.ingest.asgi`,
and ``create_app(...).test_client()`` in tests.

Status codes (also in the OpenAPI document at ``/openapi.json``):

* ``200`` every event accepted;
* ``207`` some accepted, some refused: ``results`` lists each refused event (index, error,
  reason); the accepted ones are published (do not resend them);
* ``400`` nothing accepted (unparseable body, or every event invalid), with the reasons;
* ``401`` missing or unknown write key; ``413`` body or batch over the limits (or every event
  over the per-event limit); ``404``/``405`` unknown route/method;
* ``503`` + ``Retry-After`` when the bus did not take the events (nothing was accepted; retry
  the same request: event ids keep retries idempotent downstream).

Client input never produces a 5xx.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Final

from flask import Flask, Response, request
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException

from edp.errors import ConfigError
from edp.http.errors import http_error_response, problem
from edp.ingest.access import install_redaction
from edp.ingest.contract import SCHEMA_VERSION, client_event_validator
from edp.ingest.core import Validator, utc_now
from edp.ingest.publisher import Publisher, PubSubPublisher
from edp.ingest.service import (
    BEACON_PATH,
    JSON_TYPE,
    IngestService,
    json_response,
    unavailable,
)
from edp.ingest.traced import traced_handler
from edp.observability.metrics import prometheus_text
from edp.settings import Settings, get_settings

EXTENSION: Final = "edp_ingest"
# Segment/RudderStack routes -> the call type they imply. analytics.js posts to
# ``<apiHost>/t``, ``/p``, ``/i``, ``/s``, ``/g``, ``/a`` and batches to ``/b`` (apiHost includes
# the ``/v1``); the server SDKs use the long names. group/alias are accepted as routes so their
# refusal carries a reason (the contract has no group/alias events).
_SEGMENT_ROUTES: Final = {
    "track": "track", "t": "track",
    "page": "page", "p": "page",
    "screen": "screen", "s": "screen",
    "identify": "identify", "i": "identify",
    "group": "group", "g": "group",
    "alias": "alias", "a": "alias",
    "batch": "batch", "b": "batch", "import": "batch",
}  # fmt: skip
_CORS_ALLOW_HEADERS: Final = "Authorization, Content-Type, Content-Encoding, X-Write-Key"
_HEADER_TOKEN: Final = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")


@cache
def openapi_document() -> bytes:
    """The OpenAPI 3.1 document shipped with the package (``edp/ingest/openapi.json``)."""
    return resources.files("edp.ingest").joinpath("openapi.json").read_bytes()


def create_app(
    settings: Settings | None = None,
    publisher: Publisher | None = None,
    *,
    validator: Validator | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> Flask:
    """Build the ingest flask app.

    Args:
        settings: platform settings (default: :func:`edp.settings.get_settings`).
        publisher: the message bus (default: :class:`PubSubPublisher` on the settings' project,
            created lazily on first publish).
        validator: contract validation of one client event (default: the generated
            ``ClientEvent`` model of ``schemas/events/event.schema.json``).
        clock: current UTC time (tests pin it).

    Raises:
        ConfigError: no write keys outside local development.
    """
    settings = settings or get_settings()
    if publisher is None:
        publisher = PubSubPublisher(settings.project, emulator_host=settings.pubsub_emulator_host)
    service = IngestService(settings, publisher, validator or client_event_validator(), clock)
    app = Flask("edp.ingest")
    app.extensions[EXTENSION] = service
    metrics = service.metrics

    @app.before_request
    def _start() -> Response | None:
        request.environ["edp.start"] = time.perf_counter()
        if request.method == "OPTIONS":
            return _preflight(service)
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        req = request_ctx.request  # the request itself: each `request.x` is a proxy lookup
        allowed = service.allowed_origin(req.headers.get("Origin"))
        if req.method == "OPTIONS" and response.status_code != 204:
            allowed = None  # a refused preflight grants nothing
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            if allowed != "*":
                response.headers.add("Vary", "Origin")
        route = req.url_rule.rule if req.url_rule is not None else "unmatched"
        code = str(response.status_code)
        metrics.http_requests.add(1, (route, code))
        start = req.environ.get("edp.start")
        if start is not None and route.startswith("/v1/"):
            metrics.request_latency.record(
                time.perf_counter() - start, {"route": route, "code": code}
            )
        return response

    handle = traced_handler(service.handle)

    def _handler(route: str) -> Callable[[], Response]:
        def view() -> Response:
            # The request object itself, not flask's proxy: the service reads a dozen of its
            # attributes, and each read through the proxy is a context lookup.
            return handle(route, request_ctx.request)

        view.__name__ = f"ingest_{route}"
        return view

    app.add_url_rule("/v1/events", view_func=_handler("events"), methods=["POST"])
    for path, call in _SEGMENT_ROUTES.items():
        app.add_url_rule(
            f"/v1/{path}", endpoint=f"segment_{path}", view_func=_handler(call), methods=["POST"]
        )
    # RudderStack's JS SDK beacon transport (page unload): a batch, key in the query string.
    app.add_url_rule(
        BEACON_PATH, endpoint="beacon_batch", view_func=_handler("batch"), methods=["POST"]
    )

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"}, 200)

    @app.get("/readyz")
    def readyz() -> Response:
        error = service.readiness()
        if error is None:
            return json_response({"status": "ready"}, 200)
        return unavailable(error)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(openapi_document(), mimetype=JSON_TYPE)

    @app.get("/metrics")
    def metrics_text() -> Response:
        return Response(prometheus_text(), mimetype="text/plain; version=0.0.4")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        return http_error_response(exc)

    install_redaction()

    return app


def _preflight(service: IngestService) -> Response:
    """Answer a CORS preflight, only for an existing ingest route and the method it serves."""
    rule = request.url_rule
    if rule is None or not (rule.rule.startswith(("/v1/", "/beacon/"))):
        return problem(404, "not_found", "no such route")
    wanted = request.headers.get("Access-Control-Request-Method", "POST").upper()
    if wanted not in (rule.methods or set()) - {"OPTIONS", "HEAD"}:
        return problem(405, "method_not_allowed", f"{wanted} is not served on {rule.rule}")
    allowed = service.allowed_origin(request.headers.get("Origin"))
    if allowed is None:
        return problem(403, "cors", "origin not allowed")
    response = Response(status=204)
    response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
    # Reflect what the SDK asks for (RudderStack's JS SDK adds an ``AnonymousId`` header);
    # the write key, not the header list, is what guards the API.
    requested = request.headers.get("Access-Control-Request-Headers", "")
    reflected = ", ".join(h.strip() for h in requested.split(",") if _HEADER_TOKEN.match(h.strip()))
    response.headers["Access-Control-Allow-Headers"] = reflected or _CORS_ALLOW_HEADERS
    response.headers["Access-Control-Max-Age"] = "86400"
    return response


def service_of(app: Flask) -> IngestService:
    """The :class:`IngestService` of an app built by :func:`create_app`."""
    service = app.extensions[EXTENSION]
    if not isinstance(service, IngestService):  # pragma: no cover - defensive
        raise ConfigError("not an ingest app")
    return service


__all__ = [
    "SCHEMA_VERSION",
    "create_app",
    "openapi_document",
    "service_of",
]
