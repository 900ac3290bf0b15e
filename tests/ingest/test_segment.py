"""Segment/RudderStack-compatible routes with payloads shaped exactly as the SDKs send them.

Shapes (and transport details) follow the SDKs' sources:

* analytics.js (``@segment/analytics-next``): one call per request to ``<apiHost>/t|p|i|s``
  (apiHost ends in ``/v1``), batches to ``/b``; ``Content-Type: text/plain`` (no CORS preflight)
  with the ``writeKey`` in the body; ``messageId`` is ``ajs-next-<...>``; ``userId`` null for
  anonymous visitors; ``_metadata`` and ``integrations`` carried along.
* analytics-python: ``POST /v1/batch`` with Basic auth (key as username), body
  ``{"batch": [...], "sentAt": ..., "writeKey": ...}``, optional gzip; each message has
  ``context.library``, a uuid4 ``messageId``, an ISO ``timestamp`` with offset.
* RudderStack JS SDK v3: ``POST /v1/track`` with Basic auth, ``channel: "web"``,
  ``originalTimestamp``, ``userId: ""`` when anonymous, ``context.sessionId`` as a number.
"""

from __future__ import annotations

import gzip
import uuid
from datetime import datetime
from typing import Any

import orjson
import pytest
from flask import Flask

from edp.ingest.segment import event_id_of, event_name, to_native

from .conftest import WRITE_KEY, Bus, basic

AJS_CONTEXT = {
    "userAgent": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    ),
    "userAgentData": {"brands": [{"brand": "Chromium", "version": "124"}], "mobile": False,
                      "platform": "macOS"},
    "locale": "ko-KR",
    "library": {"name": "analytics.js", "version": "npm:next-1.70.0"},
    "page": {
        "path": "/products/linen-shirt",
        "referrer": "https://www.google.com/",
        "search": "?utm_source=google",
        "title": "Linen shirt | Shop",
        "url": "https://shop.example/products/linen-shirt?utm_source=google",
    },
    "campaign": {"source": "google", "medium": "cpc", "name": "fall-sale"},
}  # fmt: skip


def ajs(type_: str, **fields: Any) -> dict[str, Any]:
    """An analytics.js (analytics-next) message as it goes on the wire."""
    message = {
        "timestamp": "2026-11-26T10:00:00.123Z",
        "integrations": {},
        "type": type_,
        "properties": {},
        "context": AJS_CONTEXT,
        "messageId": "ajs-next-1764151200123-3c1e0a7e-52b1-4fd6-9f7a-6b1f2b7c9d10",
        "anonymousId": "8d7b4a2e-1f3c-4b5d-9e6f-0a1b2c3d4e5f",
        "userId": None,
        "writeKey": WRITE_KEY,
        "sentAt": "2026-11-26T10:00:00.200Z",
        "_metadata": {"bundled": ["Segment.io"], "unbundled": [], "bundledIds": []},
    }
    message.update(fields)
    return message


def python_sdk(event: str, properties: dict[str, Any], user_id: str = "user-42") -> dict[str, Any]:
    """An analytics-python track message (client.py `_enqueue` output)."""
    return {
        "integrations": {},
        "anonymousId": None,
        "properties": properties,
        "timestamp": "2026-11-26T10:00:00.500000+00:00",
        "context": {"library": {"name": "analytics-python", "version": "2.3.3"}},
        "userId": user_id,
        "type": "track",
        "event": event,
        "messageId": str(uuid.uuid4()),
    }


def rudder_track(event: str, properties: dict[str, Any]) -> dict[str, Any]:
    """A RudderStack JS SDK v3 track call."""
    return {
        "channel": "web",
        "context": {
            "traits": {},
            "sessionId": 1764151200000,
            "sessionStart": True,
            "library": {"name": "RudderLabs JavaScript SDK", "version": "3.11.0"},
            "userAgent": (
                "Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko)"
                " Chrome/124.0.0.0 Mobile Safari/537.36"
            ),
            "os": {"name": "", "version": ""},
            "locale": "ko-KR",
            "screen": {"width": 412, "height": 915, "density": 2.625},
            "page": {"url": "https://m.shop.example/cart", "title": "Cart", "referrer": "$direct"},
        },
        "type": "track",
        "messageId": str(uuid.uuid4()),
        "originalTimestamp": "2026-11-26T10:00:00.000Z",
        "anonymousId": str(uuid.uuid4()),
        "userId": "",
        "event": event,
        "properties": properties,
        "integrations": {"All": True},
        "sentAt": "2026-11-26T10:00:02.000Z",
    }


