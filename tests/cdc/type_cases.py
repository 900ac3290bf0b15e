"""Every PostgreSQL type Debezium's PostgreSQL connector documents, with its 3.0.7 wire value.

Each case: (column, DDL type, SQL literal, expected JSON value, expected Connect schema keys,
source). Expected values are Debezium 3.0.7.Final's (github.com/debezium/debezium, tag
v3.0.7.Final), under the production settings in gke/base/debezium/application.properties:
decimal.handling.mode=precise, time.precision.mode=adaptive, binary.handling.mode=bytes, and
the defaults interval.handling.mode=numeric, hstore.handling.mode=json,
include.unknown.datatypes=false, event.converting.failure.handling.mode=warn,
money.fraction.digits=2. Abbreviations of the cited files (all under
debezium-connector-postgres/src/):

- ARPT: test/java/io/debezium/connector/postgresql/AbstractRecordsProducerTest.java
- PVC:  main/java/io/debezium/connector/postgresql/PostgresValueConverter.java
- TSB:  debezium-core/src/main/java/io/debezium/relational/TableSchemaBuilder.java
- Base64 of Connect bytes: the JSON converter writes byte arrays as base64; a Decimal's bytes are
  Java ``BigInteger.toByteArray()`` of the unscaled value (minimal big-endian two's complement),
  computed here by :func:`unscaled` from the integer written next to it.
"""

from __future__ import annotations

import base64
from typing import Any

DECIMAL = "org.apache.kafka.connect.data.Decimal"
VSD = "io.debezium.data.VariableScaleDecimal"


def unscaled(n: int) -> str:
    """base64 of Java ``BigInteger.valueOf(n).toByteArray()``."""
    length = (n if n >= 0 else ~n).bit_length() // 8 + 1
    return base64.b64encode(n.to_bytes(length, "big", signed=True)).decode()


def vsd(scale: int, n: int) -> dict[str, Any]:
    return {"scale": scale, "value": unscaled(n)}


# 2016-11-04 is epoch day 17109 (ARPT:641 expectedDate); 13:51:30 is 49,890 s of the day.
DAY_2016_11_04 = 17109
SECONDS_2016_11_04_135130 = DAY_2016_11_04 * 86400 + 49890
# MicroDuration.durationMicros(1, 2, 3, 4, 5, 6, 780000, DAYS_PER_MONTH_AVG) (ARPT:647), in the
# same double arithmetic: months x 365.25/12 days, truncated to a long.
INTERVAL_1Y2M3D4H5M6_78S = int(
    (((((1 * 12 + 2) * (365.25 / 12.0) + 3) * 24 + 4) * 60 + 5) * 60 + 6) * 1e6 + 780000
)
# PGStatement.DATE_POSITIVE_INFINITY / DATE_NEGATIVE_INFINITY (ARPT:704-705 ts_pinf/ts_ninf).
TS_PINF = 9223372036825200000
TS_NINF = -9223372036832400000
# PVC:101-108: infinity dates are LocalDate -5877611-06-21 / -22; as epoch days (Java
# LocalDate.toEpochDay, computed by hand from the proleptic Gregorian calendar).
DATE_PINF = -2147472692
DATE_NINF = -2147472691
# Point.buildWKBPoint(1, 1): byte order 1 (little endian), type 1, x, y as doubles.
WKB_POINT_1_1 = base64.b64encode(
    bytes.fromhex("01" + "01000000" + "000000000000f03f" + "000000000000f03f")
).decode()

Case = tuple[str, str, str, Any, dict[str, Any], str]

