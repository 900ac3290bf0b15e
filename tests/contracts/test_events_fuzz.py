"""Property test: the generated models accept exactly what the JSON Schema accepts.

Random mutations of valid events (wrong types, nulls, empty strings, dropped keys, bad enum
values, broken items) must get the same verdict from jsonschema and from pydantic. Timestamps
are left valid: their format is covered case by case in test_events.py.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from pydantic import ValidationError
from referencing import Registry, Resource

from edp.contracts.events import ClientEvent
from edp_tools.contracts.build import EVENT_SCHEMA, repo_root

SCHEMA: dict[str, Any] = json.loads((repo_root() / EVENT_SCHEMA).read_text())
VALIDATOR = Draft202012Validator(
    {"$ref": f"{SCHEMA['$id']}#/$defs/ClientEvent"},
    registry=Registry().with_resource(SCHEMA["$id"], Resource.from_contents(SCHEMA)),
)
EVENT_FIELDS = [
    name
    for name, prop in SCHEMA["$defs"]["ClientEventFields"]["properties"].items()
    if prop.get("format") != "date-time"
]
ITEM_FIELDS = list(SCHEMA["$defs"]["Item"]["properties"])
DROP = "<drop>"

# No newlines: Python's `$` matches before a trailing newline, pydantic-core's does not, and
# that (pydantic being stricter) is fine.
# No lone surrogates either: a request body is decoded by orjson, which refuses them ("no low
# surrogate in string"), so no model ever sees one (a fresh CI run drew '\ud800').
text = st.text(
    alphabet=st.characters(blacklist_characters="\n\r", blacklist_categories=("Cs",)), max_size=4
)
values = st.one_of(
    st.none(),
    st.just(DROP),
    text,
    st.integers(min_value=-2, max_value=3),
    # Integral floats are integers to JSON Schema but not to a strict int field: avoid them.
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda x: not x.is_integer()),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(text, st.integers(), max_size=2),
    st.sampled_from(
        ["purchase", "refund", "page_view", "web", "KRW", "1.0", "1920x1080", "u-1",
         "123e4567-e89b-12d3-a456-426614174000"]
    ),
)  # fmt: skip

BASES: list[dict[str, Any]] = [
    {"event_type": "page_view", "client_timestamp": "2026-11-26T10:00:00Z", "anonymous_id": "a"},
    {
        "event_type": "purchase",
        "client_timestamp": "2026-11-26T10:00:00+09:00",
        "user_id": "u",
        "transaction_id": "t",
        "currency": "USD",
        "value": 10.5,
        "items": [{"item_id": "p", "price": 1.5, "quantity": 2}],
    },
]


def _apply(target: dict[str, Any], key: str, value: Any) -> None:
    if value == DROP:
        target.pop(key, None)
    else:
        target[key] = value


@settings(max_examples=400, deadline=None)
@given(
    base=st.sampled_from(BASES),
    event_edits=st.lists(st.tuples(st.sampled_from(EVENT_FIELDS), values), max_size=3),
    item_edits=st.lists(st.tuples(st.sampled_from(ITEM_FIELDS), values), max_size=2),
)
def test_models_and_json_schema_agree(
    base: dict[str, Any],
    event_edits: list[tuple[str, Any]],
    item_edits: list[tuple[str, Any]],
) -> None:
    event = copy.deepcopy(base)
    for key, value in event_edits:
        _apply(event, key, value)
    if isinstance(event.get("items"), list) and event["items"]:
        item = event["items"][0]
        if isinstance(item, dict):
            for key, value in item_edits:
                _apply(item, key, value)

    schema_ok = VALIDATOR.is_valid(event)
    try:
        ClientEvent.model_validate(event)
        model_ok = True
    except ValidationError:
        model_ok = False

    assert model_ok == schema_ok, (event, list(VALIDATOR.iter_errors(event)))
