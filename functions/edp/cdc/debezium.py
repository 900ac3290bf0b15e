"""Debezium's PostgreSQL change-event format: encoding (local reader) and decoding (cdc_flush).

Both directions follow Debezium's *default* settings, which the production Debezium Server
config (``gke/base/debezium/application.properties``) keeps:

- ``decimal.handling.mode=precise``: ``numeric(p, s)`` is Kafka Connect's ``Decimal`` logical
  type, i.e. the **base64 of the big-endian two's-complement unscaled integer**, with ``scale``
  in the field's schema parameters; ``numeric`` without a typmod is Debezium's
  ``VariableScaleDecimal`` struct ``{scale, value}``;
- ``time.precision.mode=adaptive``: ``timestamptz`` -> ``ZonedTimestamp`` (ISO-8601 string in
  UTC), ``timestamp`` -> ``MicroTimestamp`` (epoch microseconds; ``Timestamp`` millis when the
  column precision is <= 3), ``date`` -> ``Date`` (epoch days), ``time`` -> ``MicroTime``;
- ``uuid`` -> ``io.debezium.data.Uuid`` string, ``json``/``jsonb`` -> ``io.debezium.data.Json``
  string, ``bytea`` -> base64 bytes (``binary.handling.mode=bytes``).

The envelope is Debezium 3.0's: ``{"schema": ..., "payload": {before, after, source,
transaction, op, ts_ms, ts_us, ts_ns}}`` (JSON converter with ``schemas.enable=true``); the key
is the bare key JSON (``key.converter.schemas.enable=false``) and doubles as the Pub/Sub
ordering key.

Example:
    >>> encode_decimal_text("-12.34", 2)
    '+y4='
    >>> decode_value(FIELD_DECIMAL_12_2, "+y4=")
    Decimal('-12.34')
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from edp.errors import PermanentError

#: The Debezium release whose envelope the local reader reproduces (and GKE runs).
DEBEZIUM_VERSION = "3.0.7.Final"
CONNECTOR = "postgresql"
#: The Debezium settings these encoders implement (checked against the production config).
DECIMAL_HANDLING_MODE = "precise"
TIME_PRECISION_MODE = "adaptive"
BINARY_HANDLING_MODE = "bytes"

SNAPSHOT_ALLOWED = (
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"
)

_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1)
_US = dt.timedelta(microseconds=1)


class DecodeError(PermanentError):
    """A change message that cannot be decoded (poison: dead-letter it)."""


# --- PostgreSQL type OIDs ---------------------------------------------------------------------
OID_BOOL = 16
OID_BYTEA = 17
OID_INT8 = 20
OID_INT2 = 21
OID_INT4 = 23
OID_TEXT = 25
OID_OID = 26
OID_JSON = 114
OID_FLOAT4 = 700
OID_FLOAT8 = 701
OID_BPCHAR = 1042
OID_VARCHAR = 1043
OID_DATE = 1082
OID_TIME = 1083
OID_TIMESTAMP = 1114
OID_TIMESTAMPTZ = 1184
OID_NUMERIC = 1700
OID_UUID = 2950
OID_JSONB = 3802


@dataclass(frozen=True, slots=True)
class ColumnType:
    """How one PostgreSQL column is encoded: its Connect schema and a text -> JSON encoder."""

    schema: dict[str, Any]  # Connect field schema without "optional"/"field"
    encode: Callable[[str], Any]
    bigquery_type: str


def numeric_precision_scale(typmod: int) -> tuple[int, int] | None:
    """``numeric(p, s)`` typmod -> (p, s); None for an unconstrained numeric.

    Example:
        >>> numeric_precision_scale(((12 << 16) | 2) + 4)
        (12, 2)
    """
    if typmod < 4:
        return None
    value = typmod - 4
    return (value >> 16) & 0xFFFF, value & 0xFFFF


def _unscaled_bytes(unscaled: int) -> bytes:
    # Java's BigInteger.toByteArray(): minimal two's complement, big-endian.
    length = (unscaled if unscaled >= 0 else ~unscaled).bit_length() // 8 + 1
    return unscaled.to_bytes(length, "big", signed=True)


def encode_decimal_text(text: str, scale: int) -> str:
    """PostgreSQL numeric text -> base64 unscaled bytes at ``scale`` (Connect ``Decimal``).

    Raises:
        DecodeError: For NaN/Infinity or a value with more decimals than ``scale``.
    """
    try:
        value = Decimal(text)
        unscaled = value.scaleb(scale)
        if not unscaled.is_finite() or unscaled != unscaled.to_integral_value():
            raise DecodeError(f"numeric {text!r} does not fit scale {scale}")
    except InvalidOperation as exc:
        raise DecodeError(f"not a numeric: {text!r}") from exc
    return base64.b64encode(_unscaled_bytes(int(unscaled))).decode("ascii")


def _encode_scaled(text: str, scale: int) -> str:
    return encode_decimal_text(text, scale)


def _encode_variable_decimal(text: str) -> dict[str, Any]:
    value = Decimal(text)
    if not value.is_finite():
        raise DecodeError(f"numeric {text!r} cannot be encoded precisely")
    exponent = int(value.as_tuple().exponent)
    scale = max(0, -exponent)
    return {"scale": scale, "value": encode_decimal_text(text, scale)}


def encode_zoned_timestamp(text: str) -> str:
    """``timestamptz`` text (session TimeZone=UTC, DateStyle=ISO) -> Debezium ZonedTimestamp.

    Java's ``ISO_OFFSET_DATE_TIME`` prints the fraction with as few digits as needed.

    Example:
        >>> encode_zoned_timestamp("2026-11-26 23:36:10.120000+00")
        '2026-11-26T23:36:10.12Z'
    """
    value = dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    base = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        base += f".{value.microsecond:06d}".rstrip("0")
    return base + "Z"


def encode_micro_timestamp(text: str) -> int:
    """``timestamp`` text -> microseconds since the epoch (wall clock, no zone).

    Example:
        >>> encode_micro_timestamp("1970-01-01 00:00:01.000002")
        1000002
    """
    return (dt.datetime.fromisoformat(text) - _EPOCH) // _US


def encode_date(text: str) -> int:
    """``date`` text -> days since the epoch.

    Example:
        >>> encode_date("1969-12-31")
        -1
    """
    return (dt.date.fromisoformat(text) - _EPOCH_DAY).days


def encode_micro_time(text: str) -> int:
    t = dt.time.fromisoformat(text)
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


def _encode_bytea(text: str) -> str:
    if not text.startswith("\\x"):
        raise DecodeError("bytea must be in hex output format")
    return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")


def _bool(text: str) -> bool:
    # boolout writes "t"/"f"; be lenient with the long forms a ::text cast would give.
    if text in ("t", "true"):
        return True
    if text in ("f", "false"):
        return False
    raise DecodeError(f"not a boolean: {text!r}")


def column_type(type_oid: int, typmod: int) -> ColumnType:  # noqa: PLR0911, PLR0912
    """The Debezium encoding of a PostgreSQL column type.

    Raises:
        DecodeError: For a type the shop schema does not use and we do not encode.
    """
    if type_oid in (OID_INT2,):
        return ColumnType({"type": "int16"}, int, "INT64")
    if type_oid in (OID_INT4,):
        return ColumnType({"type": "int32"}, int, "INT64")
    if type_oid in (OID_INT8, OID_OID):
        return ColumnType({"type": "int64"}, int, "INT64")
    if type_oid == OID_BOOL:
        return ColumnType({"type": "boolean"}, _bool, "BOOL")
    if type_oid == OID_FLOAT4:
        return ColumnType({"type": "float"}, float, "FLOAT64")
    if type_oid == OID_FLOAT8:
        return ColumnType({"type": "double"}, float, "FLOAT64")
    if type_oid in (OID_TEXT, OID_VARCHAR, OID_BPCHAR):
        return ColumnType({"type": "string"}, str, "STRING")
    if type_oid == OID_UUID:
        return ColumnType(
            {"type": "string", "name": "io.debezium.data.Uuid", "version": 1}, str, "STRING"
        )
    if type_oid in (OID_JSON, OID_JSONB):
        return ColumnType(
            {"type": "string", "name": "io.debezium.data.Json", "version": 1}, str, "JSON"
        )
    if type_oid == OID_BYTEA:
        return ColumnType({"type": "bytes"}, _encode_bytea, "BYTES")
    if type_oid == OID_DATE:
        return ColumnType(
            {"type": "int32", "name": "io.debezium.time.Date", "version": 1}, encode_date, "DATE"
        )
    if type_oid == OID_TIME:
        return ColumnType(
            {"type": "int64", "name": "io.debezium.time.MicroTime", "version": 1},
            encode_micro_time,
            "TIME",
        )
    if type_oid == OID_TIMESTAMP:
        if 0 <= typmod <= 3:
            return ColumnType(
                {"type": "int64", "name": "io.debezium.time.Timestamp", "version": 1},
                lambda text: encode_micro_timestamp(text) // 1000,
                "DATETIME",
            )
        return ColumnType(
            {"type": "int64", "name": "io.debezium.time.MicroTimestamp", "version": 1},
            encode_micro_timestamp,
            "DATETIME",
        )
    if type_oid == OID_TIMESTAMPTZ:
        return ColumnType(
            {"type": "string", "name": "io.debezium.time.ZonedTimestamp", "version": 1},
            encode_zoned_timestamp,
            "TIMESTAMP",
        )
    if type_oid == OID_NUMERIC:
        ps = numeric_precision_scale(typmod)
        if ps is None:
            return ColumnType(
                {
                    "type": "struct",
                    "fields": [
                        {"type": "int32", "optional": False, "field": "scale"},
                        {"type": "bytes", "optional": False, "field": "value"},
                    ],
                    "name": "io.debezium.data.VariableScaleDecimal",
                    "version": 1,
                    "doc": "Variable scaled decimal",
                },
                _encode_variable_decimal,
                "BIGNUMERIC",
            )
        precision, scale = ps
        return ColumnType(
            {
                "type": "bytes",
                "name": "org.apache.kafka.connect.data.Decimal",
                "version": 1,
                "parameters": {"scale": str(scale), "connect.decimal.precision": str(precision)},
            },
            functools.partial(_encode_scaled, scale=scale),
            "NUMERIC",
        )
    raise DecodeError(f"PostgreSQL type oid {type_oid} is not supported by the CDC encoder")


def field_schema(name: str, ctype: ColumnType, optional: bool) -> dict[str, Any]:
    """A Connect field schema in Debezium's key order (type, optional, name, ..., field)."""
    out: dict[str, Any] = {"type": ctype.schema["type"]}
    if "fields" in ctype.schema:
        out["fields"] = ctype.schema["fields"]
    out["optional"] = optional
    for key in ("name", "version", "doc", "parameters"):
        if key in ctype.schema:
            out[key] = ctype.schema[key]
    out["field"] = name
    return out