CASES: list[Case] = [
    # --- integers, oid, bool ----------------------------------------------------------------
    ("si", "smallint", "1", 1, {"type": "int16"}, "ARPT:250 si"),
    ("i", "integer", "123456", 123456, {"type": "int32"}, "ARPT:251 i"),
    ("bi", "bigint", "1234567890123", 1234567890123, {"type": "int64"}, "ARPT:252 bi"),
    ("o", "oid", "4000000000", 4000000000, {"type": "int64"}, "ARPT:265 o; PVC:143 OID"),
    ("b", "boolean", "true", True, {"type": "boolean"}, "ARPT:264 b"),
    # --- floats: NaN and the infinities are strings in Jackson's JSON (WRITE_NAN_AS_STRINGS) -----
    ("r", "real", "3.3", 3.3, {"type": "float"}, "ARPT:253 r"),
    ("db", "double precision", "4.44", 4.44, {"type": "double"}, "ARPT:254 db"),
    ("r_nan", "real", "'NaN'", "NaN", {"type": "float"}, "ARPT:256 r_nan Float.NaN"),
    ("db_pinf", "double precision", "'Infinity'", "Infinity", {"type": "double"}, "ARPT:259"),
    ("db_ninf", "double precision", "'-Infinity'", "-Infinity", {"type": "double"}, "ARPT:261"),
    # --- numeric (precise) and money ---------------------------------------------------------
    (
        "d",
        "numeric(3,2)",
        "1.1",
        unscaled(110),
        {"name": DECIMAL, "parameters": {"scale": "2", "connect.decimal.precision": "3"}},
        "ARPT:275 d = 1.10 (scale from the column)",
    ),
    ("dvs", "numeric", "10.1111", vsd(4, 101111), {"name": VSD}, "ARPT:277 dvs"),
    ("nvs_int", "numeric", "22", vsd(0, 22), {"name": VSD}, "ARPT:285 nvs_int"),
    (
        "nvs_zeros",
        "numeric",
        "22.2200",
        vsd(2, 2222),
        {"name": VSD},
        "PVC:640 convertDecimal: variable scale -> stripTrailingZeros()",
    ),
    (
        "nvs_big",
        "numeric",
        "12345678901234567890123456789012345678.5",
        vsd(1, 123456789012345678901234567890123456785),
        {"name": VSD},
        "PVC:640 (BigDecimal is exact at any length)",
    ),
    (
        "d_nan",
        "numeric(10,2)",
        "'NaN'",
        None,
        {"name": DECIMAL},
        "SpecialValueDecimal.fromLogical throws in PRECISE mode; TSB:330-350 warn -> null",
    ),
    ("nvs_nan", "numeric", "'NaN'", None, {"name": VSD}, "as d_nan (VariableScaleDecimal)"),
    (
        "csh",
        "money",
        "'$1234.11'",
        unscaled(123411),
        {"name": DECIMAL, "parameters": {"scale": "2"}},
        "ARPT:771 csh = 1234.11; PVC moneySchema Decimal.builder(moneyFractionDigits)",
    ),
    (
        "csh_neg",
        "money",
        "'-$1,234.11'",
        unscaled(-123411),
        {"name": DECIMAL},
        "ARPT:776 negative money",
    ),
    # --- text kinds, uuid, json, xml, bytea ------------------------------------------------------
    ("vcv", "varchar(2)", "'bb'", "bb", {"type": "string"}, "ARPT:431 vcv"),
    ("ch", "char(4)", "'cdef'", "cdef", {"type": "string"}, "ARPT:432 ch"),
    ("ch_pad", "char(5)", "'ab'", "ab   ", {"type": "string"}, "BPCHAR -> convertString"),
    ("t", "text", "'some text'", "some text", {"type": "string"}, "ARPT:434 t"),
    ("nm", "name", "'abc'", "abc", {"type": "string"}, "JDBC VARCHAR -> string"),
    (
        "u",
        "uuid",
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        {"name": "io.debezium.data.Uuid"},
        "ARPT INSERT_TEXT_TYPES_STMT u; PVC:163 Uuid",
    ),
    (
        "j",
        "json",
        """'{"bar": "baz"}'""",
        '{"bar": "baz"}',
        {"name": "io.debezium.data.Json"},
        "PVC:146",
    ),
    (
        "jb",
        "jsonb",
        """'{"bar": "baz"}'""",
        '{"bar": "baz"}',
        {"name": "io.debezium.data.Json"},
        "PVC:145",
    ),
    (
        "x",
        "xml",
        "'<foo>bar</foo>'",
        "<foo>bar</foo>",
        {"name": "io.debezium.data.Xml"},
        "JDBC SQLXML",
    ),
    ("ba", "bytea", r"E'\\001\\002\\003'", "AQID", {"type": "bytes"}, "ARPT:453 ba {1,2,3}"),
    # --- date/time (adaptive) -----------------------------------------------------------------
    ("dt", "date", "'2016-11-04'", DAY_2016_11_04, {"name": "io.debezium.time.Date"}, "ARPT:641"),
    ("dt_pinf", "date", "'infinity'", DATE_PINF, {"name": "io.debezium.time.Date"}, "PVC:101"),
    ("dt_ninf", "date", "'-infinity'", DATE_NINF, {"name": "io.debezium.time.Date"}, "PVC:108"),
    ("ti", "time", "'13:51:30'", 49890 * 10**6, {"name": "io.debezium.time.MicroTime"}, "ARPT:642"),
    (
        "tip",
        "time(3)",
        "'13:51:30.123'",
        49890123,
        {"type": "int32", "name": "io.debezium.time.Time"},
        "ARPT:643 tip: precision <= 3 -> Time millis",
    ),
    (
        "ttf",
        "time",
        "'24:00:00'",
        86_400 * 10**6,
        {"name": "io.debezium.time.MicroTime"},
        "ARPT:644",
    ),
    (
        "ttz",
        "timetz",
        "'13:51:30.123789+02:00'",
        "11:51:30.123789Z",
        {"name": "io.debezium.time.ZonedTime"},
        "ARPT:645 ttz",
    ),
    ("tptz", "timetz(3)", "'13:51:30.123+02:00'", "11:51:30.123Z", {}, "ARPT:646 tptz"),
    (
        "ts",
        "timestamp",
        "'2016-11-04T13:51:30.123456'",
        SECONDS_2016_11_04_135130 * 10**6 + 123456,
        {"name": "io.debezium.time.MicroTimestamp"},
        "ARPT:637 ts",
    ),
    (
        "ts_ms",
        "timestamp(3)",
        "'2016-11-04T13:51:30.123456'",
        SECONDS_2016_11_04_135130 * 1000 + 123,
        {"name": "io.debezium.time.Timestamp"},
        "ARPT:638 ts_ms",
    ),
    ("ts_pinf", "timestamp", "'infinity'", TS_PINF, {}, "ARPT:704 ts_pinf"),
    ("ts_ninf", "timestamp", "'-infinity'", TS_NINF, {}, "ARPT:705 ts_ninf"),
    (
        "tz",
        "timestamptz",
        "'2016-11-04T13:51:30.123456+02:00'",
        "2016-11-04T11:51:30.123456Z",
        {"name": "io.debezium.time.ZonedTimestamp"},
        "ARPT:640 tz",
    ),
    (
        "tz_zero",
        "timestamptz",
        "'21016-11-04T13:51:30.000000+07:00'",
        "+21016-11-04T06:51:30.000000Z",
        {},
        "ARPT:654 tz_zero: fraction padded to the column scale (6)",
    ),
    (
        "tz_pad",
        "timestamptz",
        "'2016-11-04 13:51:30.1+00'",
        "2016-11-04T13:51:30.100000Z",
        {},
        "PVC:972 fraction = column scale; ZonedTimestamp.getDateTimeFormatter(6)",
    ),
    (
        "tz_p3",
        "timestamptz(3)",
        "'2016-11-04 13:51:30.1+00'",
        "2016-11-04T13:51:30.100Z",
        {},
        "PVC:972 fraction = column scale 3",
    ),
    ("tz_pinf", "timestamptz", "'infinity'", "infinity", {}, "ARPT:706 tz_pinf"),
    ("tz_ninf", "timestamptz", "'-infinity'", "-infinity", {}, "ARPT:707 tz_ninf"),
    (
        "it",
        "interval",
        "'P1Y2M3DT4H5M6.78S'",
        INTERVAL_1Y2M3D4H5M6_78S,
        {"type": "int64", "name": "io.debezium.time.MicroDuration"},
        "ARPT:647 it",
    ),
    (
        "it_neg",
        "interval",
        "'-1 days +02:00:00'",
        (-24 + 2) * 3600 * 10**6,
        {},
        "PVC convertInterval: durationMicros(0, 0, -1, 2, 0, 0.0)",
    ),
    # --- arrays ---------------------------------------------------------------------------------
    ("int_array", "int[]", "'{1,2,3}'", [1, 2, 3], {"type": "array"}, "ARPT:808"),
    ("int_array_null", "int[]", "'{1,NULL,3}'", [1, None, 3], {"type": "array"}, "PgArray nulls"),
    ("bigint_array", "bigint[]", "'{1550166368505037572}'", [1550166368505037572], {}, "ARPT:810"),
    (
        "text_array",
        "text[]",
        """'{"one","two","three"}'""",
        ["one", "two", "three"],
        {},
        "ARPT:812",
    ),
    ("quoted_array", "text[]", r"""'{"a,b","c\"d",NULL}'""", ["a,b", 'c"d', None], {}, "PgArray"),
    (
        "date_array",
        "date[]",
        "'{2016-11-04,2016-11-05}'",
        [DAY_2016_11_04, DAY_2016_11_04 + 1],
        {},
        "ARPT:818",
    ),
    (
        "varnumeric_array",
        "numeric[]",
        "'{1.1,2.22,3.333}'",
        [vsd(1, 11), vsd(2, 222), vsd(3, 3333)],
        {},
        "ARPT:829 varnumeric_array",
    ),
    (
        "uuid_array",
        "uuid[]",
        "'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'",
        ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"],
        {},
        "ARPT:851",
    ),
    (
        "jsonb_array",
        "jsonb[]",
        """array['{"bar": "baz"}','{"foo": "qux"}']::jsonb[]""",
        ['{"bar": "baz"}', '{"foo": "qux"}'],
        {},
        "ARPT:855",
    ),
    (
        "tz_array",
        "timestamptz[]",
        "'{2020-04-01 11:51:02+00}'",
        ["2020-04-01T11:51:02.000000Z"],
        {},
        "ARPT:720",
    ),
    # --- enum, hstore, ranges, network, geometric, bits ----------------------------------------
    (
        "mood",
        "mood",
        "'happy'",
        "happy",
        {"name": "io.debezium.data.Enum", "parameters": {"allowed": "sad,ok,happy"}},
        "PVC:355 Enum.builder(join(',', enum values))",
    ),
    ("moods", "mood[]", "'{ok,happy}'", ["ok", "happy"], {"type": "array"}, "PVC:359 enum arrays"),
    (
        "hs",
        "hstore",
        """'"key1" => "val1", "key2" => NULL'""",
        '{"key1":"val1","key2":null}',
        {"name": "io.debezium.data.Json"},
        "ARPT:410 (json hstore, HashMap order)",
    ),
    (
        "hs_mul",
        "hstore",
        """'"key4" => "val4", "key5" => NULL'""",
        '{"key5":null,"key4":"val4"}',
        {},
        "ARPT:402 expectedArray element order (java.util.HashMap)",
    ),
    ("i4r", "int4range", "'[1000,6000)'", "[1000,6000)", {"type": "string"}, "ARPT:590"),
    ("numr", "numrange", "'[5.3,6.3)'", "[5.3,6.3)", {"type": "string"}, "ARPT:596"),
    (
        "tsr",
        "tsrange",
        "'[2019-03-31 15:30:00, infinity)'",
        '["2019-03-31 15:30:00",infinity)',
        {"type": "string"},
        "ARPT:563",
    ),
    ("dr", "daterange", "'[2019-03-31, infinity)'", "[2019-03-31,infinity)", {}, "ARPT:583"),
    ("inet", "inet", "'192.168.2.0/12'", "192.168.2.0/12", {"type": "string"}, "ARPT network"),
    ("cidr", "cidr", "'192.168.100.128/25'", "192.168.100.128/25", {}, "ARPT cidr"),
    ("mac", "macaddr", "'08:00:2b:01:02:03'", "08:00:2b:01:02:03", {}, "ARPT:517"),
    ("mac8", "macaddr8", "'08:00:2b:01:02:03:04:05'", "08:00:2b:01:02:03:04:05", {}, "ARPT:421"),
    (
        "p",
        "point",
        "'(1,1)'",
        {"x": 1.0, "y": 1.0, "wkb": WKB_POINT_1_1, "srid": None},
        {"name": "io.debezium.data.geometry.Point"},
        "ARPT:552 Point.createValue(1, 1)",
    ),
    ("bol2", "bit(1)", "'1'", True, {"type": "boolean"}, "ARPT:617 bol2"),
    (
        "bs",
        "bit(2)",
        "'11'",
        base64.b64encode(bytes([3])).decode(),
        {"name": "io.debezium.data.Bits", "parameters": {"length": "2"}},
        "ARPT:618 bs",
    ),
    ("bs7", "bit(7)", "'1'::bit(7)", base64.b64encode(bytes([64])).decode(), {}, "ARPT:619 bs7"),
    (
        "bvu",
        "varbit",
        "'101'",
        base64.b64encode(bytes([5])).decode(),
        {"parameters": {"length": "2147483647"}},
        "ARPT:623 bvunlimited1",
    ),
    ("posint", "posint", "7", 7, {"type": "int32"}, "domains resolve to the root type (PVC)"),
]

