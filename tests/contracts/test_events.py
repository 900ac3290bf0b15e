"""The event contract: the JSON Schema is valid, and the generated models agree with it.

Every case runs through both validators (jsonschema with the 2020-12 metaschema, and the
generated pydantic model), so a constraint the generator dropped shows up as a disagreement.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import jsonschema
import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from referencing import Registry, Resource

from edp.contracts.events import (
    DEVICE_TYPES,
    ECOMMERCE_EVENTS,
    EVENT_NAMES,
    PLATFORMS,
    SCHEMA_VERSION,
    ClientEvent,
    EnrichedEvent,
    EventBatch,
    enriched_events_adapter,
    event_json_schema,
)
from edp_tools.contracts.build import EVENT_SCHEMA, repo_root

SCHEMA: dict[str, Any] = json.loads((repo_root() / EVENT_SCHEMA).read_text())
REGISTRY = Registry().with_resource(SCHEMA["$id"], Resource.from_contents(SCHEMA))
UUID = "123e4567-e89b-12d3-a456-426614174000"


def _validator(definition: str) -> Draft202012Validator:
    return Draft202012Validator(
        {"$ref": f"{SCHEMA['$id']}#/$defs/{definition}"},
        registry=REGISTRY,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def test_the_schema_is_valid_json_schema_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_packaged_schema_is_the_source() -> None:
    assert event_json_schema() == SCHEMA


def test_event_names_cover_ga4_ecommerce_and_lifecycle_events() -> None:
    required = {
        "view_item_list", "select_item", "view_item", "add_to_cart", "remove_from_cart",
        "view_cart", "begin_checkout", "add_shipping_info", "add_payment_info", "purchase",
        "refund", "page_view", "session_start", "search", "login", "sign_up",
    }  # fmt: skip
    assert required <= set(EVENT_NAMES)
    assert list(EVENT_NAMES) == SCHEMA["$defs"]["EventType"]["enum"]
    assert {"purchase", "refund", "add_to_cart"} <= set(ECOMMERCE_EVENTS)
    assert "page_view" not in ECOMMERCE_EVENTS
    assert DEVICE_TYPES == ("mobile", "desktop", "tablet", "bot", "unknown")
    assert PLATFORMS == ("web", "ios", "android", "server")
    assert SCHEMA_VERSION == SCHEMA["x-schema-version"] == "1.0"


BASE: dict[str, Any] = {
    "event_type": "page_view",
    "client_timestamp": "2026-11-26T10:00:00+09:00",
    "anonymous_id": "anon-1",
}
PURCHASE: dict[str, Any] = {
    **BASE,
    "event_type": "purchase",
    "user_id": "u-1",
    "transaction_id": "o-1",
    "currency": "KRW",
    "value": 59000,
    "items": [{"item_id": "p-1", "price": 59000, "quantity": 1}],
}


def _with(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(base)
    for key, value in changes.items():
        if value is _DROP:
            event.pop(key, None)
        else:
            event[key] = value
    return event


_DROP = object()

# (case id, event, valid?)
CLIENT_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("minimal page_view", BASE, True),
    ("full purchase", PURCHASE, True),
    ("user_id only", _with(BASE, anonymous_id=_DROP, user_id="u-1"), True),
    ("client event_id", _with(BASE, event_id=UUID), True),
    ("null optionals", _with(BASE, user_id=None, session_id=None, items=None, params=None), True),
    ("empty items list", _with(BASE, items=[]), True),
    ("params free-form", _with(BASE, params={"search_term": "shoes", "n": [1, {"a": None}]}), True),
    ("refund", _with(PURCHASE, event_type="refund", items=_DROP), True),
    (
        "every context field",
        _with(
            BASE,
            platform="web",
            page_location="https://shop.example/p/1",
            page_referrer="",
            page_title="P",
            screen_name="Home",
            screen_resolution="1920x1080",
            user_agent="Mozilla/5.0",
            os_name="iOS",
            os_version="17.1",
            app_version="3.2.1",
            locale="ko-KR",
            sent_at="2026-11-26T01:00:01Z",
            schema_version="1.0",
            session_id="s",
        ),
        True,
    ),
    ("missing event_type", _with(BASE, event_type=_DROP), False),
    ("unknown event_type", _with(BASE, event_type="add_to_basket"), False),
    ("null event_type", _with(BASE, event_type=None), False),
    ("missing client_timestamp", _with(BASE, client_timestamp=_DROP), False),
    ("null client_timestamp", _with(BASE, client_timestamp=None), False),
    ("no identity", _with(BASE, anonymous_id=_DROP), False),
    ("null identities", _with(BASE, anonymous_id=None, user_id=None), False),
    ("empty anonymous_id", _with(BASE, anonymous_id=""), False),
    ("bad event_id", _with(BASE, event_id="not-a-uuid"), False),
    ("unknown top-level field", _with(BASE, color="red"), False),
    ("purchase without transaction_id", _with(PURCHASE, transaction_id=_DROP), False),
    ("purchase with null value", _with(PURCHASE, value=None), False),
    ("refund without currency", _with(PURCHASE, event_type="refund", currency=_DROP), False),
    ("lowercase currency", _with(PURCHASE, currency="krw"), False),
    ("item without item_id", _with(PURCHASE, items=[{"item_name": "Shoe"}]), False),
    ("item with empty item_id", _with(PURCHASE, items=[{"item_id": ""}]), False),
    ("item quantity 0", _with(PURCHASE, items=[{"item_id": "p", "quantity": 0}]), False),
    ("negative price", _with(PURCHASE, items=[{"item_id": "p", "price": -1}]), False),
    ("unknown item field", _with(PURCHASE, items=[{"item_id": "p", "size": "L"}]), False),
    ("items not a list", _with(BASE, items={"item_id": "p"}), False),
    ("unknown platform", _with(BASE, platform="windows"), False),
    ("bad screen_resolution", _with(BASE, screen_resolution="big"), False),
    ("schema major 2", _with(BASE, schema_version="2.0"), False),
    ("params not an object", _with(BASE, params="x=1"), False),
]


@pytest.mark.parametrize(("case", "event", "valid"), CLIENT_CASES, ids=[c[0] for c in CLIENT_CASES])
def test_client_event_cases_agree_with_the_json_schema(
    case: str, event: dict[str, Any], valid: bool
) -> None:
    schema_errors = list(_validator("ClientEvent").iter_errors(event))
    assert (not schema_errors) is valid, schema_errors

    if valid:
        model = ClientEvent.model_validate(event)
        assert model.event_type == event["event_type"]
        # JSON round trip is lossless and still valid.
        again = ClientEvent.model_validate_json(model.model_dump_json())
        assert again == model
    else:
        with pytest.raises(ValidationError):
            ClientEvent.model_validate(event)
        with pytest.raises(ValidationError):
            ClientEvent.model_validate_json(json.dumps(event))


@pytest.mark.parametrize(
    "timestamp",
    ["2026-11-26T10:00:00", "yesterday", "", "2026-13-01T00:00:00Z"],
    ids=["no offset", "words", "empty", "month 13"],
)
def test_timestamps_must_be_rfc3339_with_an_offset(timestamp: str) -> None:
    with pytest.raises(ValidationError):
        ClientEvent.model_validate(_with(BASE, client_timestamp=timestamp))


def test_timestamps_parse_to_aware_datetimes() -> None:
    event = ClientEvent.model_validate(_with(BASE, client_timestamp="2026-11-26T10:00:00+09:00"))
    assert event.client_timestamp == datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def test_validation_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        ClientEvent.model_validate(_with(PURCHASE, items=[{"item_id": "p", "quantity": 0}]))
    assert info.value.errors()[0]["loc"] == ("items", 0, "quantity")


def _enriched(**changes: Any) -> dict[str, Any]:
    server_fields: dict[str, Any] = {
        "event_id": UUID,
        "event_timestamp": "2026-11-26T01:00:00Z",
        "received_at": "2026-11-26T01:00:01Z",
        "ingested_at": "2026-11-26T01:00:01.002Z",
        "device_type": "mobile",
        "platform": "ios",
        "schema_version": "1.0",
        "source": "native",
    }
    return _with(PURCHASE, **{**server_fields, **changes})


ENRICHED_CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("complete", _enriched(), True),
    ("no source", _enriched(source=_DROP), True),
    ("bot device", _enriched(device_type="bot"), True),
    ("missing event_id", _enriched(event_id=_DROP), False),
    ("null event_id", _enriched(event_id=None), False),
    ("missing ingested_at", _enriched(ingested_at=_DROP), False),
    ("missing event_timestamp", _enriched(event_timestamp=_DROP), False),
    ("unknown device_type", _enriched(device_type="phone"), False),
    ("null platform", _enriched(platform=None), False),
    ("missing schema_version", _enriched(schema_version=_DROP), False),
    ("unknown source", _enriched(source="kafka"), False),
    ("unknown field", _enriched(pubsub_message_id="1"), False),
    ("client rule still applies", _enriched(value=_DROP), False),
]


@pytest.mark.parametrize(
    ("case", "event", "valid"), ENRICHED_CASES, ids=[c[0] for c in ENRICHED_CASES]
)
def test_enriched_event_cases_agree_with_the_json_schema(
    case: str, event: dict[str, Any], valid: bool
) -> None:
    schema_errors = list(_validator("EnrichedEvent").iter_errors(event))
    assert (not schema_errors) is valid, schema_errors
    if valid:
        EnrichedEvent.model_validate(event)
    else:
        with pytest.raises(ValidationError):
            EnrichedEvent.model_validate(event)


def test_an_enriched_event_serialises_to_a_line_that_validates_against_the_schema() -> None:
    model = EnrichedEvent.model_validate(_enriched())
    line = model.model_dump_json(exclude_none=True)
    assert "\n" not in line
    assert list(_validator("EnrichedEvent").iter_errors(json.loads(line))) == []
    assert enriched_events_adapter().validate_json(f"[{line},{line}]") == [model, model]


@pytest.mark.parametrize(
    ("body", "valid"),
    [
        ({"events": [BASE]}, True),
        ({"events": [BASE, PURCHASE], "sent_at": "2026-11-26T01:00:00Z"}, True),
        ({"events": []}, False),
        ({}, False),
        ({"events": None}, False),
        ({"events": [BASE], "write_key": "k"}, False),
        ({"events": [_with(BASE, event_type="nope")]}, False),
    ],
    ids=["one", "two", "empty", "missing", "null", "extra key", "bad event"],
)
def test_event_batch(body: dict[str, Any], valid: bool) -> None:
    assert (not list(_validator("EventBatch").iter_errors(body))) is valid
    if valid:
        assert len(EventBatch.model_validate(body).events) == len(body["events"])
    else:
        with pytest.raises(ValidationError):
            EventBatch.model_validate(body)


def test_the_root_of_the_schema_validates_one_client_event() -> None:
    validator = Draft202012Validator(SCHEMA)
    assert validator.is_valid(BASE)
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(_with(BASE, event_type="nope"))
