"""PostgreSQL column -> Debezium 3.0.7 field: the Connect schema and the text -> JSON encoder.

What Debezium Server emits under the production settings (``gke/base/debezium/
application.properties``; anything not set there is Debezium's default):

=====================  ============================================================================
decimal.handling.mode  ``precise``: ``numeric(p,s)`` and ``money`` are Connect ``Decimal`` (base64
                       of the big-endian unscaled integer); unconstrained ``numeric`` is
                       ``VariableScaleDecimal`` with trailing zeros stripped; NaN/Infinity cannot
                       be expressed, so the value is null (``event.converting.failure.handling.
                       mode=warn``: logged, the event still goes out).
time.precision.mode    ``adaptive``: ``time(p<=3)`` -> ``Time`` (int32 millis), ``time`` ->
                       ``MicroTime``; ``timestamp(p<=3)`` -> ``Timestamp``, ``timestamp`` ->
                       ``MicroTimestamp``; ``date`` -> ``Date``; ``timestamptz`` ->
                       ``ZonedTimestamp`` (fraction padded to the column's precision, 6 by default;
                       ``infinity``/``-infinity`` kept as those strings); ``timetz`` ->
                       ``ZonedTime`` in UTC.
interval.handling.mode ``numeric`` (default): ``MicroDuration`` (a month is 365.25/12 days).
hstore.handling.mode   ``json`` (default): a JSON object string, keys in Java HashMap order.
binary.handling.mode   ``bytes``: base64 in JSON.
include.unknown.       ``false`` (default): a column of a type Debezium has no converter for
datatypes              (box, circle, line, lseg, path, polygon, tsvector, tsquery, pg_lsn,
                       composite types, arrays of money/interval/name/varbit/xml/point) is left
                       out of the schema and the payload, with a warning.
=====================  ============================================================================

A value Debezium cannot convert becomes null with a warning; the reader never stops on a value.
Sources are cited per type in ``tests/cdc/test_type_fidelity.py``.

Example:
    >>> ctype = column_type(OID_FLOAT8, -1, {})
    >>> ctype.encode("NaN"), ctype.encode("-Infinity")
    ('NaN', '-Infinity')
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import struct
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from edp.cdc.debezium import (
    UNAVAILABLE,
    DecodeError,
    encode_decimal_text,
    numeric_precision_scale,
)
from edp_tools.cdc import pgtext

# --- PostgreSQL built-in type OIDs (src/include/catalog/pg_type.dat) ----------------------------
OID_BOOL, OID_BYTEA, OID_CHAR, OID_NAME, OID_INT8, OID_INT2, OID_INT4 = 16, 17, 18, 19, 20, 21, 23
OID_TEXT, OID_OID, OID_JSON, OID_XML = 25, 26, 114, 142
OID_POINT, OID_CIDR, OID_FLOAT4, OID_FLOAT8, OID_MACADDR8, OID_MONEY = 600, 650, 700, 701, 774, 790
OID_MACADDR, OID_INET, OID_BPCHAR, OID_VARCHAR = 829, 869, 1042, 1043
OID_DATE, OID_TIME, OID_TIMESTAMP, OID_TIMESTAMPTZ, OID_INTERVAL = 1082, 1083, 1114, 1184, 1186
OID_TIMETZ, OID_BIT, OID_VARBIT, OID_NUMERIC, OID_UUID, OID_JSONB = (
    1266,
    1560,
    1562,
    1700,
    2950,
    3802,
)
OID_INT4RANGE, OID_NUMRANGE, OID_TSRANGE, OID_TSTZRANGE = 3904, 3906, 3908, 3910
OID_DATERANGE, OID_INT8RANGE = 3912, 3926

_UNAVAILABLE_BYTES = UNAVAILABLE.encode("ascii")
_UNAVAILABLE_B64 = base64.b64encode(_UNAVAILABLE_BYTES).decode("ascii")

#: PostgresType.POSITIVE_INFINITY / NEGATIVE_INFINITY of a timestamp, in microseconds
#: (PGStatement.DATE_POSITIVE_INFINITY / DATE_NEGATIVE_INFINITY).
TS_POS_INFINITY_US = 9223372036825200000
TS_NEG_INFINITY_US = -9223372036832400000
#: PostgresValueConverter.POSITIVE/NEGATIVE_INFINITY_LOCAL_DATE as epoch days.
DATE_POS_INFINITY = pgtext.epoch_day(-5877611, 6, 21)
DATE_NEG_INFINITY = pgtext.epoch_day(-5877611, 6, 22)
MONEY_FRACTION_DIGITS = 2

Encoder = Callable[[str], Any]


@dataclass(frozen=True, slots=True)
class PgType:
    """What pg_type says about a type the reader may meet (enums, domains, arrays, extensions)."""

    oid: int
    name: str
    kind: str  # typtype: b base, e enum, d domain, r range, c composite, p pseudo, m multirange
    element: int = 0  # typelem of an array type
    base: int = 0  # typbasetype of a domain
    labels: tuple[str, ...] = ()  # enum labels in sort order


@dataclass(frozen=True, slots=True)
class ColumnType:
    """How one column is encoded: Connect schema (without optional/field), encoder, TOAST value."""

    schema: dict[str, Any]
    encode: Encoder
    #: What Debezium sends for an unchanged TOASTed value it could not read (None: a null).
    unavailable: Any = None


def _name(name: str, kind: str = "string", **extra: Any) -> dict[str, Any]:
    return {"type": kind, "name": name, "version": 1, **extra}


_STRING: dict[str, Any] = {"type": "string"}


def _string(text: str) -> str:
    return text


def _bool(text: str) -> bool:
    if text in ("t", "true"):
        return True
    if text in ("f", "false"):
        return False
    raise DecodeError(f"not a boolean: {text!r}")


def _float(text: str) -> float | str:
    # Jackson writes NaN and the infinities as the strings "NaN", "Infinity", "-Infinity".
    if text in ("NaN", "Infinity", "-Infinity"):
        return text
    return float(text)


def _bytea(text: str) -> str:
    if not text.startswith("\\x"):
        raise DecodeError("bytea must be in hex output format")
    return base64.b64encode(bytes.fromhex(text[2:])).decode("ascii")


def _special(text: str) -> None:
    raise DecodeError(f"numeric {text!r} has no precise encoding (decimal.handling.mode=precise)")


def _fixed_decimal(text: str, scale: int) -> str:
    if text in ("NaN", "Infinity", "-Infinity"):
        _special(text)
    return encode_decimal_text(text, scale)


def _variable_decimal(text: str) -> dict[str, Any]:
    if text in ("NaN", "Infinity", "-Infinity"):
        _special(text)
    # PostgresValueConverter.convertDecimal: stripTrailingZeros, and no negative scale (exact
    # string arithmetic: a Decimal context would round past 28 digits).
    fraction = text.partition(".")[2].rstrip("0")
    return {"scale": len(fraction), "value": encode_decimal_text(text, len(fraction))}


def _money(text: str) -> str:
    # AbstractColumnValue.asMoney: drop the currency symbol and group separators.
    negative = text.startswith("-") or text.startswith("(")
    digits = "".join(ch for ch in text if ch.isdigit() or ch == ".")
    value = Decimal(digits).quantize(Decimal(1).scaleb(-MONEY_FRACTION_DIGITS))
    return encode_decimal_text(str(-value if negative else value), MONEY_FRACTION_DIGITS)


def _date(text: str) -> int:
    if text == "infinity":
        return DATE_POS_INFINITY
    if text == "-infinity":
        return DATE_NEG_INFINITY
    return pgtext.parse_date(text)


def _micro_time(text: str) -> int:
    return pgtext.parse_time(text)[0]


def _milli_time(text: str) -> int:
    return pgtext.parse_time(text)[0] // 1000


def _timestamp_micros(text: str) -> int:
    if text == "infinity":
        return TS_POS_INFINITY_US
    if text == "-infinity":
        return TS_NEG_INFINITY_US
    seconds, micros = pgtext.parse_timestamp(text)
    return seconds * 1_000_000 + micros


def _timestamp_millis(text: str) -> int:
    return _timestamp_micros(text) // 1000


def zoned_timestamp(text: str, fraction: int) -> str:
    """``timestamptz`` text -> ``ZonedTimestamp`` with ``fraction`` digits (0: as few as needed).

    Example:
        >>> zoned_timestamp("2026-11-26 23:36:10.12+00", 6)
        '2026-11-26T23:36:10.120000Z'
    """
    if text in ("infinity", "-infinity"):
        return text
    seconds, micros = pgtext.parse_timestamp(text)
    days, second_of_day = divmod(seconds, 86400)
    year, month, day = pgtext.civil_from_days(days)
    hh, rem = divmod(second_of_day, 3600)
    mm, ss = divmod(rem, 60)
    out = f"{pgtext.iso_year(year)}-{month:02d}-{day:02d}T{hh:02d}:{mm:02d}:{ss:02d}"
    if fraction > 0:
        out += "." + f"{micros:06d}".ljust(fraction, "0")[:fraction]
    elif micros:
        out += "." + f"{micros:06d}".rstrip("0")
    return out + "Z"


def zoned_time(text: str) -> str:
    """``timetz`` text -> ``ZonedTime`` (shifted to UTC, ISO_OFFSET_TIME: minimal fraction).

    Example:
        >>> zoned_time("13:51:30.123+02")
        '11:51:30.123Z'
    """
    micros, offset = pgtext.parse_time(text)
    micros = (micros - offset * 1_000_000) % 86_400_000_000
    seconds, frac = divmod(micros, 1_000_000)
    hh, rem = divmod(seconds, 3600)
    mm, ss = divmod(rem, 60)
    out = f"{hh:02d}:{mm:02d}:{ss:02d}"
    if frac:
        out += "." + f"{frac:06d}".rstrip("0")
    return out + "Z"


def _bits(text: str) -> str:
    # PostgresValueConverter.convertBits: little-endian bytes of the bit string, minimal length.
    value = int(text, 2) if text else 0
    return base64.b64encode(value.to_bytes((value.bit_length() + 7) // 8, "little")).decode()


def _point(text: str) -> dict[str, Any]:
    x_text, y_text = text.strip("()").split(",")
    x, y = float(x_text), float(y_text)
    wkb = b"\x01" + struct.pack("<Idd", 1, x, y)
    return {"x": x, "y": y, "wkb": base64.b64encode(wkb).decode(), "srid": None}


def _hstore_json(text: str) -> str:
    pairs = pgtext.parse_hstore(text)
    order = pgtext.java_hashmap_order([k for k, _ in pairs])
    ordered = {pairs[i][0]: pairs[i][1] for i in order}
    return json.dumps(ordered, ensure_ascii=False, separators=(",", ":"))


def _timestamp_schema(typmod: int) -> tuple[dict[str, Any], Encoder]:
    # Column scale = typmod for timestamp(p); pgjdbc reports 6 when there is none.
    if 0 <= typmod <= 3:
        return _name("io.debezium.time.Timestamp", "int64"), _timestamp_millis
    return _name("io.debezium.time.MicroTimestamp", "int64"), _timestamp_micros


def _time_schema(typmod: int) -> tuple[dict[str, Any], Encoder]:
    if 0 <= typmod <= 3:
        return _name("io.debezium.time.Time", "int32"), _milli_time
    return _name("io.debezium.time.MicroTime", "int64"), _micro_time


def _numeric_schema(typmod: int) -> tuple[dict[str, Any], Encoder]:
    ps = numeric_precision_scale(typmod)
    if ps is None or ps == (0, 0):
        schema = {
            "type": "struct",
            "fields": [
                {"type": "int32", "optional": False, "field": "scale"},
                {"type": "bytes", "optional": False, "field": "value"},
            ],
            "name": "io.debezium.data.VariableScaleDecimal",
            "version": 1,
            "doc": "Variable scaled decimal",
        }
        return schema, _variable_decimal
    precision, scale = ps
    schema = _name(
        "org.apache.kafka.connect.data.Decimal",
        "bytes",
        parameters={"scale": str(scale), "connect.decimal.precision": str(precision)},
    )
    return schema, functools.partial(_fixed_decimal, scale=scale)


def _scalar(oid: int, typmod: int) -> tuple[dict[str, Any], Encoder, Any] | None:  # noqa: PLR0911, PLR0912
    """Schema, encoder and TOAST placeholder of a built-in scalar type; None: no converter."""
    if oid == OID_INT2:
        return {"type": "int16"}, int, None
    if oid == OID_INT4:
        return {"type": "int32"}, int, None
    if oid in (OID_INT8, OID_OID):
        return {"type": "int64"}, int, None
    if oid == OID_BOOL:
        return {"type": "boolean"}, _bool, None
    if oid == OID_FLOAT4:
        return {"type": "float"}, _float, None
    if oid == OID_FLOAT8:
        return {"type": "double"}, _float, None
    if oid in (
        OID_TEXT, OID_VARCHAR, OID_BPCHAR, OID_CHAR, OID_NAME, OID_INET, OID_CIDR, OID_MACADDR,
        OID_MACADDR8, OID_INT4RANGE, OID_INT8RANGE, OID_NUMRANGE, OID_TSRANGE, OID_TSTZRANGE,
        OID_DATERANGE,
    ):  # fmt: skip
        return dict(_STRING), _string, UNAVAILABLE
    if oid == OID_UUID:
        return _name("io.debezium.data.Uuid"), _string, UNAVAILABLE
    if oid in (OID_JSON, OID_JSONB):
        return _name("io.debezium.data.Json"), _string, UNAVAILABLE
    if oid == OID_XML:
        return _name("io.debezium.data.Xml"), _string, UNAVAILABLE
    if oid == OID_BYTEA:
        return {"type": "bytes"}, _bytea, _UNAVAILABLE_B64
    if oid == OID_NUMERIC:
        schema, enc = _numeric_schema(typmod)
        return schema, enc, None
    if oid == OID_MONEY:
        return (
            _name("org.apache.kafka.connect.data.Decimal", "bytes", parameters={"scale": "2"}),
            _money,
            None,
        )
    if oid == OID_DATE:
        return _name("io.debezium.time.Date", "int32"), _date, None
    if oid == OID_TIME:
        schema, enc = _time_schema(typmod)
        return schema, enc, None
    if oid == OID_TIMESTAMP:
        schema, enc = _timestamp_schema(typmod)
        return schema, enc, None
    if oid == OID_TIMESTAMPTZ:
        fraction = typmod if typmod >= 0 else 6
        return (
            _name("io.debezium.time.ZonedTimestamp"),
            functools.partial(zoned_timestamp, fraction=fraction),
            None,
        )
    if oid == OID_TIMETZ:
        return _name("io.debezium.time.ZonedTime"), zoned_time, None
    if oid == OID_INTERVAL:
        return _name("io.debezium.time.MicroDuration", "int64"), pgtext.interval_micros, None
    if oid in (OID_BIT, OID_VARBIT):
        length = typmod if typmod > 0 else (2147483647 if oid == OID_VARBIT else 1)
        if length == 1:
            return {"type": "boolean"}, lambda t: t == "1", None
        return (
            _name("io.debezium.data.Bits", "bytes", parameters={"length": str(length)}),
            _bits,
            None,
        )
    if oid == OID_POINT:
        schema = {
            "type": "struct",
            "fields": [
                {"type": "double", "optional": False, "field": "x"},
                {"type": "double", "optional": False, "field": "y"},
                {"type": "bytes", "optional": True, "field": "wkb"},
                {"type": "int32", "optional": True, "field": "srid"},
            ],
            "name": "io.debezium.data.geometry.Point",
            "version": 1,
            "doc": "Geometry (POINT)",
        }
        return schema, _point, None
    return None


#: Array element types Debezium's PostgresValueConverter has array converters for.
_ARRAY_ELEMENTS = {
    OID_INT2, OID_INT4, OID_INT8, OID_OID, OID_CHAR, OID_VARCHAR, OID_TEXT, OID_BPCHAR,
    OID_NUMERIC, OID_FLOAT4, OID_FLOAT8, OID_BOOL, OID_DATE, OID_INET, OID_CIDR, OID_MACADDR,
    OID_MACADDR8, OID_TSRANGE, OID_TSTZRANGE, OID_DATERANGE, OID_INT4RANGE, OID_NUMRANGE,
    OID_INT8RANGE, OID_UUID, OID_JSONB, OID_JSON, OID_TIME, OID_TIMETZ, OID_TIMESTAMP,
    OID_TIMESTAMPTZ, OID_BYTEA,
}  # fmt: skip
#: UnchangedToastedPlaceholder: the value per array type of an unchanged TOASTed array.
_TOAST_TEXT_ARRAYS = {OID_TEXT, OID_VARCHAR, OID_BPCHAR, OID_JSON, OID_JSONB}
_TOAST_INT_ARRAYS = {OID_INT4, OID_DATE, OID_INT8}


def _array(element: Encoder, text: str) -> list[Any]:
    return [None if item is None else element(item) for item in pgtext.parse_array(text)]


def _array_toast(element_oid: int) -> Any:
    if element_oid in _TOAST_TEXT_ARRAYS:
        return [UNAVAILABLE]
    if element_oid == OID_BYTEA:
        return [_UNAVAILABLE_B64]
    if element_oid in _TOAST_INT_ARRAYS:
        return list(_UNAVAILABLE_BYTES)
    if element_oid == OID_UUID:
        return [str(uuid.UUID(bytes=_name_uuid(_UNAVAILABLE_BYTES)))]
    return None


def _name_uuid(data: bytes) -> bytes:
    # java.util.UUID.nameUUIDFromBytes: MD5, version 3, IETF variant.
    digest = bytearray(hashlib.md5(data).digest())  # noqa: S324 - Java's definition, not security
    digest[6] = (digest[6] & 0x0F) | 0x30
    digest[8] = (digest[8] & 0x3F) | 0x80
    return bytes(digest)


def _resolve(oid: int, types: Mapping[int, PgType]) -> tuple[int, PgType | None]:
    """Follow domains to their base type (Debezium uses the root type)."""
    info = types.get(oid)
    seen = 0
    while info is not None and info.kind == "d" and info.base and seen < 10:
        oid, info, seen = info.base, types.get(info.base), seen + 1
    return oid, info


def column_type(  # noqa: PLR0911
    oid: int, typmod: int, types: Mapping[int, PgType]
) -> ColumnType | None:
    """The Debezium encoding of a column, or None when Debezium leaves the column out.

    ``types`` holds pg_type rows for the non-built-in types (enums, domains, arrays, hstore).
    """
    oid, info = _resolve(oid, types)
    scalar = _scalar(oid, typmod)
    if scalar is not None:
        return ColumnType(scalar[0], scalar[1], scalar[2])
    if info is None:
        return None
    if info.kind == "e":
        schema = _name("io.debezium.data.Enum", parameters={"allowed": ",".join(info.labels)})
        return ColumnType(schema, _string, UNAVAILABLE)
    if info.name == "hstore":
        toast = _hstore_json(f'"{UNAVAILABLE}"=>"{UNAVAILABLE}"')
        return ColumnType(_name("io.debezium.data.Json"), _hstore_json, toast)
    if info.name in ("citext", "ltree", "isbn"):
        return ColumnType(dict(_STRING), _string, UNAVAILABLE)
    if info.element:
        element_oid, element_info = _resolve(info.element, types)
        element: ColumnType | None
        if element_oid in _ARRAY_ELEMENTS or (
            element_info is not None
            and (element_info.kind == "e" or element_info.name in ("hstore", "citext"))
        ):
            element = column_type(element_oid, typmod, types)
        else:
            element = None
        if element is None:
            return None
        items = {**element.schema, "optional": True}
        return ColumnType(
            {"type": "array", "items": _ordered(items)},
            functools.partial(_array, element.encode),
            _array_toast(element_oid),
        )
    return None


_KEY_ORDER = ("type", "items", "fields", "optional", "name", "version", "doc", "parameters")


def _ordered(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A Connect schema in JsonConverter's key order."""
    out = {k: schema[k] for k in _KEY_ORDER if k in schema}
    out.update({k: v for k, v in schema.items() if k not in out})
    return out


def field_schema(name: str, ctype: ColumnType, optional: bool) -> dict[str, Any]:
    """A Connect field schema in Debezium's key order (type, optional, name, ..., field).

    Example:
        >>> field_schema("id", column_type(OID_INT8, -1, {}), False)
        {'type': 'int64', 'optional': False, 'field': 'id'}
    """
    return {**_ordered({**ctype.schema, "optional": optional}), "field": name}
