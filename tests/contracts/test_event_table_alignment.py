"""The event contract and raw.user_events agree: every enriched-event field has its column.

Without this, a field added to the JSON Schema but not to the table would be accepted by
ingest and silently dropped by the loader.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from edp.contracts.catalog import FieldSpec, load_catalog
from edp_tools.contracts.build import EVENT_SCHEMA, repo_root

SCHEMA: dict[str, Any] = json.loads((repo_root() / EVENT_SCHEMA).read_text())
DEFS = SCHEMA["$defs"]
TABLE = load_catalog().table("raw.user_events")
# Columns the loader adds; they are not part of the event.
LOAD_AUDIT_COLUMNS = {"pubsub_message_id", "pubsub_publish_time", "loaded_at"}


def _bigquery_type(prop: dict[str, Any]) -> tuple[str, str]:
    """(BigQuery type, mode) a JSON Schema property maps to."""
    if "$ref" in prop:
        target = DEFS[prop["$ref"].rsplit("/", 1)[1]]
        return ("STRING", "NULLABLE") if "enum" in target else ("RECORD", "NULLABLE")
    if "anyOf" in prop:
        (inner,) = [o for o in prop["anyOf"] if o != {"type": "null"}]
        return _bigquery_type(inner)
    types = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
    (kind,) = [t for t in types if t != "null"]
    if kind == "string":
        return ("TIMESTAMP" if prop.get("format") == "date-time" else "STRING"), "NULLABLE"
    if kind == "array":
        inner, _ = _bigquery_type(prop["items"])
        return inner, "REPEATED"
    simple = {"integer": "INT64", "number": "FLOAT64", "boolean": "BOOL", "object": "JSON"}
    return simple[kind], "NULLABLE"


def _event_properties() -> dict[str, dict[str, Any]]:
    props = dict(DEFS["ClientEventFields"]["properties"])
    props.update(DEFS["EnrichedEvent"]["properties"])
    return props


@pytest.mark.parametrize("name", sorted(_event_properties()))
def test_every_event_field_has_a_column_of_the_right_type(name: str) -> None:
    column = TABLE.column(name)
    kind, mode = _bigquery_type(_event_properties()[name])
    assert column.type == kind
    assert (column.mode == "REPEATED") == (mode == "REPEATED")


def test_every_column_comes_from_the_event_or_the_loader() -> None:
    assert set(TABLE.column_names) == set(_event_properties()) | LOAD_AUDIT_COLUMNS


def test_required_event_fields_are_required_columns() -> None:
    required = set(DEFS["EnrichedEvent"]["required"]) | {"event_type"}
    for name in required:
        assert TABLE.column(name).mode == "REQUIRED", name


def test_item_fields_match_the_items_record() -> None:
    items: FieldSpec = TABLE.column("items")
    columns = {f.name: f for f in items.fields}
    props = DEFS["Item"]["properties"]
    assert set(columns) == set(props)
    for name, prop in props.items():
        assert columns[name].type == _bigquery_type(prop)[0], name
    assert columns["item_id"].mode == "REQUIRED"
