"""Table statistics measured on Arrow data: rows and BigQuery logical bytes per column and
partition, the input of the reviewer's offline estimator.

Sizes follow BigQuery's documented data-type sizes (logical bytes): INT64, FLOAT64, DATE,
DATETIME, TIME, TIMESTAMP 8; NUMERIC 16; BIGNUMERIC 32; BOOL 1; STRING and JSON 2 + UTF-8
bytes; BYTES 2 + bytes; STRUCT the sum of its fields; ARRAY the sum of its elements; NULL 0.

Example:
    >>> import pyarrow as pa
    >>> from edp.contracts.catalog import FieldSpec
    >>> column_bytes(pa.array(["abc", None, "é"]), FieldSpec(name="s", type="STRING", description="x"))
    9
"""  # noqa: E501

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pyarrow as pa
import pyarrow.compute as pc

from edp.contracts.catalog import FieldSpec, TableSpec
from edp.warehouse.port import Warehouse
from edp.warehouse.statistics import PartitionStatistics, Statistics, TableStatistics

_FIXED = {
    "INT64": 8,
    "FLOAT64": 8,
    "NUMERIC": 16,
    "BIGNUMERIC": 32,
    "BOOL": 1,
    "DATE": 8,
    "DATETIME": 8,
    "TIME": 8,
    "TIMESTAMP": 8,
}


def _scalar_bytes(array: pa.Array, field: FieldSpec) -> int:
    if pa.types.is_dictionary(array.type):  # generated data is dictionary-encoded
        array = pc.cast(array, array.type.value_type)
    if field.type == "RECORD":
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        valid = pc.is_valid(array)
        total = 0
        for sub in field.fields:
            if array.type.get_field_index(sub.name) < 0:
                continue  # a field the data does not carry holds no bytes
            child = pc.struct_field(array, sub.name)
            total += column_bytes(pc.if_else(valid, child, None), sub)
        return total
    valid = int(pc.sum(pc.is_valid(array)).as_py() or 0)
    if field.type in _FIXED:
        return _FIXED[field.type] * valid
    if field.type in ("STRING", "JSON", "BYTES"):
        if field.type == "JSON" and not pa.types.is_string(array.type):
            array = pc.cast(array, pa.string())
        lengths = pc.binary_length(array)
        return int(pc.sum(lengths).as_py() or 0) + 2 * valid
    raise ValueError(f"no size rule for {field.type}")


def column_bytes(array: pa.Array | pa.ChunkedArray, field: FieldSpec) -> int:
    """Logical bytes of one column's values (BigQuery's data-size rules)."""
    if field.mode == "REPEATED":
        if isinstance(array, pa.ChunkedArray):
            array = array.combine_chunks()
        element = field.model_copy(update={"mode": "NULLABLE"})
        return _scalar_bytes(pc.list_flatten(array), element)
    return _scalar_bytes(array, field)


def _partition_keys(spec: TableSpec, data: pa.Table) -> list[dt.datetime | None]:
    if spec.partitioning is None:
        return [None] * data.num_rows
    values = data.column(spec.partitioning.field).to_pylist()
    unit = spec.partitioning.type
    keys: list[dt.datetime | None] = []
    for raw in values:
        if raw is None:
            keys.append(None)  # BigQuery's __NULL__ partition
            continue
        moment = raw if isinstance(raw, dt.datetime) else dt.datetime(raw.year, raw.month, raw.day)
        value = moment.astimezone(dt.UTC) if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        if unit == "HOUR":
            keys.append(value.replace(minute=0, second=0, microsecond=0))
        elif unit == "MONTH":
            keys.append(value.replace(day=1, hour=0, minute=0, second=0, microsecond=0))
        else:
            keys.append(value.replace(hour=0, minute=0, second=0, microsecond=0))
    return keys


def table_statistics(spec: TableSpec, data: pa.Table) -> TableStatistics:
    """Statistics of ``data`` (all of a table's rows, columns named as its fields)."""
    keys = _partition_keys(spec, data)
    groups: dict[dt.datetime | None, list[int]] = {}
    for index, key in enumerate(keys):
        groups.setdefault(key, []).append(index)
    partitions = []
    for key in sorted(groups, key=lambda k: (k is None, k or dt.datetime.min)):
        part = data.take(pa.array(groups[key], pa.int64()))
        sizes = {
            f.name: column_bytes(part.column(f.name), f)
            for f in spec.fields
            if f.name in part.column_names
        }
        partitions.append(PartitionStatistics(start=key, rows=part.num_rows, column_bytes=sizes))
    return TableStatistics(ref=spec.ref, partitions=tuple(partitions))


def statistics_from_warehouse(warehouse: Warehouse, specs: Iterable[TableSpec]) -> Statistics:
    """Measure every table of ``specs`` (reads each whole table: for local warehouses)."""
    tables = []
    for spec in specs:
        data = warehouse.query_arrow(f"SELECT * FROM {spec.ref}")  # ref from the catalogue
        tables.append(table_statistics(spec, data))
    return Statistics.of(tables)


def scaled_history(
    sample: TableStatistics, *, days: int, rows_per_day: int, last_day: dt.date
) -> TableStatistics:
    """``days`` daily partitions of ``rows_per_day`` rows shaped like ``sample``'s rows.

    The per-row bytes of each column are the sample's averages (a generated day stands for
    the column sizes of every day of the history).
    """
    rows = sample.rows
    if rows == 0:
        raise ValueError("empty sample")
    totals: dict[str, int] = {}
    for part in sample.partitions:
        for name, size in part.column_bytes.items():
            totals[name] = totals.get(name, 0) + size
    per_row = {name: size / rows for name, size in totals.items()}
    partitions = []
    for offset in range(days - 1, -1, -1):
        day = last_day - dt.timedelta(days=offset)
        start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        sizes = {name: round(avg * rows_per_day) for name, avg in per_row.items()}
        partitions.append(PartitionStatistics(start=start, rows=rows_per_day, column_bytes=sizes))
    return TableStatistics(ref=sample.ref, partitions=tuple(partitions))
