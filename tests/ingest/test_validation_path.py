"""Ingest's fast validation path gives exactly what the generated model gives, or its error.

The reference is the model generated from ``schemas/events/event.schema.json``:
``ClientEvent.model_validate(event).model_dump(exclude_none=True)``, or the ValidationError it
raises (every location, message and type). The events are drawn from the contract's own field
names and values around its limits (lengths, patterns, enums, numeric bounds, nulls, extra keys,
nested items) and from arbitrary JSON values, so both sides meet valid and invalid input.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edp.contracts.events import EVENT_NAMES, ClientEvent, Item
from edp.ingest import contract

FIELDS = list(ClientEvent.model_fields)
ITEM_FIELDS = list(Item.model_fields)

_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)  # fmt: skip
_strings = st.sampled_from(
    ["", " ", "a", "x" * 35, "x" * 36, "x" * 64, "x" * 65, "x" * 256, "x" * 257, "x" * 2049,
     "1.0", "1.x", "2.0", "1920x1080", "1920x", "KRW", "krw", "KRWX",
     "0af76519-16cd-43dd-8448-eb211c80319c", "0af7651916cd43dd8448eb211c80319c",
     "2026-11-26T10:00:00Z", "2026-11-26T10:00:00+09:00", "2026-11-26T10:00:00",
     "2026-13-01T00:00:00Z", "not a time", "web", "ios", "tv", *EVENT_NAMES[:6], "purchase",
     "refund", "page_view"]
)  # fmt: skip
_numbers = st.sampled_from([0, 1, -1, 0.5, -0.5, 39000, 1_000_000, 1_000_001, 100_000, 100_001])
_values = _strings | _numbers | st.none() | st.booleans() | _json
_items = st.lists(
    st.dictionaries(st.sampled_from([*ITEM_FIELDS, "sku"]), _values, max_size=6)
    | st.fixed_dictionaries(
        {"item_id": _strings}, optional={"price": _numbers, "quantity": _numbers}
    )
    | _json,
    max_size=3,
)  # fmt: skip
VALID = {
    "event_type": "purchase",
    "anonymous_id": "a1",
    "client_timestamp": "2026-11-26T10:00:00+09:00",
    "transaction_id": "t1",
    "currency": "KRW",
    "value": 39000,
    "items": [{"item_id": "sku-1", "price": 39000, "quantity": 1}],
    "params": {"campaign": None},
}
PAGE_VIEW = {
    "event_type": "page_view",
    "user_id": "u1",
    "session_id": "s1",
    "client_timestamp": "2026-11-26T10:00:00Z",
    "platform": "web",
    "page_location": "https://shop.example/p/1",
}

# Mostly a valid event with one to three fields changed or removed (the boundary of the
# contract), sometimes any dict of contract fields.
_events = st.builds(
    lambda base, drop, changes: {**{k: v for k, v in base.items() if k not in drop}, **changes},
    st.sampled_from([VALID, PAGE_VIEW]),
    st.sets(st.sampled_from(sorted({*VALID, *PAGE_VIEW})), max_size=2),
    st.dictionaries(st.sampled_from([*FIELDS, "eventType", "extra"]), _values | _items, max_size=3),
) | st.dictionaries(st.sampled_from([*FIELDS, "extra"]), _values | _items, max_size=12)


def _outcome(validate: Any, event: dict[str, Any]) -> tuple[str, str]:
    try:
        return "ok", repr(validate(event))  # repr: types and key order too
    except ValidationError as exc:
        return "error", repr(exc.errors(include_url=False))


def _reference(event: dict[str, Any]) -> dict[str, Any]:
    return ClientEvent.model_validate(event).model_dump(exclude_none=True)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_events)
@example(VALID)
@example({**VALID, "user_id": None})  # a null: the model drops it
@example({**VALID, "items": [{"item_id": "sku-1", "item_name": None}]})
@example({k: v for k, v in VALID.items() if k != "transaction_id"})  # the purchase rule
@example({"event_type": "page_view", "client_timestamp": "2026-11-26T10:00:00Z"})  # no id
@example({**VALID, "items": [5]})  # an item that is not an object
def test_the_fast_path_gives_the_models_result_or_its_error(event: dict[str, Any]) -> None:
    assert _outcome(contract._validate, event) == _outcome(_reference, event)


def test_a_valid_event_never_builds_the_model(monkeypatch: pytest.MonkeyPatch) -> None:
    # The point of the path: an accepted event is validated once, into a dict.
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was built for a valid event")

    expected = _reference(VALID)
    monkeypatch.setattr(ClientEvent, "model_validate", refuse)
    assert contract._validate(VALID) == expected
    assert expected["items"] == [{"item_id": "sku-1", "price": 39000.0, "quantity": 1}]
