"""Lineage of the shipped SQL models: hand-written expectations and the raw-reach bar."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from sqlglot import exp
from sqlglot.lineage import lineage as sqlglot_lineage

from edp.lineage.columns import Edges, Field, Transformation
from edp.lineage.models import catalog_schema, dataset_to_raw, model_lineage, sql_models, to_raw

EXPECTED = Path(__file__).parent / "expected"

#: Mart columns whose defining expression reads no column at all, so no column lineage can
#: reach raw (checked by reading the SQL): literals and COUNT(*). Their rows are still traced
#: through the model's dataset-level (filter / join / group) lineage, asserted below.
NO_COLUMN = {
    ("mart.conversion_funnel", "basis"): "'session' / 'user' literals",
    ("mart.orders_daily", "orders"): "COUNT(*)",
    ("mart.retention_cohorts", "cohort_grain"): "'day' / 'week' literals",
    ("mart.retention_cohorts", "cohort_size"): "COUNT(*) of the cohort",
}


def _as_text(edges: Edges) -> dict[str, list[str]]:
    return {
        f"{source.table}.{source.field}": sorted(f"{k.type}/{k.subtype}" for k in kinds)
        for source, kinds in edges.items()
    }


@pytest.mark.parametrize("name", ["conversion_funnel", "product_performance"])
def test_mart_lineage_matches_the_hand_written_expectation(name: str) -> None:
    expected = yaml.safe_load((EXPECTED / f"{name}.yaml").read_text(encoding="utf-8"))
    lineage = model_lineage(expected["model"])

    assert list(lineage.columns) == list(expected["columns"])
    for column, edges in expected["columns"].items():
        want = {source: sorted(kinds) for source, kinds in (edges or {}).items()}
        assert _as_text(lineage.columns[column]) == want, column
    got_dataset = {
        f"{source.table}.{source.field}": sorted(subtypes)
        for source, subtypes in lineage.dataset.items()
    }
    assert got_dataset == {k: sorted(v) for k, v in expected["dataset"].items()}


def test_every_mart_column_reaches_a_raw_column() -> None:
    marts = [ref for ref in sql_models() if ref.startswith("mart.")]
    assert len(marts) >= 5
    unreached = []
    for ref in marts:
        for column in model_lineage(ref).columns:
            origins = to_raw(ref, column)
            if (ref, column) in NO_COLUMN:
                assert origins == {}, f"{ref}.{column} now reads a column: drop the exception"
                continue
            if not any(source.table.startswith("raw.") for source in origins):
                unreached.append(f"{ref}.{column}: {sorted(map(str, origins))}")
    assert not unreached, "\n".join(unreached)
    for ref, _ in NO_COLUMN:
        assert any(f.table.startswith("raw.") for f in dataset_to_raw(ref)), ref


def test_a_chain_through_staging_keeps_the_struct_field_and_the_strongest_kind() -> None:
    # mart.product_performance.revenue = SUM(line_amount) over the purchase lines only (the
    # event_type = 'purchase' test is in a WHERE: a filter, not a source of the value),
    # line_amount = CAST(item.price AS NUMERIC) * COALESCE(item.quantity, 1) over
    # UNNEST(staging.user_events.items); staging.user_events.items = raw items (a copy).
    aggregate = frozenset({Transformation("DIRECT", "AGGREGATION")})
    assert to_raw("mart.product_performance", "revenue") == {
        Field("raw.user_events", "items.price"): aggregate,
        Field("raw.user_events", "items.quantity"): aggregate,
    }
    # report_date <- staging event_date <- the reporting-day calendar joined on event_timestamp
    assert to_raw("mart.product_performance", "report_date") == {
        Field("raw.user_events", "event_timestamp"): frozenset({Transformation("INDIRECT", "JOIN")})
    }


def test_cdc_staging_models_trace_to_their_change_log() -> None:
    # staging.orders.total_amount = versions.total_amount = raw.cdc_orders.total_amount (a copy);
    # versions ranks by ROW_NUMBER() OVER (PARTITION BY order_id ORDER BY lsn, tx_position,
    # ingested_at) and keeps rank 1, op != 'd', lsn > the last truncation.
    lineage = model_lineage("staging.orders")
    assert lineage.columns["total_amount"] == {
        Field("raw.cdc_orders", "total_amount"): frozenset({Transformation("DIRECT", "IDENTITY")})
    }
    filters = {f.field for f, subtypes in lineage.dataset.items() if "FILTER" in subtypes}
    assert {"op", "lsn", "order_id", "tx_position", "ingested_at"} <= filters


@pytest.mark.parametrize("ref", sorted(sql_models()))
def test_every_model_agrees_with_sqlglot_lineage_on_whole_columns(ref: str) -> None:
    # sqlglot.lineage (the reference) follows projections to whole source columns: a STRUCT
    # field or UNNEST element is its column, window PARTITION/ORDER columns are inputs too. Ours
    # must name the same columns once fields are cut to their column, apart from the INDIRECT
    # JOIN edges it adds for values picked by a join (a generated calendar).
    schema = {d: {t: dict(c) for t, c in ts.items()} for d, ts in catalog_schema().items()}
    theirs_by_column = sqlglot_lineage(
        None, sql_models()[ref].sql, schema=schema, dialect="bigquery"
    )
    ours = model_lineage(ref)
    assert list(theirs_by_column) == list(ours.columns)
    for column, node in theirs_by_column.items():
        theirs = {
            f"{leaf.expression.db}.{leaf.expression.name}.{leaf.name.split('.')[-1]}"
            for leaf in node.walk()
            if not leaf.downstream and isinstance(leaf.expression, exp.Table)
        }
        mine = {
            f"{source.table}.{source.field.split('.')[0]}"
            for source, kinds in ours.columns[column].items()
            if any(kind != Transformation("INDIRECT", "JOIN") for kind in kinds)
        }
        assert mine == theirs, column