SOURCE_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "fields": [
        {"type": "string", "optional": False, "field": "version"},
        {"type": "string", "optional": False, "field": "connector"},
        {"type": "string", "optional": False, "field": "name"},
        {"type": "int64", "optional": False, "field": "ts_ms"},
        {
            "type": "string",
            "optional": True,
            "name": "io.debezium.data.Enum",
            "version": 1,
            "parameters": {"allowed": SNAPSHOT_ALLOWED},
            "default": "false",
            "field": "snapshot",
        },
        {"type": "string", "optional": False, "field": "db"},
        {"type": "string", "optional": True, "field": "sequence"},
        {"type": "int64", "optional": True, "field": "ts_us"},
        {"type": "int64", "optional": True, "field": "ts_ns"},
        {"type": "string", "optional": False, "field": "schema"},
        {"type": "string", "optional": False, "field": "table"},
        {"type": "int64", "optional": True, "field": "txId"},
        {"type": "int64", "optional": True, "field": "lsn"},
        {"type": "int64", "optional": True, "field": "xmin"},
    ],
    "optional": False,
    "name": "io.debezium.connector.postgresql.Source",
    "version": 1,
    "field": "source",
}

TRANSACTION_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "fields": [
        {"type": "string", "optional": False, "field": "id"},
        {"type": "int64", "optional": False, "field": "total_order"},
        {"type": "int64", "optional": False, "field": "data_collection_order"},
    ],
    "optional": True,
    "name": "event.block",
    "version": 1,
    "field": "transaction",
}


