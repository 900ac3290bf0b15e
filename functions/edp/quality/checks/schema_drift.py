"""Schema drift: the warehouse table's columns and types against ``schemas/``.

The table is read with a filter that matches nothing (a partition bound before any partition
for partitioned tables, which also satisfies ``require_partition_filter``; ``FALSE`` otherwise)
and its Arrow schema compared by column name and type family with the catalogue's.

Example:
    >>> import pyarrow as pa
    >>> declared = pa.schema([("a", pa.string()), ("b", pa.int64())])
    >>> found = pa.schema([("a", pa.string()), ("b", pa.float64()), ("c", pa.string())])
    >>> r = evaluate("raw.t", declared, found)
    >>> r.status, r.details["added"], r.details["changed"]
    ('fail', ['c'], ['b: int64 -> float64'])
"""

from __future__ import annotations

from datetime import UTC, date, datetime

import pyarrow as pa

from edp.contracts.catalog import TableSpec
from edp.quality.context import CheckContext
from edp.quality.model import CheckResult
from edp.warehouse.arrow_schema import arrow_schema


def family(t: pa.DataType) -> str:  # noqa: PLR0911 - one return per Arrow type family
    """A coarse type name both warehouses agree on (string, int64, decimal, list<...>, ...)."""
    if pa.types.is_dictionary(t):
        return family(t.value_type)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_integer(t):
        return "int64"
    if pa.types.is_floating(t):
        return "float64"
    if pa.types.is_decimal(t):
        return "decimal"
    if pa.types.is_timestamp(t):
        return "timestamp" if t.tz else "datetime"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return f"list<{family(t.value_type)}>"
    if pa.types.is_struct(t):
        return "struct<" + ",".join(f"{f.name}:{family(f.type)}" for f in t) + ">"
    return str(t)


def evaluate(table: str, declared: pa.Schema, found: pa.Schema) -> CheckResult:
    want = {f.name: family(f.type) for f in declared}
    have = {f.name: family(f.type) for f in found}
    missing = sorted(set(want) - set(have))
    added = sorted(set(have) - set(want))
    changed = sorted(
        f"{n}: {want[n]} -> {have[n]}" for n in set(want) & set(have) if want[n] != have[n]
    )
    drift = len(missing) + len(added) + len(changed)
    return CheckResult(
        check_name=f"{table}.schema_drift",
        check_type="schema_drift",
        table_ref=table,
        status="fail" if drift else "pass",
        severity="critical" if missing or changed else "warning" if added else "info",
        metric_value=float(drift),
        threshold=0.0,
        details={"missing": missing, "added": added, "changed": changed},
    )


def run(ctx: CheckContext, spec: TableSpec) -> list[CheckResult]:
    if spec.checks is None or not spec.checks.schema_drift:
        return []
    if spec.partitioning:
        # a filter on the partition column that matches no partition: nothing is read, and
        # tables that require a partition filter accept it (a bare FALSE is not one)
        part = spec.partitioning.field
        kind = spec.column(part).type
        bound: object = date(1970, 1, 1) if kind == "DATE" else datetime(1970, 1, 1, tzinfo=UTC)
        sql = f"SELECT * FROM {spec.ref} WHERE {part} < @never"
        found = ctx.warehouse.query_arrow(sql, {"never": bound}).schema
    else:
        found = ctx.warehouse.query_arrow(f"SELECT * FROM {spec.ref} WHERE FALSE").schema
    return [evaluate(spec.ref, arrow_schema(spec), found)]
