"""The ingest core: parsed payloads in, per-event results out, accepted events published.

Pure apart from the :class:`~edp.ingest.publisher.Publisher` and the clock it is given: no HTTP,
no globals. The flask app (:mod:`edp.ingest.app`) parses the request and calls
:meth:`IngestCore.ingest`; tests and the benchmark call it directly as well.

Per event: size check, Segment mapping (for the compatible routes), ids trimmed (an id that is
only whitespace counts as missing), every SDK timestamp form read (:mod:`edp.ingest.timestamps`),
contract validation, ``event_id`` when absent (uuid4), event time (:func:`event_time`: Segment's
clock-skew rule ``received_at - (sent_at - client_timestamp)``, ``received_at`` for an event that
carried no time of its own, bounded to ``[received_at - max age, received_at + tolerance]`` with
the client value kept in ``params.original_timestamp`` outside it), ``ingested_at``,
``device_type`` (user agent, then the SDK's ``context.device.type``), client IP under the privacy
mode and the load balancer's location (:mod:`edp.ingest.network`). Accepted events of one
request go out as **one** Pub/Sub message of newline-delimited JSON (architecture.md
"Conventions"); each refused event goes to the bad-events topic as a Snowplow-style typed
failure with its reason and (bounded) raw payload.

Example:
    >>> from edp.ingest.publisher import RecordingPublisher
    >>> core = IngestCore(RecordingPublisher(), Limits(), validator=lambda e: dict(e))
    >>> out = core.ingest(IngestRequest(events=[{"event_type": "page_view"}, 7]))
    >>> out.accepted, [r.failure_type for r in out.refusals]
    (1, ['schema_violation'])
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import orjson
from pydantic import ValidationError

from edp.contracts.events import SCHEMA_VERSION
from edp.errors import ContractError
from edp.ingest import segment
from edp.ingest.network import ClientNetwork, IpPrivacy, apply_ip_privacy, valid_ip
from edp.ingest.publisher import OutboundMessage, Publisher
from edp.ingest.timestamps import parse_timestamp
from edp.ingest.useragent import classify

FailureType = Literal["size_violation", "schema_violation", "format_error", "auth"]
Source = Literal["native", "segment"]

# A refused payload is kept for the audit up to this many bytes (then truncated, flagged).
RAW_AUDIT_BYTES: Final = 32 * 1024
_MAX_ERRORS: Final = 10

Validator = Callable[[Mapping[str, Any]], dict[str, Any]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Timezone-aware now in UTC (the default clock)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of one request (from settings: ``max_batch_events`` etc.)."""

    max_batch_events: int = 500
    max_request_bytes: int = 512 * 1024
    max_event_bytes: int = 32 * 1024


