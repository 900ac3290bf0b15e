"""The Debezium envelope contract (schemas/cdc/): what the local CDC reader emits conforms."""

from __future__ import annotations

import copy
import json
from typing import Any

import orjson
import pytest
from jsonschema import Draft202012Validator

from edp_tools.cdc.encoding import OID_INT8, OID_NUMERIC, OID_TEXT, OID_TIMESTAMPTZ
from edp_tools.cdc.reader import TableEncoder
from edp_tools.contracts.build import repo_root

SCHEMA: dict[str, Any] = json.loads(
    (repo_root() / "schemas/cdc/debezium_envelope.schema.json").read_text()
)
VALIDATOR = Draft202012Validator(SCHEMA)
NUMERIC_12_2 = ((12 << 16) | 2) + 4  # PostgreSQL typmod of numeric(12, 2)


@pytest.fixture
def encoder() -> TableEncoder:
    return TableEncoder(
        "cdc",
        "shop",
        schema="shop",
        table="orders",
        columns=[
            ("order_id", OID_INT8, -1, True),
            ("total_amount", OID_NUMERIC, NUMERIC_12_2, True),
            ("created_at", OID_TIMESTAMPTZ, -1, True),
            ("note", OID_TEXT, -1, False),
        ],
        key=("order_id",),
    )


def _message(encoder: TableEncoder, op: str, before: Any, after: Any) -> dict[str, Any]:
    raw = encoder.message(
        op,
        before,
        after,
        ts_ms=1_764_118_800_000,
        ts_us=1_764_118_800_000_000,
        snapshot="false" if op != "r" else "true",
        sequence='["100","120"]',
        tx_id=42 if op != "r" else None,
        lsn=120,
        transaction={"id": "42:120", "total_order": 1, "data_collection_order": 1}
        if op != "r"
        else None,
    )
    message: dict[str, Any] = orjson.loads(raw)
    return message


def test_the_envelope_schema_is_valid_json_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("op", ["c", "r", "u", "d"])
def test_reader_messages_conform(encoder: TableEncoder, op: str) -> None:
    row = encoder.row(("1", "59000.00", "2026-11-26 01:00:00+00", None))
    before = row if op in ("u", "d") else None
    after = None if op == "d" else row

    message = _message(encoder, op, before, after)

    assert list(VALIDATOR.iter_errors(message)) == []
    assert message["payload"]["source"]["lsn"] == 120


def _bad(encoder: TableEncoder, edit: Any) -> dict[str, Any]:
    message = _message(encoder, "c", None, encoder.row(("1", "1.00", "2026-11-26 01:00:00+00", "")))
    broken = copy.deepcopy(message)
    edit(broken["payload"])
    return broken


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: p.update(op="x"),
        lambda p: p.update(after=None),  # a create without an after image
        lambda p: p.update(op="d"),  # a delete without a before image
        lambda p: p.update(before={"order_id": 1}),  # a create with a before image
        lambda p: p.pop("source"),
        lambda p: p["source"].pop("table"),
        lambda p: p["source"].update(connector="mysql"),
        lambda p: p.update(transaction={"id": "1:2"}),
        lambda p: p.update(extra=1),
    ],
    ids=[
        "unknown op",
        "create without after",
        "delete without before",
        "create with before",
        "no source",
        "no table",
        "other connector",
        "partial transaction",
        "unknown key",
    ],
)
def test_off_contract_envelopes_are_refused(encoder: TableEncoder, edit: Any) -> None:
    assert not VALIDATOR.is_valid(_bad(encoder, edit))
