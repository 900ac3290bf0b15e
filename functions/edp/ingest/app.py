"""The ingest HTTP app (flask): native API, Segment/RudderStack-compatible API, probes, metrics.

The routes, CORS preflight and response hooks over :class:`~edp.ingest.service.IngestService`
(a POST to an ingest route reaches the service through :class:`IngestRoutes`, without flask's
dispatch; everything else is dispatched by flask),
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

import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, Final

from flask import Flask, Request, Response, request
from flask.globals import request_ctx
from werkzeug.exceptions import HTTPException, InternalServerError

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

log = logging.getLogger(__name__)

# The WSGI callable's shape, spelled out: typeshed's aliases exist only for the type checker,
# and the deployed code imports nothing its archive does not install (tests/deploy).
StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

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

    @app.before_request
    def _start() -> Response | None:
        request.environ["edp.start"] = time.perf_counter()
        if request.method == "OPTIONS":
            return _preflight(service)
        return None

    @app.after_request
    def _finish(response: Response) -> Response:
        req = request_ctx.request  # the request itself: each `request.x` is a proxy lookup
        rule = req.url_rule.rule if req.url_rule is not None else "unmatched"
        return _answered(service, req, response, rule, req.environ.get("edp.start"))

    handle = traced_handler(service.handle)
    routes = _ingest_routes()

    def _handler(route: str) -> Callable[[], Response]:
        def view() -> Response:
            # The request object itself, not flask's proxy: the service reads a dozen of its
            # attributes, and each read through the proxy is a context lookup.
            return handle(route, request_ctx.request)

        view.__name__ = f"ingest_{route}"
        return view

    # Registered with flask too: its CORS preflight, 405 (GET on an ingest route) and the URL
    # map of the OpenAPI test read them; the POSTs themselves take IngestRoutes' direct path.
    for path, (endpoint, call) in routes.items():
        app.add_url_rule(path, endpoint=endpoint, view_func=_handler(call), methods=["POST"])
    app.wsgi_app = IngestRoutes(app.wsgi_app, service, handle, routes)  # type: ignore[method-assign]

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


def _ingest_routes() -> dict[str, tuple[str, str]]:
    """Path -> (flask endpoint, call type) of every route that ingests (POST only)."""
    routes = {"/v1/events": ("ingest_events", "events")}
    for path, call in _SEGMENT_ROUTES.items():
        routes[f"/v1/{path}"] = (f"segment_{path}", call)
    # RudderStack's JS SDK beacon transport (page unload): a batch, key in the query string.
    routes[BEACON_PATH] = ("beacon_batch", "batch")
    return routes


def _answered(
    service: IngestService, req: Request, response: Response, rule: str, start: float | None
) -> Response:
    """``response`` with its CORS headers, counted in the request metrics (every route)."""
    allowed = service.allowed_origin(req.headers.get("Origin"))
    if req.method == "OPTIONS" and response.status_code != 204:
        allowed = None  # a refused preflight grants nothing
    if allowed:
        response.headers["Access-Control-Allow-Origin"] = allowed
        response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        if allowed != "*":
            response.headers.add("Vary", "Origin")
    code = str(response.status_code)
    metrics = service.metrics
    metrics.http_requests.add(1, (rule, code))
    if start is not None and rule.startswith("/v1/"):
        metrics.request_latency.record(time.perf_counter() - start, {"route": rule, "code": code})
    return response


class IngestRoutes:
    """WSGI middleware: a POST to an ingest route goes straight to the service; every other
    request (probes, OpenAPI, metrics, preflights, wrong methods, unknown paths) through flask.

    Why: flask's dispatch around the view (request and app contexts, URL matching, hooks,
    teardown) was a third of a single-event request's CPU in the app. Measured in-process under
    the event-loop server (publisher recording only, 10,000 requests, 3 runs): 284-335 µs per
    request through flask, 191-214 µs through this path. This path builds the same request
    object, runs the same handler and the same answer hook (:func:`_answered`), and maps an
    exception as the flask app does (:func:`~edp.http.errors.http_error_response`, a 500
    logged with its traceback).
    """

    def __init__(
        self,
        flask_wsgi: WSGIApp,
        service: IngestService,
        handle: Callable[[str, Request], Response],
        routes: dict[str, tuple[str, str]],
    ) -> None:
        self.flask_wsgi = flask_wsgi  # flask's own dispatch, for everything else
        self._service = service
        self._handle = handle
        self._calls = {path: call for path, (_, call) in routes.items()}

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        call = self._calls.get(path) if environ.get("REQUEST_METHOD") == "POST" else None
        if call is None:
            return self.flask_wsgi(environ, start_response)
        start = time.perf_counter()
        req = Request(environ)
        try:
            response = self._handle(call, req)
        except HTTPException as exc:
            response = http_error_response(exc)
        except Exception:
            log.exception("Exception on %s [POST]", path)  # as flask logs it
            response = http_error_response(InternalServerError())
        return _answered(self._service, req, response, path, start)(environ, start_response)


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
