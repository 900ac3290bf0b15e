"""Per-event semantics of ingest, table-driven: ids, event time, IP and geo, device, integrations.

The publisher is the in-process RecordingPublisher (the bus is covered by test_core); what is
checked here is the enriched event, read back from the NDJSON line ingest would publish.
Expected values are worked out by hand from Segment's documented rules (spec "Timestamps":
``timestamp = receivedAt - (sentAt - originalTimestamp)``; a call with no timestamp takes
receivedAt) and the policy's bounds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from edp.ingest.contract import client_event_validator
from edp.ingest.core import EventPolicy, IngestCore, IngestRequest, Limits
from edp.ingest.network import ClientNetwork, client_network
from edp.ingest.publisher import RecordingPublisher
from edp.ingest.segment import SEGMENT_TO_GA4

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


def ingest(
    events: list[Any],
    *,
    source: str = "segment",
    policy: EventPolicy | None = None,
    **request: Any,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(accepted events as published, refusal reasons)."""
    publisher = RecordingPublisher()
    core = IngestCore(
        publisher, Limits(), validator=client_event_validator(), clock=lambda: NOW, policy=policy
    )
    outcome = core.ingest(IngestRequest(events, source, received_at=NOW, **request))  # type: ignore[arg-type]
    lines = [
        orjson.loads(line)
        for message in publisher.messages.get("events", [])
        for line in message.data.split(b"\n")
    ]
    return lines, [r.reason for r in outcome.refusals]


def track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Product Viewed", "anonymousId": "a1", **fields}


# --- ids ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("message", "accepted", "user_id", "anonymous_id"),
    [
        (track(anonymousId="  a1  "), True, None, "a1"),
        (track(userId=" u1", anonymousId=None), True, "u1", None),
        (track(userId="   ", anonymousId="\t"), False, None, None),  # no identity at all
        (track(userId="", anonymousId=" "), False, None, None),
        (track(userId="\n", anonymousId="a2"), True, None, "a2"),
        (track(userId=7, anonymousId="  "), True, "7", None),
    ],
)
def test_segment_ids_are_trimmed_and_whitespace_is_missing(
    message: dict[str, Any], accepted: bool, user_id: str | None, anonymous_id: str | None
) -> None:
    events, refusals = ingest([message])
    assert bool(events) is accepted, refusals
    if accepted:
        assert events[0].get("user_id") == user_id
        assert events[0].get("anonymous_id") == anonymous_id


@pytest.mark.parametrize(
    ("fields", "accepted"),
    [
        ({"anonymous_id": "   "}, False),
        ({"user_id": " ", "anonymous_id": ""}, False),
        ({"user_id": " u1 "}, True),
        ({"anonymous_id": "a1", "session_id": "  "}, True),
    ],
)
def test_native_ids_are_trimmed_and_whitespace_is_missing(
    fields: dict[str, Any], accepted: bool
) -> None:
    event = {"event_type": "page_view", "client_timestamp": "2026-11-26T11:59:00Z", **fields}
    events, refusals = ingest([event], source="native")
    assert bool(events) is accepted, refusals
    if accepted:
        assert events[0].get("user_id") in (None, "u1")
        assert "session_id" not in events[0]


# --- event time --------------------------------------------------------------------------------
Z = "Z"
TIME_CASES = [
    # (message fields, batch sentAt, expected event_timestamp, original kept?)
    # no client time, old batch sentAt: received_at, no correction (was years in the future)
    ({}, "2020-01-01T00:00:00Z", "2026-11-26T12:00:00Z", False),
    # client 10 s before send, device clock 1 h fast: received - 10 s
    ({"timestamp": "2026-11-26T12:59:50Z"}, "2026-11-26T13:00:00Z", "2026-11-26T11:59:50Z", False),
    # originalTimestamp wins over timestamp
    (
        {"originalTimestamp": "2026-11-26T11:00:00Z", "timestamp": "2026-11-26T11:30:00Z"},
        "2026-11-26T11:00:05Z",
        "2026-11-26T11:59:55Z",
        False,
    ),
    # no sentAt: the client's own time
    ({"timestamp": "2026-11-25T12:00:00Z"}, None, "2026-11-25T12:00:00Z", False),
    # 30 s in the future is inside the 60 s tolerance
    ({"timestamp": "2026-11-26T12:00:30Z"}, None, "2026-11-26T12:00:30Z", False),
    # 2 minutes in the future: received_at, original kept
    ({"timestamp": "2026-11-26T12:02:00Z"}, None, "2026-11-26T12:00:00Z", True),
    # event after sentAt (inconsistent client): corrected would be 1 h after receipt
    ({"timestamp": "2026-11-26T13:00:00Z"}, "2026-11-26T12:00:00Z", "2026-11-26T12:00:00Z", True),
    # 31 days old (max age 30): received_at, original kept
    ({"timestamp": "2026-10-26T12:00:00Z"}, None, "2026-11-26T12:00:00Z", True),
    # 29 days old: kept as sent
    ({"timestamp": "2026-10-28T12:00:00Z"}, None, "2026-10-28T12:00:00Z", False),
    # the HTTP API docs' unpadded month: parsed, then far too old
    ({"timestamp": "2015-2-02T00:30:08.276Z"}, None, "2026-11-26T12:00:00Z", True),
    # BigQuery's first instant: in range, implausibly old
    ({"timestamp": "0001-01-01T00:00:00Z"}, None, "2026-11-26T12:00:00Z", True),
    # a sentAt at the far end of the range: the correction overflows; received_at, kept
    ({"timestamp": "0001-01-01T00:00:00Z"}, "9999-12-31T00:00:00Z", "2026-11-26T12:00:00Z", True),
]