@dataclass(frozen=True, slots=True)
class EventPolicy:
    """How ingest treats client times and addresses (from settings).

    Attributes:
        skew_tolerance: how far after ``received_at`` a corrected time may lie.
        max_age: how far before ``received_at`` a corrected time may lie.
        ip_privacy: ``full``, ``truncated`` or ``dropped``.
    """

    skew_tolerance: timedelta = timedelta(seconds=60)
    max_age: timedelta = timedelta(days=30)
    ip_privacy: IpPrivacy = "truncated"


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why one event (``index``) or the whole request (``index`` None) was refused."""

    failure_type: FailureType
    reason: str
    index: int | None = None
    errors: tuple[Mapping[str, Any], ...] = ()

    def as_result(self) -> dict[str, Any]:
        """The per-event result returned to the client."""
        out: dict[str, Any] = {
            "index": self.index,
            "error": self.failure_type,
            "reason": self.reason,
        }
        if self.errors:
            out["errors"] = list(self.errors)
        return out


@dataclass(frozen=True, slots=True)
class IngestRequest:
    """One parsed request: its events plus the request-level fields they inherit.

    Attributes:
        events: the parsed event payloads (anything JSON can hold; non-objects are refused).
        source: ``native`` (``/v1/events``) or ``segment`` (the compatible routes).
        call: for single Segment calls, the call type the route implies (``track``, ...).
        sent_at: the batch-level ``sent_at``/``sentAt`` (per-event values win).
        context: the batch-level Segment ``context`` (per-event values win).
        user_agent: the request's ``User-Agent`` header (device-type fallback).
        received_at: when the request arrived (defaults to the core's clock).
        network: the request's client IP and load-balancer location.
    """

    events: Sequence[object]
    source: Source = "native"
    call: str | None = None
    sent_at: object = None
    context: Mapping[str, Any] | None = None
    user_agent: str | None = None
    received_at: datetime | None = None
    network: ClientNetwork | None = None


@dataclass(slots=True)
class IngestOutcome:
    """What happened to one request."""

    total: int
    accepted: int
    event_ids: list[str]
    refusals: list[Refusal]
    # (event_type, device_type, result) -> count, for events_received_total.
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    messages_published: int = 0

    @property
    def all_accepted(self) -> bool:
        """True when nothing was refused."""
        return not self.refusals


def _bounded_raw(value: object) -> tuple[str, bool]:
    """The payload as text for the audit, cut to RAW_AUDIT_BYTES (flagging truncation)."""
    if isinstance(value, bytes):
        data = value
    else:
        try:
            data = orjson.dumps(value)
        except (TypeError, orjson.JSONEncodeError):
            data = repr(value).encode("utf-8", "backslashreplace")
    truncated = len(data) > RAW_AUDIT_BYTES
    text = data[:RAW_AUDIT_BYTES].decode("utf-8", "backslashreplace")
    return text, truncated


def new_event_id() -> str:
    """A random (version 4) UUID in its canonical text form, as ``str(uuid.uuid4())``.

    The same 122 random bits from ``os.urandom`` with the version and RFC 9562 variant bits
    set, formatted directly: a third of the time of building a ``uuid.UUID`` and printing it,
    once per event that arrives without an id.

    Example:
        >>> import uuid
        >>> parsed = uuid.UUID(new_event_id())
        >>> parsed.version, parsed.variant == uuid.RFC_4122
        (4, True)
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant 10xx
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_ID_FIELDS: Final = ("user_id", "anonymous_id", "session_id")
_TIME_FIELDS: Final = ("client_timestamp", "sent_at")


def _tidy(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Ids trimmed (whitespace-only: absent) and SDK timestamp forms parsed, before validation.

    Example:
        >>> tidy = _tidy({"user_id": "  ", "anonymous_id": " a1 ", "sent_at": "2015-2-02T00:30Z"})
        >>> sorted(tidy), tidy["anonymous_id"], tidy["sent_at"].isoformat()
        (['anonymous_id', 'sent_at'], 'a1', '2015-02-02T00:30:00+00:00')
    """
    event = dict(raw)
    for name in _ID_FIELDS:
        value = event.get(name)
        if isinstance(value, str):
            if value.strip():
                event[name] = value.strip()
            else:
                del event[name]
    for name in _TIME_FIELDS:
        value = event.get(name)
        if isinstance(value, str):
            parsed = parse_timestamp(value)
            if parsed is not None:
                event[name] = parsed
    return event


def _parse_ts(value: object) -> datetime | None:
    """The validated timestamp as an aware datetime (None when absent)."""
    return parse_timestamp(value) if value is not None else None


def event_time(
    received_at: datetime,
    sent_at: datetime | None,
    client_ts: datetime | None,
    policy: EventPolicy,
) -> tuple[datetime, bool]:
    """``(event_timestamp, trusted)``: the corrected time, or ``received_at`` when implausible.

    No client time: ``received_at`` with no correction (Segment: a call without a timestamp
    happened when it was received). Else Segment's rule (:func:`corrected_timestamp`), kept
    only inside ``[received_at - policy.max_age, received_at + policy.skew_tolerance]``;
    outside it ``received_at`` and ``trusted`` False (the caller keeps the client's value).

    Example:
        >>> from datetime import datetime as d
        >>> r = d(2026, 1, 1, 12, 0, tzinfo=UTC)
        >>> event_time(r, d(2020, 1, 1, tzinfo=UTC), None, EventPolicy())[0] == r
        True
        >>> event_time(r, None, d(2027, 1, 1, tzinfo=UTC), EventPolicy()) == (r, False)
        True
    """
    if client_ts is None:
        return received_at, True
    try:
        corrected = corrected_timestamp(received_at, sent_at, client_ts)
    except OverflowError:  # e.g. sentAt in year 9999 and a client time in year 1
        return received_at, False
    if received_at - policy.max_age <= corrected <= received_at + policy.skew_tolerance:
        return corrected, True
    return received_at, False


def corrected_timestamp(
    received_at: datetime, sent_at: datetime | None, client_ts: datetime | None
) -> datetime:
    """Event time corrected for the client's clock skew (Segment's rule).

    ``received_at - (sent_at - client_ts)`` when the client sent both times; its own timestamp
    when it sent no ``sent_at``; ``received_at`` when it sent neither.

    Example:
        >>> from datetime import datetime as d
        >>> corrected_timestamp(d(2026, 1, 1, 12, 0, 10), d(2026, 1, 1, 13, 0, 5),
        ...                     d(2026, 1, 1, 13, 0, 0)).isoformat()
        '2026-01-01T12:00:05'
    """
    if client_ts is None:
        return received_at
    if sent_at is None:
        return client_ts
    return received_at - (sent_at - client_ts)


def _error_list(exc: ValidationError) -> tuple[list[dict[str, Any]], str]:
    errors = [
        {"loc": ".".join(str(p) for p in err["loc"]), "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ][:_MAX_ERRORS]
    first = errors[0] if errors else {"loc": "", "msg": "invalid"}
    where = f"{first['loc']}: " if first["loc"] else ""
    return errors, f"{where}{first['msg']}"


class IngestCore:
    """Validates, enriches and publishes the events of one request.

    Args:
        publisher: where accepted and refused events go.
        limits: request/event size limits.
        validator: contract validation of one client event; returns the validated event as a
            dict (timestamps may be datetimes), raises ``pydantic.ValidationError`` or
            :class:`~edp.errors.ContractError`.
        events_topic: topic of accepted events.
        bad_events_topic: topic of refused events.
        clock: returns the current UTC time.
        policy: client-time bounds and the IP privacy mode.
    """

    def __init__(
        self,
        publisher: Publisher,
        limits: Limits,
        *,
        validator: Validator,
        events_topic: str = "events",
        bad_events_topic: str = "events-bad",
        clock: Clock = utc_now,
        policy: EventPolicy | None = None,
    ) -> None:
        self.publisher = publisher
        self.limits = limits
        self.policy = policy or EventPolicy()
        self.validator = validator
        self.events_topic = events_topic
        self.bad_events_topic = bad_events_topic
        self.clock = clock

    # --- per event ----------------------------------------------------------------------------
    def _accept(
        self, raw: Mapping[str, Any], request: IngestRequest, received_at: datetime, now: datetime
    ) -> dict[str, Any]:
        """Validate and enrich one event (raises ValidationError/ContractError)."""
        device_hint = None
        if request.source == "segment":
            native: dict[str, Any] = segment.to_native(
                raw, call=request.call, batch_context=request.context, batch_sent_at=request.sent_at
            )
            device_hint = segment.device_type_hint(raw, request.context)
            original = raw.get("originalTimestamp", raw.get("timestamp"))
            has_client_time = "client_timestamp" in native
            # the contract wants a client time; a time-less call gets received_at (no correction)
            native.setdefault("client_timestamp", received_at)
        else:
            native = _tidy(raw)
            if request.sent_at is not None and "sent_at" not in native:
                native["sent_at"] = parse_timestamp(request.sent_at) or request.sent_at
            original = raw.get("client_timestamp")
            has_client_time = True
        event = self.validator(native)
        if not event.get("event_id"):
            event["event_id"] = new_event_id()
        client_ts = _parse_ts(event.get("client_timestamp")) if has_client_time else None
        sent_at = _parse_ts(event.get("sent_at"))
        event["event_timestamp"], trusted = event_time(received_at, sent_at, client_ts, self.policy)
        if not trusted:
            params = dict(event.get("params") or {})
            params["original_timestamp"] = original if isinstance(original, str) else str(client_ts)
            if sent_at is not None:
                params["original_sent_at"] = sent_at.isoformat()
            event["params"] = params
        event["received_at"] = received_at
        event["ingested_at"] = now
        event["device_type"], event["platform"] = classify(event, request.user_agent, device_hint)
        self._network(event, request.network)
        event["schema_version"] = SCHEMA_VERSION
        event["source"] = request.source
        return event

    def _network(self, event: dict[str, Any], network: ClientNetwork | None) -> None:
        """Client IP (the event's own, else the request's) under the privacy mode, plus geo.

        The load balancer's location describes the request's address, so an event that names
        its own IP (a server relay) gets none.
        """
        own_ip = valid_ip(event.pop("ip", None))
        ip = own_ip or (network.ip if network else None)
        stored = apply_ip_privacy(ip, self.policy.ip_privacy)
        if stored is not None:
            event["ip"] = stored
        if network is not None and own_ip is None:
            for name in ("geo_country", "geo_region", "geo_city"):
                value = getattr(network, name)
                if value is not None:
                    event[name] = value

    def _one(  # noqa: PLR0911 - one return per refusal kind reads best
        self,
        index: int,
        raw: object,
        request: IngestRequest,
        received_at: datetime,
        now: datetime,
    ) -> tuple[dict[str, Any], bytes] | Refusal:
        """One event: its enriched form and NDJSON line, or why it is refused."""
        if not isinstance(raw, dict):
            return Refusal("schema_violation", "an event must be a JSON object", index)
        try:
            size = len(orjson.dumps(raw))
        except orjson.JSONEncodeError:
            return Refusal("schema_violation", "event is nested too deeply", index)
        if size > self.limits.max_event_bytes:
            return Refusal(
                "size_violation",
                f"event is {size} bytes; the limit is {self.limits.max_event_bytes}",
                index,
            )
        try:
            event = self._accept(raw, request, received_at, now)
        except ValidationError as exc:
            errors, reason = _error_list(exc)
            return Refusal("schema_violation", reason, index, tuple(errors))
        except ContractError as exc:
            return Refusal("schema_violation", str(exc)[:300], index)
        except (OverflowError, ValueError) as exc:
            # Date arithmetic outside datetime's range (e.g. the skew correction of a timestamp
            # near year 1 or 9999): this event's refusal, never the whole request's failure.
            return Refusal("schema_violation", f"timestamp out of range: {exc}"[:300], index)
        try:
            line = orjson.dumps(event, option=orjson.OPT_UTC_Z)
        except orjson.JSONEncodeError:  # the mapping nested it one level deeper than allowed
            return Refusal("schema_violation", "event is nested too deeply", index)
        return event, line

    # --- per request --------------------------------------------------------------------------
    def ingest(self, request: IngestRequest) -> IngestOutcome:
        """Process one request's events; publish accepted and refused ones.

        Returns:
            The outcome: accepted count, generated/kept event ids, per-event refusals.

        Raises:
            PublishError: the bus did not take the events (nothing is acknowledged; retry).
        """
        now = self.clock()
        received_at = request.received_at or now
        accepted: list[dict[str, Any]] = []
        lines: list[bytes] = []  # accepted events serialised (NDJSON lines)
        refusals: list[Refusal] = []
        bad_raw: list[object] = []
        counts: Counter[tuple[str, str, str]] = Counter()
        for index, raw in enumerate(request.events):
            result = self._one(index, raw, request, received_at, now)
            if isinstance(result, Refusal):
                refusals.append(result)
                bad_raw.append(raw)
                label = _label(raw) if isinstance(raw, dict) else "unknown"
                counts[label, "unknown", result.failure_type] += 1
                continue
            event, line = result
            accepted.append(event)
            lines.append(line)
            counts[event["event_type"], event["device_type"], "accepted"] += 1

        published = 0
        messages_bad = [
            self.failure_message(r, raw, source=request.source, received_at=received_at)
            for r, raw in zip(refusals, bad_raw, strict=True)
        ]
        # Refusals first: if the bad-events publish fails the request is answered 503 before any
        # accepted event went out, so the client's retry cannot duplicate accepted events.
        if messages_bad:
            self.publisher.publish(self.bad_events_topic, messages_bad)
            published += len(messages_bad)
        if accepted:
            types = [e["event_type"] for e in accepted]
            self.publisher.publish(self.events_topic, [self.events_message(lines, types)])
            published += 1
        return IngestOutcome(
            total=len(request.events),
            accepted=len(accepted),
            event_ids=[e["event_id"] for e in accepted],
            refusals=refusals,
            counts=counts,
            messages_published=published,
        )

    def refuse_request(
        self,
        failure_type: FailureType,
        reason: str,
        raw: bytes,
        *,
        source: Source = "native",
        received_at: datetime | None = None,
    ) -> Refusal:
        """Audit a request refused as a whole (auth, unparseable, oversize) on the bad topic.

        Raises:
            PublishError: the bad-events topic did not take it.
        """
        refusal = Refusal(failure_type, reason)
        message = self.failure_message(
            refusal, raw, source=source, received_at=received_at or self.clock()
        )
        self.publisher.publish(self.bad_events_topic, [message])
        return refusal

    # --- message formats ----------------------------------------------------------------------
    @staticmethod
    def events_message(lines: Sequence[bytes], event_types: Sequence[str]) -> OutboundMessage:
        """One events-topic message: the accepted events' NDJSON lines + attributes."""
        first = event_types[0]
        same = all(t == first for t in event_types)
        return OutboundMessage(
            b"\n".join(lines),
            {
                "schema_version": SCHEMA_VERSION,
                "event_count": str(len(lines)),
                "event_type": first if same else "mixed",
            },
        )

    @staticmethod
    def failure_message(
        refusal: Refusal, raw: object, *, source: Source, received_at: datetime
    ) -> OutboundMessage:
        """One bad-events message (Snowplow-style typed failure)."""
        text, truncated = _bounded_raw(raw)
        body = {
            "failure_type": refusal.failure_type,
            "reason": refusal.reason,
            "errors": list(refusal.errors),
            "index": refusal.index,
            "source": source,
            "received_at": received_at,
            "raw": text,
            "raw_truncated": truncated,
            "schema_version": SCHEMA_VERSION,
        }
        return OutboundMessage(
            orjson.dumps(body, option=orjson.OPT_UTC_Z),
            {"failure_type": refusal.failure_type, "schema_version": SCHEMA_VERSION},
        )


def _label(raw: Mapping[str, Any]) -> str:
    """A bounded metric label for a refused event's type (never the raw client string)."""
    value = raw.get("event_type", raw.get("type"))
    return "invalid" if value is not None else "unknown"
