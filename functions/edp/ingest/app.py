"""The ingest HTTP app (flask): native API, Segment/RudderStack-compatible API, probes, metrics.

A thin layer over :class:`~edp.ingest.core.IngestCore`: it authenticates, reads the body
(size-capped, gzip-bomb safe), parses JSON, shapes the route's payload into an
:class:`~edp.ingest.core.IngestRequest`, and maps the outcome to a response. The same app is
served three ways: the ``ingest`` Cloud Run function (``functions/main.py``), gunicorn on GKE
(``edp.ingest.wsgi:app`` with ``edp.ingest.gunicorn_conf``) and ``create_app(...).test_client()``
in tests.

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

import base64
import binascii
import hmac
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, Final

import orjson
from flask import Flask, Request, Response, request
from werkzeug.exceptions import HTTPException

from edp.errors import ConfigError
from edp.http.deadline import UploadGate, Watchdog
from edp.http.errors import RequestError, http_error_response, problem
from edp.http.reader import BodyReader, parse_json
from edp.ingest.access import CorsPolicy, install_redaction
from edp.ingest.contract import SCHEMA_VERSION, client_event_validator
from edp.ingest.core import (
    EventPolicy,
    FailureType,
    IngestCore,
    IngestOutcome,
    IngestRequest,
    Limits,
    Source,
    Validator,
    utc_now,
)
from edp.ingest.metrics import IngestMetrics, ingest_metrics
from edp.ingest.network import client_network
from edp.ingest.publisher import Publisher, PublishError, PubSubPublisher
from edp.ingest.traced import traced_handler, traced_publisher
from edp.observability.metrics import prometheus_text
from edp.settings import Settings, get_settings

log = logging.getLogger(__name__)

EXTENSION: Final = "edp_ingest"
RETRY_AFTER_S: Final = "5"
READY_CACHE_S: Final = 1.0
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
_JSON: Final = "application/json"
BEACON_PATH: Final = "/beacon/v1/batch"


class _Refused(Exception):  # noqa: N818 - internal control flow, not an error type for callers
    """A whole request refused: status, failure type and reason.

    ``audit``: record it on the bad topic (only for authenticated requests; a stranger's
    refusal is only counted). ``headers``: extra response headers (Connection, Retry-After).
    """

    def __init__(
        self,
        status: int,
        failure_type: FailureType,
        reason: str,
        *,
        audit: bool = True,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.failure_type = failure_type
        self.reason = reason
        self.audit = audit
        self.headers = dict(headers or {})
        self.code = code or failure_type  # the response's "error" (busy, timeout, ...)

    @classmethod
    def from_request_error(cls, exc: RequestError, *, authenticated: bool) -> _Refused:
        """A bounded-reader/parse refusal; audited only when authenticated and about content."""
        headers: dict[str, str] = {}
        if exc.close:
            headers["Connection"] = "close"
        if exc.retry_after:
            headers["Retry-After"] = exc.retry_after
        failure: FailureType = "size_violation" if exc.status == 413 else "format_error"
        about_content = exc.status in (400, 413)
        return cls(
            exc.status,
            failure,
            exc.reason,
            audit=authenticated and about_content,
            headers=headers,
            code=failure if about_content else exc.error,
        )


class _MeasuredPublisher:
    """Wraps a Publisher to record pubsub_* metrics."""

    def __init__(self, inner: Publisher, metrics: IngestMetrics) -> None:
        self.inner = inner
        self._m = metrics

    def publish(self, topic: str, messages: Sequence[Any]) -> None:
        start = time.perf_counter()
        try:
            self.inner.publish(topic, messages)
        except PublishError:
            self._m.published.add(len(messages), (topic, "error"))
            raise
        finally:
            self._m.publish_latency.record(time.perf_counter() - start, {"topic": topic})
        self._m.published.add(len(messages), (topic, "ok"))

    def check(self, topic: str) -> None:
        self.inner.check(topic)

    def close(self) -> None:
        self.inner.close()


class WriteKeys:
    """Constant-time write-key check against every configured key.

    Example:
        >>> WriteKeys(["k1", "k2"]).valid("k2"), WriteKeys(["k1"]).valid("k3")
        (True, False)
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    @property
    def enforced(self) -> bool:
        """False when no key is configured (local development only)."""
        return bool(self._keys)

    def valid(self, candidate: str | None) -> bool:
        """True if ``candidate`` equals one configured key (no early exit on a match)."""
        if not self._keys:
            return True
        given = (candidate or "").encode("utf-8", "surrogateescape")
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(given, key)
        return found


