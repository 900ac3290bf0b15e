"""Column lineage of one SELECT: each expected edge is derived by hand from the SQL in the test.

Vocabulary: OpenLineage column-lineage facet 1-2-0 (DIRECT: IDENTITY, TRANSFORMATION,
AGGREGATION; INDIRECT: FILTER, JOIN, GROUP_BY, SORT, WINDOW).
"""

from __future__ import annotations

import pytest
from sqlglot.lineage import lineage as sqlglot_lineage

from edp.lineage.columns import Field, LineageError, Transformation, analyse, combine

SCHEMA = {
    "raw": {
        "events": {
            "event_id": "STRING",
            "user_id": "STRING",
            "ts": "TIMESTAMP",
            "amount": "NUMERIC",
            "props": "STRUCT<page STRING, referrer STRING>",
            "items": "ARRAY<STRUCT<sku STRING, price FLOAT64, qty INT64>>",
        },
        "users": {"user_id": "STRING", "country": "STRING"},
    }
}
IDENTITY = Transformation("DIRECT", "IDENTITY")
EXPR = Transformation("DIRECT", "TRANSFORMATION")
AGG = Transformation("DIRECT", "AGGREGATION")


def ev(field: str) -> Field:
    return Field("raw.events", field)


def test_copy_expression_and_aggregate_through_ctes() -> None:
    sql = """
        with base as (select event_id, user_id, amount * 2 as doubled from raw.events),
        per_user as (
            select user_id, sum(doubled) as total, count(*) as n from base group by user_id
        )
        select user_id, total, n from per_user
    """
    result = analyse(sql, SCHEMA)
    assert result.columns["user_id"] == {ev("user_id"): frozenset({IDENTITY})}
    # amount -> amount * 2 (TRANSFORMATION) -> SUM (AGGREGATION): the strongest wins
    assert result.columns["total"] == {ev("amount"): frozenset({AGG})}
    # COUNT(*) reads no column
    assert result.columns["n"] == {}
    assert result.dataset == {ev("user_id"): frozenset({"GROUP_BY"})}
    assert result.tables == frozenset({"raw.events"})


def test_star_is_expanded_from_the_catalogue() -> None:
    result = analyse("with e as (select * from raw.events) select user_id from e", SCHEMA)
    assert result.columns["user_id"] == {ev("user_id"): frozenset({IDENTITY})}


def test_struct_field_and_unnest_element_resolve_to_the_field() -> None:
    sql = """
        select e.props.page as page, item.sku, item.price * item.qty as line
        from raw.events as e cross join unnest(e.items) as item
    """
    result = analyse(sql, SCHEMA)
    # sqlglot's own lineage collapses both to the whole column (props, items)
    assert result.columns["page"] == {ev("props.page"): frozenset({IDENTITY})}
    assert result.columns["sku"] == {ev("items.sku"): frozenset({IDENTITY})}
    assert result.columns["line"] == {
        ev("items.price"): frozenset({EXPR}),
        ev("items.qty"): frozenset({EXPR}),
    }


def test_a_struct_built_in_a_cte_and_read_back_by_field_is_narrowed() -> None:
    sql = """
        with s as (select struct(user_id as who, event_id as what) as pair from raw.events)
        select s.pair.who as who from s
    """
    result = analyse(sql, SCHEMA)
    # sqlglot's lineage over-approximates to both user_id and event_id
    assert result.columns["who"] == {ev("user_id"): frozenset({IDENTITY})}


def test_union_branches_merge_and_literals_have_no_source() -> None:
    sql = """
        select 'a' as kind, user_id as id from raw.events
        union all
        select 'b' as kind, user_id as id from raw.users
    """
    result = analyse(sql, SCHEMA)
    assert result.columns["kind"] == {}
    assert result.columns["id"] == {
        ev("user_id"): frozenset({IDENTITY}),
        Field("raw.users", "user_id"): frozenset({IDENTITY}),
    }


def test_window_partition_and_order_columns_are_indirect() -> None:
    sql = """
        select first_value(amount) over (partition by user_id order by ts) as first_amount
        from raw.events
    """
    result = analyse(sql, SCHEMA)
    window = Transformation("INDIRECT", "WINDOW")
    assert result.columns["first_amount"] == {
        ev("amount"): frozenset({AGG}),
        ev("user_id"): frozenset({window}),
        ev("ts"): frozenset({window}),
    }


def test_filter_join_group_and_sort_columns_are_dataset_level() -> None:
    sql = """
        select users.country, count(distinct events.user_id) as buyers
        from raw.events as events
        inner join raw.users as users on users.user_id = events.user_id
        where events.amount > 0
        group by users.country
        order by buyers desc
    """
    result = analyse(sql, SCHEMA)
    assert result.dataset == {
        ev("amount"): frozenset({"FILTER"}),
        ev("user_id"): frozenset({"JOIN", "SORT"}),  # ORDER BY buyers = COUNT(user_id)
        Field("raw.users", "country"): frozenset({"GROUP_BY"}),
        Field("raw.users", "user_id"): frozenset({"JOIN"}),
    }


def test_a_generated_calendar_joined_on_a_column_is_picked_by_that_column() -> None:
    sql = """
        with days as (
            select day from unnest(generate_date_array('2026-01-01', '2026-01-31')) as day
        )
        select days.day, events.event_id
        from raw.events as events
        inner join days on date(events.ts) = days.day
    """
    result = analyse(sql, SCHEMA)
    assert result.columns["day"] == {ev("ts"): frozenset({Transformation("INDIRECT", "JOIN")})}


def test_combine_keeps_the_strongest_kind() -> None:
    assert combine(IDENTITY, EXPR) == EXPR
    assert combine(AGG, EXPR) == AGG
    assert combine(IDENTITY, Transformation("INDIRECT", "WINDOW")).type == "INDIRECT"


@pytest.mark.parametrize(
    "sql",
    ["insert into raw.users (user_id) values ('x')", "select from where", ""],
)
def test_what_is_not_a_select_is_refused(sql: str) -> None:
    with pytest.raises(LineageError):
        analyse(sql, SCHEMA)


def test_top_level_sources_agree_with_sqlglot_lineage() -> None:
    # Where sqlglot is exact (no STRUCT/UNNEST, no indirect edges) both see the same columns.
    sql = """
        with base as (select user_id, amount, ts from raw.events where amount > 0),
        daily as (select user_id, date(ts) as day, sum(amount) as total from base group by 1, 2)
        select user_id, day, total, total / 2 as half from daily
    """
    ours = analyse(sql, SCHEMA)
    for column in ("user_id", "day", "total", "half"):
        node = sqlglot_lineage(column, sql, schema=SCHEMA, dialect="bigquery")
        theirs = {
            f"{leaf.source.db}.{leaf.source.name}.{leaf.name.split('.')[-1]}"
            for leaf in node.walk()
            if not leaf.downstream and hasattr(leaf.source, "db")
        }
        assert {f"{f.table}.{f.field}" for f in ours.columns[column]} == theirs, column
