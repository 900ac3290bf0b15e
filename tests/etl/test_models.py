"""Model discovery, configuration, dependency graph, windows and the rendered write scripts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edp.contracts.catalog import load_catalog
from edp.errors import ConfigError
from edp.etl.models import (
    load_models,
    parallel_groups,
    parse_checks,
    parse_config,
    plan,
    tables_read,
)
from edp.etl.runner import render, window, yesterday

MODELS = load_models()


def test_every_model_writes_a_catalogued_table_it_is_configured_for() -> None:
    for ref, model in MODELS.items():
        spec = load_catalog().table(ref)  # raises if the model has no table YAML
        if model.config.strategy == "insert_overwrite":
            assert spec.partitioning is not None, ref
            assert model.config.partition_by == spec.partitioning.field, ref
        else:
            assert model.config.unique_key == spec.primary_key, ref


def test_every_table_a_model_reads_is_catalogued() -> None:
    for model in MODELS.values():
        for ref in model.reads:
            load_catalog().table(ref)


def test_dependencies_come_from_the_sql() -> None:
    assert MODELS["staging.user_events"].depends_on == frozenset()
    assert MODELS["staging.user_first_seen"].depends_on == {"staging.user_events"}
    assert MODELS["staging.user_identities"].depends_on == {"staging.user_events"}
    assert MODELS["mart.daily_active_users"].depends_on == {
        "staging.user_events",
        "staging.user_first_seen",
        "staging.user_identities",
    }
    assert MODELS["mart.orders_daily"].reads == {"staging.orders"}  # CDC's table, not a model


def test_plan_orders_upstream_first_and_selects_layers_and_models() -> None:
    everything = [m.ref for m in plan(MODELS)]
    assert everything[:3] == [
        "staging.user_events",
        "staging.user_first_seen",
        "staging.user_identities",
    ]
    assert sorted(everything[3:]) == sorted(r for r in MODELS if r.startswith("mart."))
    assert [m.ref for m in plan(MODELS, "mart.orders_daily")] == ["mart.orders_daily"]
    assert {m.ref for m in plan(MODELS, "mart")} == {r for r in MODELS if r.startswith("mart.")}
    with pytest.raises(ConfigError, match="unknown model or layer"):
        plan(MODELS, "mart.nope")
    assert parallel_groups(MODELS, "staging") == [
        ["staging.user_events"],
        ["staging.user_first_seen", "staging.user_identities"],
    ]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("select 1", "exactly one"),
        ("-- config: {strategy: insert_overwrite}", "partition_by"),
        ("-- config: {strategy: merge}", "unique_key"),
        ("-- config: {strategy: upsert, partition_by: d}", "strategy"),
        ("-- config: {strategy: merge, unique_key: [k], colour: red}", "colour"),
        ("-- config: {strategy: merge, unique_key: [k]}\n-- config: {strategy: merge}", "exactly"),
    ],
)
def test_bad_config_lines_are_refused(line: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_config(line + "\nselect 1", "x.sql")


def test_tables_read_ignores_ctes_and_unnest() -> None:
    sql = """
        with orders as (select * from staging.orders),
             e as (select * from staging.user_events, unnest(items) as item)
        select * from orders join e using (user_id)
    """
    assert tables_read(sql) == {"staging.orders", "staging.user_events"}


@pytest.mark.parametrize(
    ("ref", "day", "lookback", "expected"),
    [
        (
            "mart.orders_daily",
            dt.date(2026, 11, 26),
            3,
            (dt.date(2026, 11, 23), dt.date(2026, 11, 26)),
        ),
        (
            "mart.orders_daily",
            dt.date(2026, 11, 26),
            0,
            (dt.date(2026, 11, 26), dt.date(2026, 11, 26)),
        ),
        # weekly rows: the window starts on the Monday of its first day's week
        (
            "mart.retention_cohorts",
            dt.date(2026, 11, 26),
            0,
            (dt.date(2026, 11, 23), dt.date(2026, 11, 26)),
        ),
        (
            "mart.retention_cohorts",
            dt.date(2026, 11, 24),
            3,
            (dt.date(2026, 11, 16), dt.date(2026, 11, 24)),
        ),
    ],
)
def test_window(ref: str, day: dt.date, lookback: int, expected: tuple[dt.date, dt.date]) -> None:
    assert window(MODELS[ref], day, lookback) == expected


def test_yesterday_is_taken_in_the_time_zone() -> None:
    # 16:00 UTC on the 26th is already 01:00 on the 27th in Seoul
    now = dt.datetime(2026, 11, 26, 16, 0, tzinfo=dt.UTC)
    assert yesterday("Asia/Seoul", now) == dt.date(2026, 11, 26)
    assert yesterday("UTC", now) == dt.date(2026, 11, 25)


def test_render_overwrites_only_the_owned_partitions() -> None:
    script = render(MODELS["mart.orders_daily"])
    assert script.startswith("BEGIN TRANSACTION;")
    assert "DELETE FROM mart.orders_daily WHERE report_date BETWEEN @start AND @end;" in script
    columns = ", ".join(load_catalog().table("mart.orders_daily").column_names)
    assert f"INSERT INTO mart.orders_daily ({columns})" in script
    assert script.rstrip().endswith("COMMIT TRANSACTION;")


def test_render_merges_on_the_unique_key() -> None:
    script = render(MODELS["staging.user_first_seen"])
    assert script.startswith("MERGE staging.user_first_seen AS target")
    assert "ON target.user_key = source.user_key" in script
    assert "UPDATE SET first_seen_date = source.first_seen_date" in script
    assert "user_key = source.user_key," not in script  # the key is never updated


def test_models_are_shaped_like_the_house_style() -> None:
    for model in MODELS.values():
        text = Path(model.path).read_text(encoding="utf-8")
        assert text.startswith(f"-- {model.ref}:"), model.ref  # says what it is, first line
        assert text.rstrip().endswith("select * from final"), model.ref
        assert "select *\n    from raw." not in text  # import CTEs name their columns


def test_checks_are_loaded_beside_their_models() -> None:
    names = {ref: [c.name for c in m.checks] for ref, m in MODELS.items()}
    assert names["staging.user_events"] == ["event_id_unique", "every_event_attributed"]
    assert "closed_funnel_narrows" in names["mart.conversion_funnel"]
    assert not any(ref.endswith(".checks") for ref in MODELS)  # check files are not models
    for model in MODELS.values():
        for check in model.checks:
            assert check.params <= {"start", "end"}, (model.ref, check.name)
            assert tables_read(check.sql) == {model.ref}, (model.ref, check.name)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("select 1", "no '-- check"),
        ("-- check: a\nselect 1\n-- check: a\nselect 2", "duplicate"),
    ],
)
def test_bad_checks_files_are_refused(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_checks(text, "x.checks.sql")
