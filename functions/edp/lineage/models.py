"""Column lineage of every SQL model, chained across models down to the raw layer.

The SQL models are the daily ETL's (``edp/etl/models/<layer>/<entity>.sql``, target
``<layer>.<entity>``) and the CDC staging rebuilds (``edp/cdc/models/<table>.sql``, target
``staging.<table>``). Each is traced alone against the catalogue (:func:`model_lineage`);
:func:`to_raw` then substitutes, for every source column that another model writes, that model's
lineage of the column (narrowed to the STRUCT field when one is named), until only tables no
model writes remain (``raw.*``). Chained kinds combine as along one query (see
:func:`edp.lineage.columns.combine`).

Example:
    >>> lineage = model_lineage("mart.product_performance")
    >>> sorted(f.field for f in lineage.columns["revenue"])
    ['event_type', 'items.price', 'items.quantity']
    >>> sorted(f"{f.table}.{f.field}" for f in to_raw("mart.product_performance", "item_id"))
    ['raw.user_events.items.item_id']
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from edp.cdc.staging import MODELS_DIR as CDC_MODELS_DIR
from edp.contracts.catalog import FieldSpec, load_catalog
from edp.etl.models import load_models
from edp.lineage.columns import (
    Edges,
    Field,
    LineageError,
    QueryLineage,
    Transformation,
    analyse,
    merge_edges,
)

__all__ = [
    "LineageError",
    "SqlModel",
    "catalog_schema",
    "dataset_to_raw",
    "model_lineage",
    "sql_lineage",
    "sql_models",
    "to_raw",
]


@dataclass(frozen=True)
class SqlModel:
    """A SQL model: the table it writes, its file and its SELECT."""

    ref: str
    path: Path
    sql: str
    kind: str  # "etl" or "cdc"


def _bigquery_type(spec: FieldSpec) -> str:
    inner = (
        "STRUCT<" + ", ".join(f"{f.name} {_bigquery_type(f)}" for f in spec.fields) + ">"
        if spec.type == "RECORD"
        else spec.type
    )
    return f"ARRAY<{inner}>" if spec.mode == "REPEATED" else inner


@lru_cache(maxsize=1)
def catalog_schema() -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    """The catalogue as a sqlglot schema: ``{dataset: {table: {column: BigQuery type}}}``.

    Example:
        >>> catalog_schema()["raw"]["user_events"]["items"].startswith("ARRAY<STRUCT<")
        True
    """
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for table in load_catalog():
        schema.setdefault(table.dataset, {})[table.name] = {
            f.name: _bigquery_type(f) for f in table.fields
        }
    return schema


@lru_cache(maxsize=1)
def sql_models() -> Mapping[str, SqlModel]:
    """Every SQL model by the table it writes (ETL models and CDC staging rebuilds)."""
    found: dict[str, SqlModel] = {
        ref: SqlModel(ref, model.path, model.sql, "etl") for ref, model in load_models().items()
    }
    for path in sorted(CDC_MODELS_DIR.glob("*.sql")):
        ref = f"staging.{path.stem}"
        sql = path.read_text(encoding="utf-8").strip().rstrip(";")
        found[ref] = SqlModel(ref, path, sql, "cdc")
    return found


@lru_cache(maxsize=64)
def sql_lineage(sql: str) -> QueryLineage:
    """The lineage of one model SELECT against the catalogue (cached by its text)."""
    return analyse(sql, catalog_schema())


def model_lineage(ref: str) -> QueryLineage:
    """The lineage of model ``ref`` against its immediate inputs.

    Raises:
        LineageError: no model writes ``ref``, or its SQL cannot be traced.
    """
    model = sql_models().get(ref)
    if model is None:
        raise LineageError(f"no SQL model writes {ref!r}")
    return sql_lineage(model.sql)


def _split(source: Field) -> tuple[str, tuple[str, ...]]:
    column, *path = source.field.split(".")
    return column, tuple(path)


def to_raw(ref: str, column: str, path: tuple[str, ...] = ()) -> Edges:
    """Lineage of ``ref.column`` followed through upstream models to tables no model writes.

    A model reading its own previous output (an incremental ``staging.user_first_seen``) stops
    at itself: the self-reference adds no new origin.
    """
    return _to_raw(ref, column, path, frozenset())


def _to_raw(ref: str, column: str, path: tuple[str, ...], active: frozenset[str]) -> Edges:
    lineage = model_lineage(ref)
    found: dict[Field, set[Transformation]] = {}
    for source, kinds in lineage.column(column, path).items():
        if source.table in sql_models() and source.table not in active | {ref}:
            upstream_column, upstream_path = _split(source)
            upstream = _to_raw(source.table, upstream_column, upstream_path, active | {ref})
            for kind in kinds:
                merge_edges(found, upstream, kind)
        elif source.table not in sql_models():
            found.setdefault(source, set()).update(kinds)
    return {source: frozenset(kinds) for source, kinds in sorted(found.items())}


def dataset_to_raw(ref: str) -> dict[Field, frozenset[str]]:
    """The dataset-level INDIRECT edges of ``ref`` and of every model upstream of it, resolved
    to tables no model writes (the subtype is the clause's: FILTER, JOIN, GROUP_BY, SORT)."""
    found: dict[Field, set[str]] = {}
    pending, seen = [ref], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        lineage = model_lineage(current)
        for source, subtypes in lineage.dataset.items():
            origins: Mapping[Field, Any] = {source: None}
            if source.table in sql_models():
                origins = _to_raw(source.table, *_split(source), frozenset({current}))
            for origin in origins:
                found.setdefault(origin, set()).update(subtypes)
        pending.extend(t for t in lineage.tables if t in sql_models())
    return {source: frozenset(kinds) for source, kinds in sorted(found.items())}
