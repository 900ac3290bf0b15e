"""The one BigQuery -> Arrow type mapping, against BigQuery's own.

Expected types: the BigQuery Storage Read API's Arrow schema mapping
(cloud.google.com/bigquery/docs/reference/storage "Arrow schema details"): INT64 -> int64,
FLOAT64 -> float64, BOOL -> bool, STRING -> utf8, BYTES -> binary, DATE -> date32,
DATETIME -> timestamp[us] (no time zone), TIME -> time64[us], TIMESTAMP -> timestamp[us, UTC],
NUMERIC -> decimal128(38, 9), JSON -> utf8 (JSON text), ARRAY -> list, STRUCT -> struct.
One deliberate deviation: BIGNUMERIC (BigQuery: decimal256(76, 38)) travels as
decimal128(38, 18), the widest decimal the local engine (DuckDB) stores.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from edp.contracts.catalog import FieldSpec
from edp.warehouse.arrow_schema import arrow_type

CASES = [
    ("INT64", pa.int64()),
    ("FLOAT64", pa.float64()),
    ("BOOL", pa.bool_()),
    ("STRING", pa.string()),
    ("BYTES", pa.binary()),
    ("DATE", pa.date32()),
    ("DATETIME", pa.timestamp("us")),
    ("TIME", pa.time64("us")),
    ("TIMESTAMP", pa.timestamp("us", tz="UTC")),
    ("NUMERIC", pa.decimal128(38, 9)),
    ("BIGNUMERIC", pa.decimal128(38, 18)),
    ("JSON", pa.string()),
]


@pytest.mark.parametrize(("bq_type", "expected"), CASES, ids=[c[0] for c in CASES])
def test_scalar_types(bq_type: str, expected: pa.DataType) -> None:
    assert arrow_type(FieldSpec(name="c", type=bq_type, description="x")) == expected  # type: ignore[arg-type]


def test_repeated_record() -> None:
    field = FieldSpec(
        name="items",
        type="RECORD",
        mode="REPEATED",
        description="x",
        fields=(
            FieldSpec(name="id", type="STRING", mode="REQUIRED", description="x"),
            FieldSpec(name="price", type="NUMERIC", precision=12, scale=2, description="x"),
        ),
    )
    expected = pa.list_(
        pa.struct([pa.field("id", pa.string(), nullable=False), ("price", pa.decimal128(12, 2))])
    )
    assert arrow_type(field) == expected


def test_the_stream_load_uses_the_same_mapping() -> None:
    from edp.contracts.catalog import load_catalog
    from edp.load.transforms import RawRowMapper
    from edp.warehouse.arrow_schema import arrow_schema

    table = load_catalog().table("raw.user_events")
    assert RawRowMapper.for_table(table).schema == arrow_schema(table)