def send(app: Flask, path: str, body: object, headers: dict[str, str], gz: bool = False):
    data = orjson.dumps(body)
    if gz:
        data = gzip.compress(data)
        headers = {**headers, "Content-Encoding": "gzip"}
    return app.test_client().post(path, data=data, headers=headers)


TEXT_PLAIN = {"Content-Type": "text/plain"}


# --- analytics.js ---------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/v1/t", "/v1/track"])
def test_analytics_js_track_product_viewed(app: Flask, bus: Bus, path: str) -> None:
    body = ajs(
        "track",
        event="Product Viewed",
        properties={
            "product_id": "sku-507",
            "sku": "sku-507",
            "category": "apparel",
            "name": "Linen shirt",
            "brand": "Hanbok & Co",
            "variant": "white",
            "price": 39000,
            "quantity": 1,
            "currency": "krw",
        },
    )
    r = send(app, path, body, TEXT_PLAIN)
    assert r.status_code == 200, r.json
    (event,) = bus.events()
    assert event["event_type"] == "view_item"
    assert event["source"] == "segment"
    assert event["event_id"] == event_id_of(body["messageId"])
    assert event["anonymous_id"] == body["anonymousId"] and "user_id" not in event
    assert event["items"] == [
        {
            "item_id": "sku-507",
            "item_name": "Linen shirt",
            "item_brand": "Hanbok & Co",
            "item_category": "apparel",
            "item_variant": "white",
            "price": 39000.0,
            "quantity": 1,
        }
    ]
    assert event["currency"] == "KRW" and event["value"] == 39000
    assert event["page_location"] == AJS_CONTEXT["page"]["url"]
    assert event["page_referrer"] == "https://www.google.com/"
    assert event["page_title"] == "Linen shirt | Shop"
    assert event["locale"] == "ko-KR"
    assert (event["device_type"], event["platform"]) == ("desktop", "web")
    assert event["params"]["segment_event"] == "Product Viewed"
    assert event["params"]["utm_source"] == "google"
    assert event["params"]["library"] == "analytics.js/npm:next-1.70.0"
    # client clock: sent 77 ms after the event; corrected time is 77 ms before receipt
    skew = datetime.fromisoformat(event["received_at"]) - datetime.fromisoformat(
        event["event_timestamp"]
    )
    assert skew.total_seconds() == pytest.approx(0.077)


@pytest.mark.parametrize(
    ("path", "event_type"), [("/v1/p", "page_view"), ("/v1/page", "page_view")]
)
def test_analytics_js_page(app: Flask, bus: Bus, path: str, event_type: str) -> None:
    properties = {"path": "/products/linen-shirt", "url": AJS_CONTEXT["page"]["url"]}
    body = ajs("page", name="Linen shirt", category="Products", properties=properties)
    assert send(app, path, body, TEXT_PLAIN).status_code == 200
    (event,) = bus.events()
    assert event["event_type"] == event_type
    assert event["params"]["name"] == "Linen shirt" and event["params"]["category"] == "Products"


def test_analytics_js_identify(app: Flask, bus: Bus) -> None:
    body = ajs("identify", userId="user-42", traits={"email": "a@b.example", "plan": "gold"})
    del body["properties"]
    assert send(app, "/v1/i", body, TEXT_PLAIN).status_code == 200
    (event,) = bus.events()
    assert event["event_type"] == "identify"
    assert event["user_id"] == "user-42"
    assert event["params"]["traits"] == {"email": "a@b.example", "plan": "gold"}


def test_analytics_js_batch_endpoint(app: Flask, bus: Bus) -> None:
    """The batching dispatcher strips per-event sentAt and posts {writeKey, batch, sentAt}."""
    messages = [ajs("page"), ajs("track", event="Cart Viewed", messageId="ajs-next-2")]
    for m in messages:
        del m["sentAt"]
    body = {"writeKey": WRITE_KEY, "batch": messages, "sentAt": "2026-11-26T10:00:01.000Z"}
    r = send(app, "/v1/b", body, TEXT_PLAIN)
    assert r.status_code == 200
    assert [e["event_type"] for e in bus.events()] == ["page_view", "view_cart"]


