"""Segment / RudderStack tracking-API messages mapped onto the platform's event contract.

The SDKs (analytics.js, analytics-python, analytics-node, RudderStack's SDKs) send, per call::

    {"type": "track", "event": "Product Added", "userId": "u1", "anonymousId": "a1",
     "messageId": "ajs-next-...", "timestamp": "...", "originalTimestamp": "...",
     "sentAt": "...", "context": {"library": {...}, "userAgent": "...", "page": {...}},
     "properties": {...}, "integrations": {...}}

and batch them as ``{"batch": [...], "sentAt": "...", "context": {...}, "writeKey": "..."}``.
Track event names follow Segment's e-commerce spec ("Product Added", "Order Completed"); they
are mapped to the GA4 names the contract uses; any other name is snake_cased
("Signed Up" -> ``sign_up`` is a known alias, "Coupon Applied" -> ``coupon_applied``), which the
contract's validation then accepts or refuses.

Example:
    >>> to_native({"type": "track", "event": "Product Added", "anonymousId": "a1",
    ...            "properties": {"product_id": "p1", "price": 9.5, "quantity": 2}})["event_type"]
    'add_to_cart'
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from edp.errors import ContractError
from edp.ingest.timestamps import parse_timestamp

# Segment e-commerce spec v2 (and RudderStack's identical names) -> GA4 e-commerce names.
SEGMENT_TO_GA4: Final[Mapping[str, str]] = {
    "products searched": "search",
    "product list viewed": "view_item_list",
    "product list filtered": "view_item_list",
    "product clicked": "select_item",
    "product viewed": "view_item",
    "product added": "add_to_cart",
    "product removed": "remove_from_cart",
    "cart viewed": "view_cart",
    "checkout started": "begin_checkout",
    "checkout step viewed": "begin_checkout",
    "shipping info entered": "add_shipping_info",
    "payment info entered": "add_payment_info",
    "checkout step completed": "begin_checkout",
    "order completed": "purchase",
    "order refunded": "refund",
    "product added to wishlist": "add_to_wishlist",
    "promotion viewed": "view_promotion",
    "promotion clicked": "select_promotion",
    "signed up": "sign_up",
    "signed in": "login",
    "logged in": "login",
    "session started": "session_start",
    "application opened": "session_start",
}
"""Reviewed against the default triggers of Segment's Google Analytics 4 (actions) destination
(segmentio/action-destinations ``google-analytics-4/*/index.ts`` ``defaultSubscription``):
every default is here with the same GA4 name. Names with no default there, and our choice:

- ``Product List Filtered`` -> ``view_item_list``: filtering shows the visitor a new list.
- ``Checkout Step Viewed`` / ``Checkout Step Completed`` -> ``begin_checkout``: the visitor is in
  checkout; a step says nothing about shipping or payment details, so it never counts as
  ``add_shipping_info``/``add_payment_info`` (the closed funnel counts a journey once however many
  begin_checkout events it has).
- ``Shipping Info Entered`` -> ``add_shipping_info``: the GA4 recommended event of the same
  meaning (the destination has no action for it).
- ``Logged In`` -> ``login`` (an alias of ``Signed In``).
- ``Session Started`` / ``Application Opened`` (mobile lifecycle) -> ``session_start``.
- Any other name is snake_cased and must then be a contract event name, else it is refused (400).
"""

# The per-call "type" -> event_type for calls that have no event name.
CALL_EVENT_TYPES: Final[Mapping[str, str]] = {
    "page": "page_view",
    "screen": "screen_view",
    "identify": "identify",
}

SUPPORTED_CALLS: Final = frozenset({"track", "page", "screen", "identify"})

_NON_WORD = re.compile(r"[^0-9a-zA-Z]+")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class SegmentMappingError(ContractError):
    """A Segment message that cannot be mapped (unknown call type, wrong shapes)."""


def event_name(name: str) -> str:
    """GA4 event name for a Segment event name.

    Example:
        >>> event_name("Order Completed"), event_name("Coupon Applied"), event_name("add_to_cart")
        ('purchase', 'coupon_applied', 'add_to_cart')
    """
    known = SEGMENT_TO_GA4.get(name.strip().lower())
    if known:
        return known
    snake = _NON_WORD.sub("_", _CAMEL.sub("_", name.strip())).strip("_").lower()
    return snake or name


def _str_id(value: object) -> str | None:
    """Segment SDKs stringify ids; numbers are accepted and stringified here too.

    Surrounding whitespace is trimmed and an id that is only whitespace counts as missing, so
    id-less events are refused instead of collapsing into one phantom visitor.

    Example:
        >>> _str_id(" u1 "), _str_id("   "), _str_id(42)
        ('u1', None, '42')
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise SegmentMappingError("ids must be strings or numbers, not booleans")
    if isinstance(value, (str, int, float)):
        return str(value).strip() or None
    raise SegmentMappingError(f"ids must be strings or numbers, not {type(value).__name__}")


def _item(product: Mapping[str, Any]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    item_id = product.get("product_id", product.get("sku", product.get("id")))
    if item_id is not None:
        item["item_id"] = item_id if isinstance(item_id, str) else str(item_id)
    for src, dst in (
        ("name", "item_name"),
        ("category", "item_category"),
        ("brand", "item_brand"),
        ("variant", "item_variant"),
        ("coupon", "coupon"),
        ("price", "price"),
        ("quantity", "quantity"),
    ):
        if product.get(src) is not None:
            item[dst] = product[src]
    return item


def _items(properties: Mapping[str, Any]) -> list[dict[str, Any]] | None:
    products = properties.get("products")
    if isinstance(products, list):
        return [_item(p) for p in products if isinstance(p, Mapping)]
    if any(k in properties for k in ("product_id", "sku")):
        return [_item(properties)]
    return None


def _value(properties: Mapping[str, Any]) -> object:
    # GA4's value excludes tax and shipping, like Segment's revenue (total includes them).
    for key in ("value", "revenue", "total"):
        if properties.get(key) is not None:
            return properties[key]
    price, quantity = properties.get("price"), properties.get("quantity")
    if isinstance(price, (int, float)) and not isinstance(price, bool):
        q = quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else 1
        return price * q
    return None


_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Namespace of the UUIDv5 derived from non-UUID Segment messageIds ("ajs-next-<hex>").
MESSAGE_ID_NAMESPACE: Final = uuid.UUID("6f1c3a52-8a53-4d0e-9a57-1c3a0e2f4b7d")


def event_id_of(message_id: object) -> str | None:
    """The contract's UUID event_id for a Segment ``messageId``.

    UUIDs pass through; other ids (analytics.js sends ``ajs-next-<hex>``) become a UUIDv5 of the
    id, so an SDK retry with the same messageId keeps the same event_id (idempotent downstream).

    Example:
        >>> event_id_of("ajs-next-1a2b") == event_id_of("ajs-next-1a2b")
        True
        >>> event_id_of("0b9a1d1e-5c49-4a53-9c8e-2f1a4b6c7d8e")
        '0b9a1d1e-5c49-4a53-9c8e-2f1a4b6c7d8e'
    """
    text = _str_id(message_id)
    if text is None:
        return None
    if _UUID.match(text):
        return text
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, text))


def _get(mapping: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = mapping.get(key)
    return value if isinstance(value, Mapping) else {}


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _platform(message: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    name = _get(context, "os").get("name")
    if isinstance(name, str) and name.lower() in ("ios", "ipados", "android"):
        return "android" if name.lower() == "android" else "ios"
    channel = message.get("channel")
    if channel in ("web", "server"):
        return str(channel)
    if "page" in context or "userAgent" in context:
        return "web"
    library = _get(context, "library").get("name")
    if (
        isinstance(library, str)
        and library.startswith(("analytics-", "rudder-sdk-"))
        and not library.startswith(("analytics-ios", "analytics-android", "rudder-sdk-ios"))
    ):
        return "server"
    return None  # derived from the user agent by the core


def _time(value: object) -> object:
    """Any SDK/docs timestamp form as a datetime; anything else as is (validation refuses it)."""
    if value is None:
        return None
    parsed = parse_timestamp(value)
    return parsed if parsed is not None else value


def _integrations(value: object) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise SegmentMappingError("integrations must be an object")
    return dict(value) or None


def device_type_hint(
    message: Mapping[str, Any], batch_context: Mapping[str, Any] | None = None
) -> str | None:
    """The SDK's ``context.device.type`` (``ios``, ``android``, ...); the message's wins.

    Server relays send no user agent; this is then what tells a phone from a desktop.

    Example:
        >>> device_type_hint({"context": {"device": {"type": "android"}}})
        'android'
    """
    for context in (message.get("context"), batch_context):
        if isinstance(context, Mapping):
            kind = _get(context, "device").get("type")
            if isinstance(kind, str) and kind.strip():
                return kind.strip()
    return None


def to_native(  # noqa: PLR0912 - one flat mapping table reads best
    message: Mapping[str, Any],
    *,
    call: str | None = None,
    batch_context: Mapping[str, Any] | None = None,
    batch_sent_at: object = None,
) -> dict[str, Any]:
    """Map one Segment/RudderStack message onto the native event shape (client fields only).

    Args:
        message: the SDK message (one element of ``batch`` or a single-call body).
        call: the call type implied by the route (``/v1/track`` -> ``track``); the message's own
            ``type`` wins when present.
        batch_context: the batch-level ``context`` (merged under the message's own).
        batch_sent_at: the batch-level ``sentAt``.

    Returns:
        A dict of the contract's client fields; the contract model validates it next. Segment
        fields without a contract column (the original event name, traits, campaign, library,
        unmapped properties) go to ``params``.

    Raises:
        SegmentMappingError: unsupported call type or wrongly shaped ids/properties.

    Example:
        >>> to_native({"type": "page", "name": "Home", "userId": 42,
        ...            "context": {"page": {"url": "https://shop.example/"}}})["page_location"]
        'https://shop.example/'
    """
    kind = message.get("type", call)
    if not isinstance(kind, str) or kind not in SUPPORTED_CALLS:
        raise SegmentMappingError(
            f"unsupported call type {kind!r}; expected one of {sorted(SUPPORTED_CALLS)}"
        )
    context: dict[str, Any] = dict(batch_context) if isinstance(batch_context, Mapping) else {}
    own_context = message.get("context")
    if own_context is not None and not isinstance(own_context, Mapping):
        raise SegmentMappingError("context must be an object")
    if own_context:
        context.update(own_context)
    properties = message.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, Mapping):
        raise SegmentMappingError("properties must be an object")

    params: dict[str, Any] = dict(properties)
    if kind == "track":
        name = message.get("event")
        if not isinstance(name, str) or not name.strip():
            raise SegmentMappingError("a track call needs an event name")
        event_type = event_name(name)
        params["segment_event"] = name
    else:
        event_type = CALL_EVENT_TYPES[kind]
        for key in ("name", "category"):
            if message.get(key) is not None:
                params.setdefault(key, message[key])
    if kind == "identify":
        traits = message.get("traits", context.get("traits"))
        if traits is not None:
            if not isinstance(traits, Mapping):
                raise SegmentMappingError("traits must be an object")
            params["traits"] = dict(traits)
    campaign = _get(context, "campaign")
    for key, value in campaign.items():
        params.setdefault(f"utm_{key}", value)
    library = _get(context, "library")
    if library:
        params["library"] = f"{library.get('name', '')}/{library.get('version', '')}"

    page = _get(context, "page")
    os_info = _get(context, "os")
    screen = _get(context, "screen")
    resolution = None
    if isinstance(screen.get("width"), int) and isinstance(screen.get("height"), int):
        resolution = f"{screen['width']}x{screen['height']}"
    currency = properties.get("currency")
    if isinstance(currency, str):
        currency = currency.upper()

    native: dict[str, Any] = {
        "event_id": event_id_of(message.get("messageId")),
        "event_type": event_type,
        "client_timestamp": _time(message.get("originalTimestamp", message.get("timestamp"))),
        "sent_at": _time(message.get("sentAt", batch_sent_at)),
        "user_id": _str_id(message.get("userId")),
        "anonymous_id": _str_id(message.get("anonymousId")),
        "session_id": _str_id(context.get("sessionId", properties.get("session_id"))),
        "platform": _platform(message, context),
        "page_location": _str_or_none(page.get("url")) or _str_or_none(properties.get("url")),
        "page_referrer": _str_or_none(page.get("referrer"))
        or _str_or_none(properties.get("referrer")),
        "page_title": _str_or_none(page.get("title")) or _str_or_none(properties.get("title")),
        "screen_name": _str_or_none(message.get("name")) if kind == "screen" else None,
        "screen_resolution": resolution,
        "user_agent": _str_or_none(context.get("userAgent")),
        "os_name": _str_or_none(os_info.get("name")),
        "os_version": _str_or_none(os_info.get("version")),
        "app_version": _str_or_none(_get(context, "app").get("version")),
        "locale": _str_or_none(context.get("locale")),
        "transaction_id": _str_id(properties.get("order_id", properties.get("transaction_id"))),
        "value": _value(properties),
        "currency": currency,
        "tax": properties.get("tax"),
        "shipping": properties.get("shipping"),
        "coupon": properties.get("coupon"),
        "items": _items(properties),
        "ip": _str_or_none(context.get("ip")),
        "integrations": _integrations(message.get("integrations")),
        "params": params or None,
    }
    return {k: v for k, v in native.items() if v is not None}