def envelope_schema(topic: str, value_fields: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``schema`` half of a change event on ``topic`` (``<prefix>.<schema>.<table>``)."""
    value = {"type": "struct", "fields": value_fields, "optional": True, "name": f"{topic}.Value"}
    return {
        "type": "struct",
        "fields": [
            {**value, "field": "before"},
            {**value, "field": "after"},
            SOURCE_SCHEMA,
            TRANSACTION_SCHEMA,
            {"type": "string", "optional": False, "field": "op"},
            {"type": "int64", "optional": True, "field": "ts_ms"},
            {"type": "int64", "optional": True, "field": "ts_us"},
            {"type": "int64", "optional": True, "field": "ts_ns"},
        ],
        "optional": False,
        "name": f"{topic}.Envelope",
        "version": 2,
    }


# --- decoding (cdc_flush) ---------------------------------------------------------------------

Decoder = Callable[[Any], Any]


def _decode_decimal_bytes(value: str, scale: int) -> Decimal:
    raw = base64.b64decode(value, validate=True)
    return Decimal(int.from_bytes(raw, "big", signed=True)).scaleb(-scale)


def _decode_zoned(value: str) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise DecodeError(f"ZonedTimestamp without an offset: {value!r}")
    return parsed.astimezone(dt.UTC)


def _decoder_for(schema: Mapping[str, Any]) -> Decoder:  # noqa: PLR0911, PLR0912
    name = schema.get("name")
    kind = schema.get("type")
    if name == "org.apache.kafka.connect.data.Decimal":
        scale = int(schema.get("parameters", {}).get("scale", "0"))
        return lambda v: _decode_decimal_bytes(v, scale)
    if name == "io.debezium.data.VariableScaleDecimal":
        return lambda v: _decode_decimal_bytes(v["value"], int(v["scale"]))
    if name == "io.debezium.time.ZonedTimestamp":
        return _decode_zoned
    if name == "io.debezium.time.MicroTimestamp":
        return lambda v: _EPOCH + dt.timedelta(microseconds=_int(v))
    if name == "io.debezium.time.Timestamp":
        return lambda v: _EPOCH + dt.timedelta(milliseconds=_int(v))
    if name == "io.debezium.time.NanoTimestamp":
        return lambda v: _EPOCH + dt.timedelta(microseconds=_int(v) // 1000)
    if name == "io.debezium.time.Date":
        return lambda v: _EPOCH_DAY + dt.timedelta(days=_int(v))
    if name == "io.debezium.time.MicroTime":
        return lambda v: (dt.datetime.min + dt.timedelta(microseconds=_int(v))).time()
    if kind in ("int8", "int16", "int32", "int64"):
        return _int
    if kind in ("float", "double"):
        return float
    if kind == "boolean":
        return _boolean
    if kind == "bytes":
        return lambda v: base64.b64decode(v, validate=True)
    if kind == "string":
        return _string
    raise DecodeError(f"unsupported Connect schema {kind}/{name}")


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError(f"expected an integer, got {value!r}")
    return value


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise DecodeError(f"expected a boolean, got {value!r}")
    return value


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"expected a string, got {value!r}")
    return value


def decode_value(schema: Mapping[str, Any], value: Any) -> Any:
    """Decode one Debezium JSON value by its Connect field schema (None stays None).

    Raises:
        DecodeError: When the value does not match its schema.
    """
    if value is None:
        return None
    try:
        return _decoder_for(schema)(value)
    except DecodeError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError, ArithmeticError) as exc:
        raise DecodeError(
            f"cannot decode {value!r} as {schema.get('name') or schema.get('type')}: {exc}"
        ) from exc


class RowDecoder:
    """Decodes ``before``/``after`` structs of one value schema (built once per schema)."""

    def __init__(self, value_schema: Mapping[str, Any]) -> None:
        fields = value_schema.get("fields")
        if not isinstance(fields, list):
            raise DecodeError("value schema has no fields")
        self.decoders: dict[str, Decoder] = {}
        for field in fields:
            self.decoders[str(field["field"])] = _decoder_for(field)

    def decode(self, row: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in row.items():
            decoder = self.decoders.get(name)
            if decoder is None:
                raise DecodeError(f"column {name!r} is not in the message schema")
            try:
                out[name] = None if value is None else decoder(value)
            except DecodeError:
                raise
            except (ValueError, TypeError, KeyError, OverflowError, ArithmeticError) as exc:
                raise DecodeError(f"column {name!r}: cannot decode {value!r}: {exc}") from exc
        return out


#: A Decimal(12, 2) field schema, for examples and tests.
FIELD_DECIMAL_12_2: dict[str, Any] = {
    "type": "bytes",
    "optional": False,
    "name": "org.apache.kafka.connect.data.Decimal",
    "version": 1,
    "parameters": {"scale": "2", "connect.decimal.precision": "12"},
    "field": "total_amount",
}


def epoch_us(value: dt.datetime) -> int:
    """Microseconds since the epoch of an aware datetime."""
    return (value - _EPOCH_UTC) // _US
