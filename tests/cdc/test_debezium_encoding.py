"""Debezium's default encodings, table-driven: PostgreSQL text -> Debezium JSON -> Python value."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from edp.cdc import debezium as dbz
from edp_tools.cdc import encoding as enc

UTC = dt.UTC
NUMERIC_12_2 = ((12 << 16) | 2) + 4
NUMERIC_12_4 = ((12 << 16) | 4) + 4

# (case id, type oid, typmod, PostgreSQL text, Debezium JSON value, decoded Python value)
CASES: list[tuple[str, int, int, str, Any, Any]] = [
    ("int2", enc.OID_INT2, -1, "-32768", -32768, -32768),
    ("int4", enc.OID_INT4, -1, "2147483647", 2147483647, 2147483647),
    ("int8", enc.OID_INT8, -1, "-9223372036854775808", -(2**63), -(2**63)),
    ("bool true", enc.OID_BOOL, -1, "t", True, True),
    ("bool false", enc.OID_BOOL, -1, "f", False, False),
    ("float8", enc.OID_FLOAT8, -1, "0.1", 0.1, 0.1),
    ("text unicode", enc.OID_TEXT, -1, "주문 🙂 ünïcode", "주문 🙂 ünïcode", "주문 🙂 ünïcode"),
    ("text empty", enc.OID_TEXT, -1, "", "", ""),
    ("bpchar padded", enc.OID_BPCHAR, 7, "KR ", "KR ", "KR "),
    (
        "uuid",
        enc.OID_UUID,
        -1,
        "eb75b0f5-7ec7-489f-9a22-f80dff1acaa2",
        "eb75b0f5-7ec7-489f-9a22-f80dff1acaa2",
        "eb75b0f5-7ec7-489f-9a22-f80dff1acaa2",
    ),
    # Debezium's documented example: 99.99 at scale 2 is "Jw8=" (0x270F = 9999).
    ("numeric 99.99", enc.OID_NUMERIC, NUMERIC_12_2, "99.99", "Jw8=", Decimal("99.99")),
    ("numeric zero", enc.OID_NUMERIC, NUMERIC_12_2, "0.00", "AA==", Decimal("0.00")),
    ("numeric one cent", enc.OID_NUMERIC, NUMERIC_12_2, "0.01", "AQ==", Decimal("0.01")),
    ("numeric negative", enc.OID_NUMERIC, NUMERIC_12_2, "-12.34", "+y4=", Decimal("-12.34")),
    # Java BigInteger.toByteArray: 1.28 -> unscaled 128 -> 0x0080 (sign byte kept).
    ("numeric sign byte", enc.OID_NUMERIC, NUMERIC_12_2, "1.28", "AIA=", Decimal("1.28")),
    ("numeric -1.28 minimal", enc.OID_NUMERIC, NUMERIC_12_2, "-1.28", "gA==", Decimal("-1.28")),
    (
        "numeric max(12,2)",
        enc.OID_NUMERIC,
        NUMERIC_12_2,
        "9999999999.99",
        "AOjUpQ//",
        Decimal("9999999999.99"),
    ),
    (
        "numeric scale 4",
        enc.OID_NUMERIC,
        NUMERIC_12_4,
        "115731.9070",
        "RPtJng==",
        Decimal("115731.9070"),
    ),
    (
        "numeric variable scale",
        enc.OID_NUMERIC,
        -1,
        "3.14159",
        {"scale": 5, "value": "BMsv"},
        Decimal("3.14159"),
    ),
    (
        "timestamptz micros",
        enc.OID_TIMESTAMPTZ,
        -1,
        "2026-11-26 23:36:10.123456+00",
        "2026-11-26T23:36:10.123456Z",
        dt.datetime(2026, 11, 26, 23, 36, 10, 123456, tzinfo=UTC),
    ),
    (
        # Padded to the column's fraction width (6 without a typmod): ZonedTimestamp.toIsoString
        # with fractionalWidth, PostgresValueConverter.convertTimestampWithZone (DBZ-5996).
        "timestamptz pads the fraction",
        enc.OID_TIMESTAMPTZ,
        -1,
        "2026-11-26 23:36:10.1+00",
        "2026-11-26T23:36:10.100000Z",
        dt.datetime(2026, 11, 26, 23, 36, 10, 100000, tzinfo=UTC),
    ),
    (
        "timestamptz whole second",
        enc.OID_TIMESTAMPTZ,
        -1,
        "2026-01-01 00:00:00+00",
        # AbstractRecordsProducerTest (v3.0.7.Final) tz_zero: "+21016-11-04T06:51:30.000000Z".
        "2026-01-01T00:00:00.000000Z",
        dt.datetime(2026, 1, 1, tzinfo=UTC),
    ),
    (
        "timestamptz one micro",
        enc.OID_TIMESTAMPTZ,
        -1,
        "1999-12-31 23:59:59.000001+00",
        "1999-12-31T23:59:59.000001Z",
        dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=UTC),
    ),
    (
        "timestamp micros",
        enc.OID_TIMESTAMP,
        -1,
        "2026-11-27 08:36:10.000001",
        1795768570000001,
        dt.datetime(2026, 11, 27, 8, 36, 10, 1),
    ),
    (
        "timestamp before epoch",
        enc.OID_TIMESTAMP,
        -1,
        "1969-12-31 23:59:59.999999",
        -1,
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999),
    ),
    (
        "timestamp(3) millis",
        enc.OID_TIMESTAMP,
        3,
        "1970-01-01 00:00:01.5",
        1500,
        dt.datetime(1970, 1, 1, 0, 0, 1, 500000),
    ),
    ("date", enc.OID_DATE, -1, "2026-11-27", 20784, dt.date(2026, 11, 27)),
    ("date before epoch", enc.OID_DATE, -1, "1969-12-31", -1, dt.date(1969, 12, 31)),
    ("time", enc.OID_TIME, -1, "13:45:01.000250", 49501000250, dt.time(13, 45, 1, 250)),
    ("bytea", enc.OID_BYTEA, -1, "\\x00ff10", "AP8Q", b"\x00\xff\x10"),
    ("jsonb", enc.OID_JSONB, -1, '{"a": [1, "é"]}', '{"a": [1, "é"]}', '{"a": [1, "é"]}'),
]


@pytest.mark.parametrize(
    ("case", "oid", "typmod", "text", "encoded", "decoded"), CASES, ids=[c[0] for c in CASES]
)
def test_round_trip(
    case: str, oid: int, typmod: int, text: str, encoded: Any, decoded: Any
) -> None:
    ctype = enc.column_type(oid, typmod, {})
    assert ctype is not None
    assert ctype.encode(text) == encoded
    schema = enc.field_schema("c", ctype, optional=True)
    value = dbz.decode_value(schema, encoded)
    assert value == decoded
    assert type(value) is type(decoded)


def test_decimal_schema_carries_scale_and_precision() -> None:
    ctype = enc.column_type(enc.OID_NUMERIC, NUMERIC_12_2, {})
    assert ctype is not None
    schema = enc.field_schema("total", ctype, False)
    assert schema == {
        "type": "bytes",
        "optional": False,
        "name": "org.apache.kafka.connect.data.Decimal",
        "version": 1,
        "parameters": {"scale": "2", "connect.decimal.precision": "12"},
        "field": "total",
    }


def test_null_decodes_to_none() -> None:
    assert dbz.decode_value(dbz.FIELD_DECIMAL_12_2, None) is None


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        (dbz.FIELD_DECIMAL_12_2, "not base64!"),
        ({"type": "int64", "field": "x"}, "12"),
        ({"type": "int64", "field": "x"}, True),
        ({"type": "boolean", "field": "x"}, "true"),
        ({"type": "string", "name": "io.debezium.time.ZonedTimestamp", "field": "x"}, "2026-01-01"),
        ({"type": "string", "name": "io.debezium.time.ZonedTimestamp", "field": "x"}, "yesterday"),
        ({"type": "int32", "name": "io.debezium.time.Date", "field": "x"}, "20000"),
        ({"type": "array", "field": "x"}, []),
    ],
)
def test_undecodable_values_are_poison(schema: dict[str, Any], value: Any) -> None:
    with pytest.raises(dbz.DecodeError):
        dbz.decode_value(schema, value)


@pytest.mark.parametrize("text", ["NaN", "Infinity", "1.005"])
def test_numeric_that_cannot_be_encoded_exactly_is_refused(text: str) -> None:
    with pytest.raises(dbz.DecodeError):
        dbz.encode_decimal_text(text, 2)


def test_type_without_a_debezium_converter_is_left_out() -> None:
    # circle: Types.OTHER in pgjdbc, no PostgresValueConverter case; include.unknown.datatypes
    # is false, so Debezium drops the column (TableSchemaBuilder.convertersForColumns).
    assert enc.column_type(718, -1, {}) is None