def test_same_message_id_gives_same_event_id(app: Flask, bus: Bus) -> None:
    """An SDK retry resends the same messageId: the event_id must not change."""
    body = ajs("track", event="Product Added", properties={"product_id": "p1"})
    send(app, "/v1/t", body, TEXT_PLAIN)
    send(app, "/v1/t", body, TEXT_PLAIN)
    ids = {e["event_id"] for e in bus.events()}
    assert len(ids) == 1


def test_group_and_alias_are_refused_with_a_reason(app: Flask, bus: Bus) -> None:
    r = send(app, "/v1/g", ajs("group", groupId="g1"), TEXT_PLAIN)
    assert r.status_code == 400
    assert "unsupported call type 'group'" in r.json["results"][0]["reason"]
    assert bus.bad()[0]["failure_type"] == "schema_violation"


# --- analytics-python -----------------------------------------------------------------------------
@pytest.mark.parametrize("gz", [False, True])
def test_analytics_python_batch(app: Flask, bus: Bus, gz: bool) -> None:
    batch = [
        python_sdk("Order Completed", {
            "order_id": "o-1001", "total": 78000, "revenue": 70000, "tax": 7000,
            "shipping": 1000, "currency": "KRW", "coupon": "FALL10",
            "products": [
                {"product_id": "sku-1", "name": "Linen shirt", "price": 39000, "quantity": 2},
            ],
        }),
        python_sdk("Signed Up", {"method": "email"}),
        python_sdk("Products Searched", {"query": "linen"}),
    ]  # fmt: skip
    body = {"batch": batch, "sentAt": "2026-11-26T10:00:01.000000+00:00", "writeKey": WRITE_KEY}
    r = send(app, "/v1/batch", body, basic(WRITE_KEY), gz=gz)
    assert r.status_code == 200, r.json
    events = {e["event_type"]: e for e in bus.events()}
    assert set(events) == {"purchase", "sign_up", "search"}
    purchase = events["purchase"]
    assert purchase["transaction_id"] == "o-1001"
    assert purchase["value"] == 70000  # GA4 value = Segment revenue (tax/shipping excluded)
    assert (purchase["tax"], purchase["shipping"], purchase["coupon"]) == (7000, 1000, "FALL10")
    assert purchase["items"][0] == {"item_id": "sku-1", "item_name": "Linen shirt",
                                    "price": 39000.0, "quantity": 2}  # fmt: skip
    assert purchase["user_id"] == "user-42"
    assert (purchase["platform"], purchase["device_type"]) == ("server", "unknown")
    assert events["sign_up"]["params"]["method"] == "email"


def test_analytics_python_partial_batch(app: Flask, bus: Bus) -> None:
    good = python_sdk("Product Added", {"product_id": "p1", "price": 10, "quantity": 1})
    no_ids = python_sdk("Product Added", {"product_id": "p1"}, user_id="")
    unknown = python_sdk("Coupon Applied", {"coupon": "X"})
    body = {"batch": [good, no_ids, unknown], "sentAt": "2026-11-26T10:00:01+00:00"}
    r = send(app, "/v1/batch", body, basic(WRITE_KEY))
    assert r.status_code == 207
    assert r.json["accepted"] == 1
    assert {x["index"] for x in r.json["results"]} == {1, 2}
    reasons = {x["index"]: x["reason"] for x in r.json["results"]}
    assert "user_id" in reasons[1] or "anonymous_id" in reasons[1]
    assert "event_type" in reasons[2]
    assert [e["event_type"] for e in bus.events()] == ["add_to_cart"]
    assert len(bus.bad()) == 2


# --- RudderStack ----------------------------------------------------------------------------------
def test_rudderstack_track(app: Flask, bus: Bus) -> None:
    body = rudder_track("Cart Viewed", {"cart_id": "c-1", "products": [{"product_id": "p9"}]})
    r = send(app, "/v1/track", body, basic(WRITE_KEY))
    assert r.status_code == 200, r.json
    (event,) = bus.events()
    assert event["event_type"] == "view_cart"
    assert event["event_id"] == body["messageId"]
    assert event["session_id"] == "1764151200000"
    assert "user_id" not in event
    assert event["screen_resolution"] == "412x915"
    assert (event["device_type"], event["platform"]) == ("mobile", "web")
    assert datetime.fromisoformat(event["client_timestamp"]) == datetime.fromisoformat(
        body["originalTimestamp"]
    )