@pytest.mark.parametrize(("fields", "sent_at", "expected", "kept"), TIME_CASES)
def test_segment_event_time(
    fields: dict[str, Any], sent_at: str | None, expected: str, kept: bool
) -> None:
    events, refusals = ingest([track(**fields)], sent_at=sent_at)
    assert not refusals
    (event,) = events
    assert event["event_timestamp"] == expected.replace("Z", Z)
    assert event["received_at"] == "2026-11-26T12:00:00Z"
    params = event.get("params") or {}
    if kept:
        sent = fields.get("originalTimestamp", fields.get("timestamp"))
        assert params["original_timestamp"] == sent
    else:
        assert "original_timestamp" not in params


def test_bounds_are_configurable() -> None:
    policy = EventPolicy(skew_tolerance=timedelta(minutes=5), max_age=timedelta(days=400))
    events, _ = ingest(
        [track(timestamp="2026-11-26T12:04:00Z"), track(timestamp="2026-01-01T00:00:00Z")],
        policy=policy,
    )
    assert [e["event_timestamp"] for e in events] == [
        "2026-11-26T12:04:00Z",
        "2026-01-01T00:00:00Z",
    ]


def test_native_event_time_bounded_and_original_kept() -> None:
    event = {
        "event_type": "page_view",
        "anonymous_id": "a1",
        "client_timestamp": "2036-11-26T12:00:00+09:00",
        "params": {"search_term": "x"},
    }
    (out,), _ = ingest([event], source="native")
    assert out["event_timestamp"] == "2026-11-26T12:00:00Z"
    assert out["params"] == {"search_term": "x", "original_timestamp": "2036-11-26T12:00:00+09:00"}


def test_native_route_accepts_sdk_forms() -> None:
    forms = ["2026-11-26T11:00:00.1234567", "2026-11-26 11:00:00 +0000 UTC", "2026-11-26"]
    events, refusals = ingest(
        [{"event_type": "page_view", "anonymous_id": "a", "client_timestamp": f} for f in forms],
        source="native",
    )
    assert not refusals
    assert [e["event_timestamp"] for e in events] == [
        "2026-11-26T11:00:00.123456Z",
        "2026-11-26T11:00:00Z",
        "2026-11-26T00:00:00Z",
    ]


# --- IP and geo --------------------------------------------------------------------------------
LB = {
    "X-Forwarded-For": "6.6.6.6, 203.0.113.77, 130.211.0.9",
    "X-Client-Geo-Country": "KR",
    "X-Client-Geo-Region": "KR11",
    "X-Client-Geo-City": "Seoul",
}


@pytest.mark.parametrize(
    ("headers", "remote", "expected"),
    [
        # through Google's LB: the entry it appended before its own address (6.6.6.6 is spoofed)
        (LB, "35.191.0.1", ClientNetwork("203.0.113.77", "KR", "KR11", "Seoul")),
        # Cloud Run's front end appends the client last
        (
            {"X-Forwarded-For": "6.6.6.6, 198.51.100.4"},
            "169.254.1.1",
            ClientNetwork("198.51.100.4"),
        ),
        # no proxy: the peer
        ({}, "192.0.2.10", ClientNetwork("192.0.2.10")),
        # junk in the header: the peer
        ({"X-Forwarded-For": "unknown"}, "192.0.2.10", ClientNetwork("192.0.2.10")),
        ({"X-Client-Geo-Country": " ", "X-Client-Geo-City": ""}, None, ClientNetwork()),
    ],
)
def test_client_network(
    headers: dict[str, str], remote: str | None, expected: ClientNetwork
) -> None:
    assert client_network(headers, remote) == expected


V6 = "2001:db8:85a3:8d3:1319:8a2e:370:7348"


@pytest.mark.parametrize(
    ("mode", "context_ip", "ip", "geo"),
    [
        ("full", None, "203.0.113.77", True),
        ("truncated", None, "203.0.113.0", True),
        ("dropped", None, None, True),
        # a server relay names the user's address: it wins, and the LB's geo (the relay's) is unused
        ("full", V6, V6, False),
        ("truncated", V6, "2001:db8:85a3::", False),
        # a context.ip that is not an address is ignored
        ("full", "localhost", "203.0.113.77", True),
    ],
)  # fmt: skip
def test_ip_privacy_and_geo(mode: str, context_ip: str | None, ip: str | None, geo: bool) -> None:
    context = {"ip": context_ip} if context_ip else {}
    (event,), _ = ingest(
        [track(context=context)],
        policy=EventPolicy(ip_privacy=mode),  # type: ignore[arg-type]
        network=client_network(LB, "35.191.0.1"),
    )
    assert event.get("ip") == ip
    if geo:
        assert (event["geo_country"], event["geo_region"], event["geo_city"]) == (
            "KR",
            "KR11",
            "Seoul",
        )
    else:
        assert "geo_country" not in event


