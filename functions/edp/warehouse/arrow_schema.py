"""Arrow types of catalogue tables, and the BigQuery on-demand size of a column.

Both adapters build Arrow batches from rows with these types (so a batch has exactly the
table's columns and types before it reaches the warehouse), and the DuckDB adapter's dry run
estimates bytes from :func:`bigquery_size_sql`.

Example:
    >>> from edp.contracts.catalog import FieldSpec
    >>> arrow_type(FieldSpec(name="ts", type="TIMESTAMP", description="x"))
    TimestampType(timestamp[us, tz=UTC])
"""

from __future__ import annotations

import pyarrow as pa

from edp.contracts.catalog import FieldSpec, TableSpec

_SCALARS: dict[str, pa.DataType] = {
    "STRING": pa.string(),
    "BYTES": pa.binary(),
    "INT64": pa.int64(),
    "FLOAT64": pa.float64(),
    "BOOL": pa.bool_(),
    "TIMESTAMP": pa.timestamp("us", tz="UTC"),
    "DATETIME": pa.timestamp("us"),
    "DATE": pa.date32(),
    "TIME": pa.time64("us"),
    "INTERVAL": pa.month_day_nano_interval(),
    # JSON travels as text: DuckDB casts VARCHAR -> JSON, BigQuery loads JSON from strings.
    "JSON": pa.string(),
}
_DECIMAL_DEFAULTS = {"NUMERIC": (38, 9), "BIGNUMERIC": (38, 18)}

# BigQuery's logical (billing) size of a non-NULL value; NULL counts 0 bytes.
# https://cloud.google.com/bigquery/pricing#data -- STRING/BYTES: 2 + length in bytes.
_FIXED_BYTES = {
    "INT64": 8,
    "FLOAT64": 8,
    "NUMERIC": 16,
    "BIGNUMERIC": 32,
    "BOOL": 1,
    "DATE": 8,
    "DATETIME": 8,
    "TIME": 8,
    "INTERVAL": 16,
    "TIMESTAMP": 8,
}


def arrow_type(field: FieldSpec) -> pa.DataType:
    """The Arrow type of a field (REPEATED -> list, RECORD -> struct)."""
    base: pa.DataType
    if field.type == "RECORD":
        base = pa.struct([arrow_field(f) for f in field.fields])
    elif field.type in _DECIMAL_DEFAULTS:
        precision, scale = _DECIMAL_DEFAULTS[field.type]
        precision = min(field.precision or precision, 38)
        scale = scale if field.scale is None else field.scale
        base = pa.decimal128(precision, min(scale, precision))
    else:
        base = _SCALARS[field.type]
    return pa.list_(base) if field.mode == "REPEATED" else base


def arrow_field(field: FieldSpec) -> pa.Field:
    """The Arrow field of a catalogue field (nullable unless top-level REQUIRED)."""
    return pa.field(field.name, arrow_type(field), nullable=field.mode != "REQUIRED")


def arrow_schema(table: TableSpec) -> pa.Schema:
    """The Arrow schema of a catalogue table, columns in catalogue order."""
    return pa.schema([arrow_field(f) for f in table.fields])


def bigquery_size_sql(field: FieldSpec, ref: str, depth: int = 0) -> str:
    """A DuckDB expression of the BigQuery logical size of ``ref`` (one row), 0 when NULL.

    Example:
        >>> bigquery_size_sql(FieldSpec(name="s", type="STRING", description="x"), '"s"')
        'COALESCE(2 + strlen(CAST("s" AS VARCHAR)), 0)'
    """
    if field.mode == "REPEATED":
        var = f"_e{depth}"
        element = field.model_copy(update={"mode": "NULLABLE"})
        inner = bigquery_size_sql(element, var, depth + 1)
        return f"COALESCE(list_sum(list_transform({ref}, lambda {var}: {inner})), 0)"
    if field.type == "RECORD":
        parts = [
            bigquery_size_sql(f, f"struct_extract({ref}, '{f.name}')", depth) for f in field.fields
        ]
        return "(" + " + ".join(parts) + ")" if parts else "0"
    if field.type in ("STRING", "JSON"):
        return f"COALESCE(2 + strlen(CAST({ref} AS VARCHAR)), 0)"
    if field.type == "BYTES":
        return f"COALESCE(2 + octet_length({ref}), 0)"
    return f"CASE WHEN {ref} IS NULL THEN 0 ELSE {_FIXED_BYTES[field.type]} END"


def bigquery_size_sum_sql(field: FieldSpec, ref: str) -> str:
    """A DuckDB *aggregate* expression: ``SUM(bigquery_size_sql(field, ref))`` over the rows.

    The same figure, computed per column instead of per row: a scalar column of fixed size is
    ``size * COUNT(ref)`` and a STRING ``2 * COUNT(ref) + SUM(strlen(ref))``, so the many
    scalar columns of a wide table cost one aggregate each instead of a CASE per row and
    column (the ETL estimates every model's reads: this is most of that cost). Nested columns
    keep the per-row expression. 0 over no rows, like ``COALESCE(SUM(...), 0)``.

    Example:
        >>> bigquery_size_sum_sql(FieldSpec(name="n", type="INT64", description="x"), '"n"')
        '8 * COUNT("n")'
    """
    if field.mode == "REPEATED" or field.type == "RECORD":
        return f"COALESCE(SUM({bigquery_size_sql(field, ref)}), 0)"
    if field.type in ("STRING", "JSON"):
        return f"(2 * COUNT({ref}) + COALESCE(SUM(strlen(CAST({ref} AS VARCHAR))), 0))"
    if field.type == "BYTES":
        return f"(2 * COUNT({ref}) + COALESCE(SUM(octet_length({ref})), 0))"
    return f"{_FIXED_BYTES[field.type]} * COUNT({ref})"