def test_rudderstack_screen_from_an_app(app: Flask, bus: Bus) -> None:
    body = {
        "type": "screen", "name": "ProductDetail", "properties": {"name": "ProductDetail"},
        "anonymousId": "a-ios-1", "messageId": str(uuid.uuid4()),
        "originalTimestamp": "2026-11-26T10:00:00.000Z", "sentAt": "2026-11-26T10:00:00.500Z",
        "channel": "mobile",
        "context": {"os": {"name": "iOS", "version": "17.4"}, "app": {"version": "5.2.0"},
                    "device": {"type": "iOS", "model": "iPhone15,2"},
                    "library": {"name": "rudder-sdk-ios", "version": "1.27.0"}},
    }  # fmt: skip
    assert send(app, "/v1/screen", body, basic(WRITE_KEY)).status_code == 200
    (event,) = bus.events()
    assert event["event_type"] == "screen_view"
    assert event["screen_name"] == "ProductDetail"
    assert (event["device_type"], event["platform"]) == ("mobile", "ios")
    assert (event["os_name"], event["os_version"], event["app_version"]) == ("iOS", "17.4", "5.2.0")


# --- pure mapping ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Product Added", "add_to_cart"),
        ("product added", "add_to_cart"),
        ("Order Completed", "purchase"),
        ("Order Refunded", "refund"),
        ("Checkout Started", "begin_checkout"),
        ("Product List Viewed", "view_item_list"),
        ("Product Clicked", "select_item"),
        ("Payment Info Entered", "add_payment_info"),
        ("Signed In", "login"),
        ("add_to_cart", "add_to_cart"),
        ("AddToCart", "add_to_cart"),
        ("Coupon Applied", "coupon_applied"),
    ],
)
def test_event_names(name: str, expected: str) -> None:
    assert event_name(name) == expected


@pytest.mark.parametrize(
    "message",
    [
        {"type": "track"},
        {"type": "track", "event": ""},
        {"type": "track", "event": "x", "properties": []},
        {"type": "track", "event": "x", "context": "nope"},
        {"type": "track", "event": "x", "userId": {"a": 1}},
        {"type": "track", "event": "x", "userId": True},
        {"type": "identify", "traits": [1]},
        {"type": "alias"},
        {"type": 5},
    ],
)
def test_unmappable_messages_raise_contract_errors(message: dict[str, Any]) -> None:
    from edp.errors import ContractError

    with pytest.raises(ContractError):
        to_native(message)


def test_rudderstack_beacon_batch_with_key_in_query(app: Flask, bus: Bus) -> None:
    """navigator.sendBeacon cannot set headers: the key comes as ?writeKey=."""
    body = {"batch": [rudder_track("Product Viewed", {"product_id": "p1"})],
            "sentAt": "2026-11-26T10:00:03.000Z"}  # fmt: skip
    ok = app.test_client().post(
        f"/beacon/v1/batch?writeKey={WRITE_KEY}", data=orjson.dumps(body), headers=TEXT_PLAIN
    )
    bad = app.test_client().post(
        "/beacon/v1/batch?writeKey=nope", data=orjson.dumps(body), headers=TEXT_PLAIN
    )
    assert (ok.status_code, bad.status_code) == (200, 401)
    assert [e["event_type"] for e in bus.events()] == ["view_item"]


@pytest.mark.parametrize("depth", range(248, 258))
def test_deep_traits_at_the_serialiser_limit_never_500(app: Flask, depth: int) -> None:
    """The mapping nests traits one level deeper (params.traits): around orjson's 254-level
    limit the event is either accepted or refused with a reason, never a server error."""
    import json

    traits: object = 1
    for _ in range(depth):
        traits = {"a": traits}
    body = {"type": "identify", "userId": "u1", "traits": traits, "writeKey": WRITE_KEY}
    r = app.test_client().post("/v1/identify", data=json.dumps(body), headers=TEXT_PLAIN)
    assert r.status_code in (200, 400), r.data
    if r.status_code == 400:
        assert r.json["results"][0]["reason"] if "results" in r.json else r.json["reason"]