# --- device type, integrations --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("context", "user_agent", "device_type"),
    [
        ({"device": {"type": "android"}}, "analytics-python/2.3.3", "mobile"),  # server relay
        ({"device": {"type": "ios"}}, None, "mobile"),
        ({"device": {"type": "ipad"}}, None, "tablet"),
        ({}, None, "unknown"),
        # a definite user agent wins over the SDK's hint
        ({"device": {"type": "ios"}, "userAgent": "Mozilla/5.0 (iPad; CPU OS 17)"}, None, "tablet"),
    ],
)  # fmt: skip
def test_device_type_from_context(
    context: dict[str, Any], user_agent: str | None, device_type: str
) -> None:
    (event,), _ = ingest([track(context=context)], user_agent=user_agent)
    assert event["device_type"] == device_type


def test_integrations_kept() -> None:
    integrations = {"All": False, "Mixpanel": True, "Google Analytics": {"clientId": "c1"}}
    (event,), _ = ingest([track(integrations=integrations)])
    assert event["integrations"] == integrations
    native = {
        "event_type": "page_view",
        "anonymous_id": "a1",
        "client_timestamp": "2026-11-26T11:00:00Z",
        "integrations": {"All": True},
    }
    (event,), _ = ingest([native], source="native")
    assert event["integrations"] == {"All": True}


# --- the GA4 mapping ---------------------------------------------------------------------------
# Default triggers of Segment's Google Analytics 4 destination, read from
# segmentio/action-destinations packages/destination-actions/src/destinations/google-analytics-4/
# <action>/index.ts defaultSubscription (track event name -> the action's GA4 event).
GA4_DEFAULTS = {
    "Payment Info Entered": "add_payment_info",
    "Product Added": "add_to_cart",
    "Product Added to Wishlist": "add_to_wishlist",
    "Checkout Started": "begin_checkout",
    "Signed In": "login",
    "Order Completed": "purchase",
    "Order Refunded": "refund",
    "Product Removed": "remove_from_cart",
    "Products Searched": "search",
    "Product Clicked": "select_item",
    "Promotion Clicked": "select_promotion",
    "Signed Up": "sign_up",
    "Cart Viewed": "view_cart",
    "Product Viewed": "view_item",
    "Product List Viewed": "view_item_list",
    "Promotion Viewed": "view_promotion",
}


@pytest.mark.parametrize(("name", "ga4"), sorted(GA4_DEFAULTS.items()))
def test_mapping_matches_segment_ga4_defaults(name: str, ga4: str) -> None:
    assert SEGMENT_TO_GA4[name.lower()] == ga4
    (event,), refusals = ingest(
        [track(event=name, properties={"order_id": "o1", "currency": "KRW", "revenue": 1.0})]
    )
    assert event["event_type"] == ga4, refusals


def test_page_call_is_page_view() -> None:
    (event,), _ = ingest([{"type": "page", "anonymousId": "a1"}])
    assert event["event_type"] == "page_view"


# --- the enriched event lands in raw.user_events whole ------------------------------------------
def test_enriched_event_loads_into_raw_with_ip_geo_integrations_and_original_time() -> None:
    from edp.contracts.catalog import load_catalog
    from edp.load.transforms import PubsubEnvelope, RawRowMapper, process_message

    publisher = RecordingPublisher()
    core = IngestCore(publisher, Limits(), validator=client_event_validator(), clock=lambda: NOW)
    message = track(
        timestamp="2026-12-26T12:00:00Z",  # a month in the future: received_at, original kept
        integrations={"All": False, "Mixpanel": True},
        context={"device": {"type": "android"}},
    )
    request = IngestRequest(
        [message], "segment", received_at=NOW, network=client_network(LB, "35.191.0.1")
    )
    assert core.ingest(request).accepted == 1
    (published,) = publisher.messages["events"]
    mapper = RawRowMapper.for_table(load_catalog().table("raw.user_events"))
    batch = process_message(PubsubEnvelope(published.data, "m1", 0), mapper)
    assert not batch.dead_letters
    (row,) = batch.rows
    assert (row["ip"], row["geo_country"], row["geo_region"], row["geo_city"]) == (
        "203.0.113.0",
        "KR",
        "KR11",
        "Seoul",
    )
    assert orjson.loads(row["integrations"]) == {"All": False, "Mixpanel": True}
    assert orjson.loads(row["params"])["original_timestamp"] == "2026-12-26T12:00:00Z"
    assert row["event_timestamp"] == row["received_at"]
    assert row["device_type"] == "mobile"