def _header_key(req: Request) -> str | None:
    """The write key from ``X-Write-Key`` or Basic auth (key as username), else None."""
    key = req.headers.get("X-Write-Key")
    if key:
        return key
    auth = req.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""  # present but malformed: refused below
        return decoded.split(":", 1)[0]
    if auth:
        return ""
    return None


class IngestService:
    """Request handling shared by the routes (kept on ``app.extensions['edp_ingest']``)."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        validator: Validator,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.metrics = ingest_metrics()
        self.publisher = _MeasuredPublisher(traced_publisher(publisher), self.metrics)
        self.limits = Limits(
            max_batch_events=settings.max_batch_events,
            max_request_bytes=settings.max_request_bytes,
            max_event_bytes=settings.max_event_bytes,
        )
        self.core = IngestCore(
            self.publisher,
            self.limits,
            validator=validator,
            events_topic=settings.topic_events,
            bad_events_topic=settings.topic_bad_events,
            clock=clock,
            policy=EventPolicy(
                skew_tolerance=timedelta(seconds=settings.clock_skew_tolerance_seconds),
                max_age=timedelta(days=settings.max_event_age_days),
                ip_privacy=settings.ip_privacy,
            ),
        )
        self.keys = WriteKeys([k.get_secret_value() for k in settings.write_keys])
        if not self.keys.enforced and settings.environment != "local":
            raise ConfigError(
                f"EDP_WRITE_KEYS is empty in environment {settings.environment!r}; "
                "ingest refuses to run without write keys outside local development"
            )
        self.cors = CorsPolicy(settings.cors_origins, settings.cors_origins_by_key)
        self.reader = BodyReader(
            settings.max_request_bytes,
            timeout_s=settings.body_read_timeout_sec,
            gate=UploadGate(settings.max_concurrent_uploads),
            watchdog=Watchdog(),
        )
        self.max_json_depth = settings.max_json_depth
        self._ready_at = 0.0
        self._ready_error: str | None = None
        self._ready_lock = threading.Lock()

    # --- readiness ----------------------------------------------------------------------------
    def readiness(self) -> str | None:
        """None when the publisher can reach both topics, else the reason (cached ~1 s)."""
        now = time.monotonic()
        if now - self._ready_at < READY_CACHE_S:
            return self._ready_error
        with self._ready_lock:
            if now - self._ready_at < READY_CACHE_S:
                return self._ready_error
            try:
                self.publisher.check(self.settings.topic_events)
                self.publisher.check(self.settings.topic_bad_events)
            except PublishError as exc:
                self._ready_error = str(exc)
            else:
                self._ready_error = None
            self._ready_at = time.monotonic()
            return self._ready_error

    # --- one request --------------------------------------------------------------------------
    def _shape(
        self, route: str, body: object, req: Request, received_at: datetime
    ) -> IngestRequest:
        """The route's payload as an IngestRequest."""
        ua = req.headers.get("User-Agent")
        if route == "events":
            if isinstance(body, list):
                return IngestRequest(body, "native", user_agent=ua, received_at=received_at)
            if isinstance(body, dict) and "events" in body:
                events = body["events"]
                if not isinstance(events, list):
                    raise _Refused(400, "format_error", "'events' must be an array")
                extra = sorted(set(body) - {"events", "sent_at"})
                if extra:
                    raise _Refused(400, "format_error", f"unknown batch fields {extra}")
                shaped = IngestRequest(
                    events,
                    "native",
                    sent_at=body.get("sent_at"),
                    user_agent=ua,
                    received_at=received_at,
                )
                return shaped
            return IngestRequest([body], "native", user_agent=ua, received_at=received_at)
        if not isinstance(body, dict):
            raise _Refused(400, "format_error", "the body must be a JSON object")
        if route == "batch":
            batch = body.get("batch")
            if not isinstance(batch, list):
                raise _Refused(400, "format_error", "'batch' must be an array of messages")
            context = body.get("context")
            shaped = IngestRequest(
                batch,
                "segment",
                sent_at=body.get("sentAt"),
                context=context if isinstance(context, dict) else None,
                user_agent=ua,
                received_at=received_at,
            )
            return shaped
        message = {k: v for k, v in body.items() if k != "writeKey"}
        shaped = IngestRequest(
            [message],
            "segment",
            call=route,
            user_agent=ua,
            received_at=received_at,
        )
        return shaped

    def _stranger(self, route: str, status: int, reason: str, code: str) -> _Refused:
        """An unauthenticated refusal: counted in a metric, never stored."""
        self.metrics.unauthenticated.add(1, (route, code))
        failure: FailureType = "auth" if status == 401 else "format_error"
        return _Refused(
            status, failure, reason, audit=False, code="cors" if status == 403 else None
        )

    def _header_key(self, route: str, req: Request) -> str | None:
        """The key from the headers (or, on the beacon route only, the query string)."""
        key = _header_key(req)
        if "writeKey" in req.args:
            if req.path != BEACON_PATH:
                raise self._stranger(
                    route,
                    400,
                    "a write key in the URL is accepted only on /beacon/v1/batch (URLs are "
                    "logged): send it in X-Write-Key or Basic auth",
                    "key_in_url",
                )
            if key is None:
                # navigator.sendBeacon cannot set headers: RudderStack's beacon sends ?writeKey=.
                key = req.args.get("writeKey", "")
        return key

    def _authenticate_headers(self, route: str, req: Request) -> bool:
        """Check a header (or beacon query) key; True if the request is authenticated by it.

        Raises:
            _Refused: an unknown key, a native request without one, a key in the wrong URL.
        """
        header_key = self._header_key(route, req)
        if header_key is not None and not self.keys.valid(header_key):
            raise self._stranger(route, 401, "unknown write key", "unknown_key")
        if header_key is None and route == "events" and self.keys.enforced:
            raise self._stranger(route, 401, "missing write key", "missing_key")
        self._check_origin(route, req, header_key)
        return header_key is not None or not self.keys.enforced

    def _authenticate_body(self, route: str, req: Request, body: object) -> None:
        """Check the Segment body's ``writeKey`` (the only field looked at before it passes)."""
        body_key = _body_key(body)
        if not self.keys.valid(body_key):
            if body_key is None:
                raise self._stranger(route, 401, "missing write key", "missing_key")
            raise self._stranger(route, 401, "unknown write key", "unknown_key")
        self._check_origin(route, req, body_key)

    def _check_origin(self, route: str, req: Request, key: str | None) -> None:
        if not self.cors.allows(req.headers.get("Origin"), key):
            raise self._stranger(route, 403, "origin not allowed for this key", "origin")

    def _read(self, route: str, req: Request, *, authenticated: bool) -> bytes:
        """The bounded body; refusals audited only when authenticated."""
        try:
            raw = self.reader.read(req)
        except RequestError as exc:
            if not authenticated:
                self.metrics.unauthenticated.add(1, (route, exc.error))
            raise _Refused.from_request_error(exc, authenticated=authenticated) from None
        if not raw.strip():
            if not authenticated:
                raise self._stranger(route, 400, "empty body", "empty")
            raise _Refused(400, "format_error", "empty body")
        return raw

    def _parse(self, route: str, raw: bytes, *, authenticated: bool) -> Any:
        """The body's JSON, depth-bounded; refusals audited only when authenticated."""
        try:
            return parse_json(raw, max_depth=self.max_json_depth)
        except RequestError as exc:
            if not authenticated:
                self.metrics.unauthenticated.add(1, (route, exc.error))
            raise _Refused.from_request_error(exc, authenticated=authenticated) from None

    def handle(self, route: str, req: Request) -> Response:
        """Authenticate, read, parse, ingest; map every outcome to a response.

        Order: the header key is checked before the body is read; without one, the body is
        read (bounded) and parsed only as far as finding its ``writeKey``. Until a key is
        valid nothing is recorded anywhere but a counter.
        """
        received_at = self.core.clock()
        source: Source = "native" if route == "events" else "segment"
        raw = b""
        try:
            authenticated = self._authenticate_headers(route, req)
            raw = self._read(route, req, authenticated=authenticated)
            body = self._parse(route, raw, authenticated=authenticated)
            if not authenticated:
                self._authenticate_body(route, req, body)
            shaped = self._shape(route, body, req, received_at)
            shaped = replace(shaped, network=client_network(req.headers, req.remote_addr))
            count = len(shaped.events)
            if count == 0:
                raise _Refused(400, "format_error", "no events in the request")
            if count > self.limits.max_batch_events:
                raise _Refused(
                    413,
                    "size_violation",
                    f"{count} events in one request; the limit is {self.limits.max_batch_events}",
                )
            outcome = self.core.ingest(shaped)
        except _Refused as refused:
            return self._refuse(refused, raw, source, received_at)
        except PublishError as exc:
            log.warning("ingest publish failed: %s", exc)
            return _unavailable(f"event bus unavailable: {exc}")
        self._count(outcome)
        return self._respond(outcome)

    def _refuse(
        self, refused: _Refused, raw: bytes, source: Source, received_at: datetime
    ) -> Response:
        if refused.audit:
            try:
                self.core.refuse_request(
                    refused.failure_type,
                    refused.reason,
                    raw,
                    source=source,
                    received_at=received_at,
                )
            except PublishError as exc:
                # The refusal itself stands; losing its audit record is logged, not retried.
                log.warning("could not audit a refused request: %s", exc)
            self.metrics.events_received.add(1, ("unknown", "unknown", refused.failure_type))
        response = problem(refused.status, refused.code, refused.reason, headers=refused.headers)
        if refused.status == 401:
            response.headers["WWW-Authenticate"] = 'Basic realm="edp-ingest"'
        return response

    def _count(self, outcome: IngestOutcome) -> None:
        add = self.metrics.events_received.add
        for labels, n in outcome.counts.items():
            add(n, labels)

    @staticmethod
    def _respond(outcome: IngestOutcome) -> Response:
        rejected = len(outcome.refusals)
        body: dict[str, Any] = {
            "success": rejected == 0,
            "accepted": outcome.accepted,
            "rejected": rejected,
        }
        if rejected == 0:
            return _json(body, 200)
        body["results"] = [r.as_result() for r in outcome.refusals]
        if outcome.accepted:
            return _json(body, 207)
        if all(r.failure_type == "size_violation" for r in outcome.refusals):
            return _json(body, 413)
        return _json(body, 400)

    # --- CORS ---------------------------------------------------------------------------------
    def allowed_origin(self, origin: str | None, key: str | None = None) -> str | None:
        """The Access-Control-Allow-Origin value for ``origin`` (using ``key``), or None."""
        if key is None:
            return self.cors.preflight_origin(origin)
        return self.cors.for_key(origin, key)


