"""Materialized-view candidates: the same aggregate over the same table, repeated in a day.

A query is an aggregate over one catalogue table when its outermost SELECT reads exactly one
table, groups by plain columns (or has no GROUP BY) and selects aggregates BigQuery's
incremental materialized views support (``COUNT``, ``SUM``, ``AVG``, ``MIN``, ``MAX``,
``APPROX_COUNT_DISTINCT``, ``COUNTIF``; not ``COUNT(DISTINCT)``). Its signature is the table, the group keys and the
aggregates; the columns its WHERE filters on become extra group keys of the view (so every
variant of the filter can be answered from it), and a filter on the partition column becomes
``DATE(<col>)`` grouped and partitioned on. A signature met at least ``min_repeats`` times is a
candidate: the ``CREATE MATERIALIZED VIEW`` statement, the jobs it would serve and what they
billed. What they would bill reading the view is priced at BigQuery's 10 MiB minimum per query
(a per-day aggregate is far smaller than a table scan); BigQuery's smart tuning reroutes the
base-table queries to the view without edits.

Example:
    >>> import datetime as dt
    >>> from edp.sqlreview.history import Job
    >>> t = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    >>> q = "SELECT event_type, COUNT(*) AS n FROM raw.user_events WHERE event_timestamp >= @d GROUP BY event_type"
    >>> jobs = [Job(job_id=str(i), creation_time=t, query=q, total_bytes_billed=2**30) for i in range(3)]
    >>> (c,) = candidates(jobs, min_repeats=3)
    >>> print(c.statement)
    CREATE MATERIALIZED VIEW mart.mv_user_events_... PARTITION BY event_timestamp_date AS SELECT DATE(event_timestamp) AS event_timestamp_date, event_type, COUNT(*) AS n FROM raw.user_events GROUP BY DATE(event_timestamp), event_type
"""  # noqa: E501

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp
from sqlglot.errors import SqlglotError

from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.errors import UnknownTableError
from edp.sqlreview.history import Job
from edp.warehouse.dialect import parse_bigquery
from edp.warehouse.estimate import MIN_BILLED_BYTES, read_tables

_SUPPORTED = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max, exp.ApproxDistinct, exp.CountIf)


@dataclass(frozen=True)
class Candidate:
    """One materialized view worth creating."""

    table: str
    statement: str
    job_ids: tuple[str, ...]
    bytes_before: int
    bytes_after: int
    queries: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class _Shape:
    table: TableSpec
    keys: tuple[str, ...]
    aggregates: tuple[str, ...]
    filters: tuple[str, ...]
    date_key: str | None


def _shape(query: str, catalog: Catalog) -> _Shape | None:  # noqa: PLR0911 (one exit per non-candidate shape)
    try:
        statements = parse_bigquery(query)
    except Exception:
        return None
    if len(statements) != 1 or not isinstance(statements[0], exp.Select):
        return None
    select = statements[0]
    tables = read_tables(select)
    if len(tables) != 1 or select.args.get("joins") or select.find(exp.Subquery, exp.With):
        return None
    table = tables[0]
    try:
        spec = catalog.table(f"{table.db}.{table.name}")
    except UnknownTableError:
        return None
    group = select.args.get("group")
    keys = tuple(e.sql(dialect="bigquery") for e in (group.expressions if group else []))
    if group and not all(isinstance(e, exp.Column) for e in group.expressions):
        return None
    aggregates = []
    for projection in select.expressions:
        inner = projection.this if isinstance(projection, exp.Alias) else projection
        if isinstance(inner, exp.Column) and inner.sql(dialect="bigquery") in keys:
            continue
        # incremental views take no COUNT(DISTINCT) (APPROX_COUNT_DISTINCT is the supported form)
        if not isinstance(inner, _SUPPORTED) or inner.find(exp.Distinct):
            return None
        aggregates.append(projection.sql(dialect="bigquery"))
    if not aggregates:
        return None
    partition = spec.partitioning.field if spec.partitioning else None
    where = select.args.get("where")
    filtered = sorted({c.name for c in where.find_all(exp.Column)}) if where else []
    date_key = partition if partition in filtered else None
    filters = tuple(c for c in filtered if c != partition and c not in keys)
    return _Shape(spec, keys, tuple(sorted(aggregates)), filters, date_key)


def _statement(shape: _Shape, name: str) -> str:
    keys: list[str] = []
    projections: list[str] = []
    partition = ""
    if shape.date_key:
        alias = f"{shape.date_key}_date"
        keys.append(f"DATE({shape.date_key})")
        projections.append(f"DATE({shape.date_key}) AS {alias}")
        partition = f" PARTITION BY {alias}"
    for key in (*shape.keys, *shape.filters):
        keys.append(key)
        projections.append(key)
    projections.extend(shape.aggregates)
    group = f" GROUP BY {', '.join(keys)}" if keys else ""
    return (
        f"CREATE MATERIALIZED VIEW mart.{name}{partition} AS SELECT {', '.join(projections)} "
        f"FROM {shape.table.ref}{group}"
    )


def candidates(
    jobs: Sequence[Job], min_repeats: int = 3, catalog: Catalog | None = None
) -> list[Candidate]:
    """Views serving at least ``min_repeats`` of ``jobs``, most bytes billed first."""
    catalog = catalog or load_catalog()
    groups: dict[tuple[Any, ...], tuple[_Shape, list[Job]]] = {}
    for job in jobs:
        try:
            shape = _shape(job.query, catalog)
        except SqlglotError:
            shape = None
        if shape is None:
            continue
        key = (shape.table.ref, shape.keys, shape.aggregates, shape.filters, shape.date_key)
        groups.setdefault(key, (shape, []))[1].append(job)
    found = []
    for key, (shape, members) in groups.items():
        if len(members) < min_repeats:
            continue
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:8]
        name = f"mv_{shape.table.name}_{digest}"
        found.append(
            Candidate(
                table=shape.table.ref,
                statement=_statement(shape, name),
                job_ids=tuple(j.job_id for j in members),
                bytes_before=sum(j.total_bytes_billed or 0 for j in members),
                bytes_after=MIN_BILLED_BYTES * len(members),
                queries=tuple(dict.fromkeys(j.query for j in members)),
            )
        )
    return sorted(found, key=lambda c: c.bytes_before, reverse=True)
