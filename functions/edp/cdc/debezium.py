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
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from edp.errors import PermanentError

#: The Debezium release whose envelope the local reader reproduces (and GKE runs).
DEBEZIUM_VERSION = "3.0.7.Final"
CONNECTOR = "postgresql"
#: The Debezium settings these encoders implement (checked against the production config).
DECIMAL_HANDLING_MODE = "precise"
TIME_PRECISION_MODE = "adaptive"
BINARY_HANDLING_MODE = "bytes"
#: ``unavailable.value.placeholder`` (default; RelationalDatabaseConnectorConfig): what Debezium
#: sends for an unchanged TOASTed value it could not read (no old tuple: REPLICA IDENTITY DEFAULT).
UNAVAILABLE = "__debezium_unavailable_value"

SNAPSHOT_ALLOWED = (
    "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"
)

_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_UTC = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_EPOCH_DAY = dt.date(1970, 1, 1)
_US = dt.timedelta(microseconds=1)


class DecodeError(PermanentError):
    """A change message that cannot be decoded (poison: dead-letter it)."""


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

    Exact for any number of digits (no decimal context rounding).

    Raises:
        DecodeError: For NaN/Infinity or a value with more decimals than ``scale``.
    """
    match = _NUMERIC_TEXT.match(text.strip())
    if match is None:
        raise DecodeError(f"not a finite numeric: {text!r}")
    sign, whole, frac = match.group(1), match.group(2) or "0", match.group(3) or ""
    if len(frac.rstrip("0")) > scale:
        raise DecodeError(f"numeric {text!r} does not fit scale {scale}")
    unscaled = int(whole + frac[:scale].ljust(scale, "0"))
    if sign == "-":
        unscaled = -unscaled
    return base64.b64encode(_unscaled_bytes(unscaled)).decode("ascii")


_NUMERIC_TEXT = re.compile(r"^([+-]?)(\d*)(?:\.(\d*))?$")


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


#: What BigQuery can hold for PostgreSQL's infinities (its TIMESTAMP/DATE/DATETIME range ends).
_TS_MAX = dt.datetime.max.replace(tzinfo=dt.UTC)
_TS_MIN = dt.datetime.min.replace(tzinfo=dt.UTC)
#: io.debezium PostgreSQL infinity sentinels: timestamp micros and date epoch days.
_TS_POS_INFINITY_US = 9223372036825200000
_TS_NEG_INFINITY_US = -9223372036832400000
#: PostgresValueConverter.POSITIVE/NEGATIVE_INFINITY_LOCAL_DATE (-5877611-06-21/-22) as epoch days.
_DATE_POS_INFINITY = -2147472692
_DATE_NEG_INFINITY = -2147472691
_DAY_US = 86_400_000_000


def _decode_zoned(value: str) -> dt.datetime:
    if value == "infinity":
        return _TS_MAX
    if value == "-infinity":
        return _TS_MIN
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise DecodeError(f"ZonedTimestamp without an offset: {value!r}")
    return parsed.astimezone(dt.UTC)


def _decode_micro_timestamp(value: Any, unit_us: int) -> dt.datetime:
    raw = _int(value) * unit_us
    if raw == _TS_POS_INFINITY_US:
        return dt.datetime.max
    if raw == _TS_NEG_INFINITY_US:
        return dt.datetime.min
    return _EPOCH + dt.timedelta(microseconds=raw)


def _decode_date(value: Any) -> dt.date:
    days = _int(value)
    if days == _DATE_POS_INFINITY:
        return dt.date.max
    if days == _DATE_NEG_INFINITY:
        return dt.date.min
    return _EPOCH_DAY + dt.timedelta(days=days)


def _decode_time_of_day(micros: int) -> dt.time:
    # PostgreSQL allows 24:00:00; BigQuery TIME (and Python) end at 23:59:59.999999.
    micros = min(micros, _DAY_US - 1)
    return (dt.datetime.min + dt.timedelta(microseconds=micros)).time()


def _decode_point(value: Any) -> str:
    if not isinstance(value, dict):
        raise DecodeError(f"expected a Point struct, got {value!r}")
    return f"POINT({float(value['x'])!r} {float(value['y'])!r})"


def _decode_float(value: Any) -> float:
    # Jackson writes NaN and the infinities as strings.
    if value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DecodeError(f"expected a number, got {value!r}")
    return float(value)


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
        return lambda v: _decode_micro_timestamp(v, 1)
    if name == "io.debezium.time.Timestamp":
        return lambda v: _decode_micro_timestamp(v, 1000)
    if name == "io.debezium.time.NanoTimestamp":
        return lambda v: _EPOCH + dt.timedelta(microseconds=_int(v) // 1000)
    if name == "io.debezium.time.Date":
        return _decode_date
    if name == "io.debezium.time.MicroTime":
        return lambda v: _decode_time_of_day(_int(v))
    if name == "io.debezium.time.Time":
        return lambda v: _decode_time_of_day(_int(v) * 1000)
    if name == "io.debezium.time.MicroDuration":
        return lambda v: dt.timedelta(microseconds=_int(v))
    if name == "io.debezium.data.geometry.Point":
        return _decode_point
    if kind == "array":
        items = schema.get("items")
        if not isinstance(items, Mapping):
            raise DecodeError("array schema without items")
        item = _decoder_for(items)
        return lambda v: [None if x is None else item(x) for x in _list(v)]
    if kind in ("int8", "int16", "int32", "int64"):
        return _int
    if kind in ("float", "double"):
        return _decode_float
    if kind == "boolean":
        return _boolean
    if kind == "bytes":
        return lambda v: base64.b64decode(v, validate=True)
    if name == "io.debezium.data.Json":
        return _json_text
    if kind == "string":
        # Uuid, Xml, Enum, ZonedTime and plain strings all stay text.
        return _string
    raise DecodeError(f"unsupported Connect schema {kind}/{name}")


def _json_text(value: Any) -> str:
    # JSON text for a JSON column; the placeholder is not JSON, so it travels as a JSON string.
    text = _string(value)
    return '"' + UNAVAILABLE + '"' if text == UNAVAILABLE else text


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise DecodeError(f"expected an array, got {value!r}")
    return value


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