def _body_key(body: object) -> str | None:
    """The Segment body's ``writeKey`` (top level only: nothing else is looked at)."""
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None


def _json(body: Mapping[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype=_JSON)


def _unavailable(reason: str) -> Response:
    response = _json({"success": False, "error": "unavailable", "reason": reason}, 503)
    response.headers["Retry-After"] = RETRY_AFTER_S
    return response


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
        allowed = service.allowed_origin(request.headers.get("Origin"))
        if request.method == "OPTIONS" and response.status_code != 204:
            allowed = None  # a refused preflight grants nothing
        if allowed:
            response.headers["Access-Control-Allow-Origin"] = allowed
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
            if allowed != "*":
                response.headers.add("Vary", "Origin")
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        code = str(response.status_code)
        metrics.http_requests.add(1, (route, code))
        start = request.environ.get("edp.start")
        if start is not None and route.startswith("/v1/"):
            metrics.request_latency.record(
                time.perf_counter() - start, {"route": route, "code": code}
            )
        return response

    handle = traced_handler(service.handle)

    def _handler(route: str) -> Callable[[], Response]:
        def view() -> Response:
            return handle(route, request)

        view.__name__ = f"ingest_{route}"
        return view

    app.add_url_rule("/v1/events", view_func=_handler("events"), methods=["POST"])
    for path, call in _SEGMENT_ROUTES.items():
        app.add_url_rule(
            f"/v1/{path}", endpoint=f"segment_{path}", view_func=_handler(call), methods=["POST"]
        )
    # RudderStack's JS SDK beacon transport (page unload): a batch, key in the query string.
    app.add_url_rule(
        "/beacon/v1/batch", endpoint="beacon_batch", view_func=_handler("batch"), methods=["POST"]
    )

    @app.get("/healthz")
    def healthz() -> Response:
        return _json({"status": "ok"}, 200)

    @app.get("/readyz")
    def readyz() -> Response:
        error = service.readiness()
        if error is None:
            return _json({"status": "ready"}, 200)
        return _unavailable(error)

    @app.get("/openapi.json")
    def openapi() -> Response:
        return Response(openapi_document(), mimetype=_JSON)

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


@cache
def cached_app() -> Flask:
    """The process-wide app built from the environment's settings (Cloud Run entry point)."""
    return create_app()


def service_of(app: Flask) -> IngestService:
    """The :class:`IngestService` of an app built by :func:`create_app`."""
    service = app.extensions[EXTENSION]
    if not isinstance(service, IngestService):  # pragma: no cover - defensive
        raise ConfigError("not an ingest app")
    return service


__all__ = [
    "SCHEMA_VERSION",
    "IngestService",
    "WriteKeys",
    "cached_app",
    "create_app",
    "openapi_document",
    "service_of",
]
