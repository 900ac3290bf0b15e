"""DuckDB DDL for catalogue tables: the local warehouse's ``CREATE TABLE`` statements.

Type mapping (BigQuery -> DuckDB):

============  ==========================================================================
BigQuery      DuckDB
============  ==========================================================================
STRING        VARCHAR
BYTES         BLOB
INT64         BIGINT
FLOAT64       DOUBLE
NUMERIC       DECIMAL(p, s) from the field's precision/scale, default DECIMAL(38, 9)
              (BigQuery NUMERIC is exactly 38 digits with 9 after the point)
BIGNUMERIC    DECIMAL(p, s) capped at DuckDB's 38 digits, default DECIMAL(38, 18): BigQuery
              allows 76 digits (38 after the point), so only values that fit 20 integer
              and 18 fraction digits survive locally -- declare precision/scale when it matters
BOOL          BOOLEAN
TIMESTAMP     TIMESTAMPTZ (an instant, like BigQuery's TIMESTAMP)
DATETIME      TIMESTAMP (civil time, no zone)
DATE / TIME   DATE / TIME
JSON          JSON
RECORD        STRUCT("field" type, ...)
REPEATED      type[] (a LIST; REPEATED RECORD -> STRUCT(...)[])
============  ==========================================================================

``REQUIRED`` top-level columns become ``NOT NULL``; inside a STRUCT DuckDB has no per-field
NOT NULL, so nested REQUIRED is not enforced locally. Partitioning, clustering, expiry and the
primary key are BigQuery storage options (BigQuery does not enforce keys either) and are not
part of the DuckDB table; the warehouse adapter enforces ``require_partition_filter`` itself if
it wants to.

Example:
    >>> from edp.contracts.catalog import FieldSpec, TableSpec
    >>> field = FieldSpec(name="id", type="INT64", mode="REQUIRED", description="x")
    >>> t = TableSpec(dataset="raw", name="t", description="d", fields=(field,))
    >>> duckdb_create_table_sql(t, "raw")
    'CREATE TABLE IF NOT EXISTS "raw"."t" (\\n  "id" BIGINT NOT NULL\\n);'
"""

from __future__ import annotations

from edp.contracts.catalog import FieldSpec, TableSpec
from edp.errors import ContractError

_SCALARS = {
    "STRING": "VARCHAR",
    "BYTES": "BLOB",
    "INT64": "BIGINT",
    "FLOAT64": "DOUBLE",
    "BOOL": "BOOLEAN",
    "TIMESTAMP": "TIMESTAMPTZ",
    "DATETIME": "TIMESTAMP",
    "DATE": "DATE",
    "TIME": "TIME",
    "INTERVAL": "INTERVAL",
    "JSON": "JSON",
}
DUCKDB_MAX_PRECISION = 38
_DECIMAL_DEFAULTS = {"NUMERIC": (38, 9), "BIGNUMERIC": (38, 18)}


def _quote(identifier: str) -> str:
    if '"' in identifier:
        raise ContractError(f"invalid identifier {identifier!r}")
    return f'"{identifier}"'


def duckdb_type(field: FieldSpec) -> str:
    """The DuckDB type of one field, REPEATED included.

    Example:
        >>> duckdb_type(FieldSpec(name="n", type="NUMERIC", precision=12, scale=2,
        ...                       description="x", mode="REPEATED"))
        'DECIMAL(12, 2)[]'
    """
    if field.type == "RECORD":
        if not field.fields:
            raise ContractError(f"RECORD field {field.name!r} has no fields")
        inner = ", ".join(f"{_quote(f.name)} {duckdb_type(f)}" for f in field.fields)
        base = f"STRUCT({inner})"
    elif field.type in _DECIMAL_DEFAULTS:
        default_precision, default_scale = _DECIMAL_DEFAULTS[field.type]
        precision = min(field.precision or default_precision, DUCKDB_MAX_PRECISION)
        scale = default_scale if field.scale is None else field.scale
        base = f"DECIMAL({precision}, {min(scale, precision)})"
    else:
        base = _SCALARS[field.type]
    return f"{base}[]" if field.mode == "REPEATED" else base


def duckdb_create_table_sql(table: TableSpec, schema_name: str) -> str:
    """``CREATE TABLE IF NOT EXISTS "<schema_name>"."<table>" (...)`` for one catalogue table.

    Args:
        table: the table contract.
        schema_name: the DuckDB schema to create it in (the configured dataset name).

    Returns:
        One SQL statement, ending with ``;``.
    """
    columns = []
    for field in table.fields:
        not_null = " NOT NULL" if field.mode == "REQUIRED" else ""
        columns.append(f"  {_quote(field.name)} {duckdb_type(field)}{not_null}")
    body = ",\n".join(columns)
    return f"CREATE TABLE IF NOT EXISTS {_quote(schema_name)}.{_quote(table.name)} (\n{body}\n);"