#: Types Debezium has no converter for (include.unknown.datatypes=false): left out of the event.
#: PVC:384 (``return includeUnknownDatatypes ? ... : null``), PVC:298 (arrays of money, name,
#: interval, varbit, xml, point), TSB:404 ("No converter found ... will not be part of change
#: events"); ARPT:469 shows circle only with include.unknown.datatypes=true.
DROPPED: list[tuple[str, str, str]] = [
    ("ccircle", "circle", "'((10,20),10)'"),
    ("bx", "box", "'((0,0),(1,1))'"),
    ("ln", "line", "'{1,2,3}'"),
    ("ls", "lseg", "'[(0,0),(1,1)]'"),
    ("pth", "path", "'[(0,0),(1,1)]'"),
    ("pg", "polygon", "'((0,0),(1,1),(1,0))'"),
    ("tsv", "tsvector", "'a fat cat'"),
    ("lsn", "pg_lsn", "'0/16B6C50'"),
    ("money_array", "money[]", "'{1.5}'"),
    ("interval_array", "interval[]", "'{1 day}'"),
]

SETUP_SQL = """
CREATE EXTENSION IF NOT EXISTS hstore;
CREATE TYPE shop.mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN shop.posint AS integer CHECK (VALUE > 0);
SET search_path = shop, public;
"""


def create_table_sql(table: str = "shop.all_types") -> str:
    columns = [f"{c[0]} {c[1]}" for c in CASES] + [f"{d[0]} {d[1]}" for d in DROPPED]
    return f"CREATE TABLE {table} (id integer PRIMARY KEY, {', '.join(columns)})"


def insert_sql(row_id: int, table: str = "shop.all_types") -> str:
    names = ["id"] + [c[0] for c in CASES] + [d[0] for d in DROPPED]
    values = [str(row_id)] + [c[2] for c in CASES] + [d[2] for d in DROPPED]
    return f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join(values)})"
