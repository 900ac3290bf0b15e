"""Handling one ingest request, for every route: authenticate, read, parse, shape, ingest, answer.

:class:`IngestService` is what the flask app (:mod:`edp.ingest.app`) calls from each route; it
holds the core, the bounded body reader, the write keys, the CORS policy and the metrics. A
whole request refused is a :class:`_Refused` (audited on the bad topic only once the request is
authenticated); the outcome of an ingested one maps to 200/207/400/413, a bus failure to 503.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Final

import orjson
from flask import Request, Response

from edp.errors import ConfigError
from edp.http.deadline import UploadGate, Watchdog
from edp.http.errors import RequestError, problem
from edp.http.reader import BodyReader, parse_json
from edp.ingest.access import CorsPolicy
from edp.ingest.auth import WriteKeys, body_key, header_key
from edp.ingest.core import (
    EventPolicy,
    FailureType,
    IngestCore,
    IngestOutcome,
    IngestRequest,
    Limits,
    Source,
    Validator,
)
from edp.ingest.metrics import IngestMetrics, ingest_metrics
from edp.ingest.network import client_network
from edp.ingest.publisher import Publisher, PublishError
from edp.ingest.traced import traced_publisher
from edp.settings import Settings

log = logging.getLogger(__name__)

RETRY_AFTER_S: Final = "5"
READY_CACHE_S: Final = 1.0
JSON_TYPE: Final = "application/json"
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
        self._ready_error: str | None = "the event bus has not been checked yet"
        self._ready_lock = threading.Lock()

    # --- readiness ----------------------------------------------------------------------------
    def readiness(self) -> str | None:
        """None when the publisher can reach both topics, else the reason (cached ~1 s)."""
        now = time.monotonic()
        if now - self._ready_at < READY_CACHE_S:
            return self._ready_error
        # One probe refreshes at a time; the others answer the last result instead of queueing
        # behind it. Never block here: under the event-loop server (edp.ingest.asgi) the probe
        # awaits its RPCs on this thread, and a blocked second probe would stop the loop.
        if not self._ready_lock.acquire(blocking=False):
            return self._ready_error
        try:
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
        finally:
            self._ready_lock.release()

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
        key = header_key(req)
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
        key = body_key(body)
        if not self.keys.valid(key):
            if key is None:
                raise self._stranger(route, 401, "missing write key", "missing_key")
            raise self._stranger(route, 401, "unknown write key", "unknown_key")
        self._check_origin(route, req, key)

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
            return unavailable(f"event bus unavailable: {exc}")
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
            return json_response(body, 200)
        body["results"] = [r.as_result() for r in outcome.refusals]
        if outcome.accepted:
            return json_response(body, 207)
        if all(r.failure_type == "size_violation" for r in outcome.refusals):
            return json_response(body, 413)
        return json_response(body, 400)

    # --- CORS ---------------------------------------------------------------------------------
    def allowed_origin(self, origin: str | None, key: str | None = None) -> str | None:
        """The Access-Control-Allow-Origin value for ``origin`` (using ``key``), or None."""
        if key is None:
            return self.cors.preflight_origin(origin)
        return self.cors.for_key(origin, key)


def json_response(body: Mapping[str, Any], status: int) -> Response:
    return Response(orjson.dumps(body), status=status, mimetype=JSON_TYPE)


def unavailable(reason: str) -> Response:
    response = json_response({"success": False, "error": "unavailable", "reason": reason}, 503)
    response.headers["Retry-After"] = RETRY_AFTER_S
    return response
