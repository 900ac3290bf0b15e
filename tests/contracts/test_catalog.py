"""The table catalogue: the real one is valid, and every validation rule catches its case."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edp.contracts.catalog import DATASETS, Catalog, TableSpec, load_catalog
from edp.errors import ContractError, UnknownColumnError, UnknownTableError
from edp_tools.contracts.build import (
    catalog_problems,
    load_datasets,
    load_tables,
    repo_root,
)


def test_the_repository_catalogue_has_no_problems() -> None:
    assert catalog_problems(load_tables(repo_root())) == []


def test_the_packaged_catalogue_is_the_compiled_yaml() -> None:
    assert load_catalog() == load_tables(repo_root())


def test_every_dataset_is_described() -> None:
    datasets = load_datasets(repo_root()).datasets
    assert set(datasets) == set(DATASETS)
    assert datasets["raw"].default_partition_expiration_days == 90


@pytest.mark.parametrize("ref", ["raw.user_events", "raw.bad_events", "raw.user_events_errors"])
def test_raw_event_tables_expire_after_90_days(ref: str) -> None:
    part = load_catalog().table(ref).partitioning
    assert part is not None
    assert part.type == "DAY"
    assert part.expiration_days == 90


def test_user_events_contract() -> None:
    table = load_catalog().table("raw.user_events")
    assert table.partitioning is not None
    assert table.partitioning.field == "event_timestamp"
    assert table.partitioning.require_partition_filter
    assert table.clustering == ("event_type", "device_type")
    assert table.primary_key == ("event_id",)
    items = table.column("items")
    assert (items.type, items.mode) == ("RECORD", "REPEATED")
    assert {"item_id", "item_name", "item_category", "item_brand", "price", "quantity"} <= {
        f.name for f in items.fields
    }
    for name in ("event_id", "event_type", "ingested_at", "params", "schema_version"):
        table.column(name)


def test_lookups_fail_loudly_on_unknown_names() -> None:
    catalog = load_catalog()
    with pytest.raises(UnknownTableError):
        catalog.table("raw.users_events")
    with pytest.raises(UnknownTableError):
        catalog.table("user_events")
    with pytest.raises(UnknownColumnError):
        catalog.table("raw.user_events").column("evnt_id")


def _table(**overrides: Any) -> TableSpec:
    spec: dict[str, Any] = {
        "dataset": "raw",
        "name": "t",
        "description": "A table.",
        "fields": [
            {"name": "id", "type": "STRING", "mode": "REQUIRED", "description": "Key."},
            {"name": "ts", "type": "TIMESTAMP", "description": "Time."},
            {"name": "day", "type": "DATE", "description": "Day."},
            {"name": "payload", "type": "JSON", "description": "Body."},
            {"name": "tags", "type": "STRING", "mode": "REPEATED", "description": "Tags."},
            {"name": "a", "type": "STRING", "description": "A."},
            {"name": "b", "type": "INT64", "description": "B."},
            {"name": "c", "type": "BOOL", "description": "C."},
        ],
        "partitioning": {"field": "ts"},
        "clustering": ["id"],
        "primary_key": ["id"],
    }
    spec.update(overrides)
    return TableSpec.model_validate(spec)


def _problems(*tables: TableSpec) -> list[str]:
    return catalog_problems(Catalog(tables=tables))


def test_a_well_formed_table_has_no_problems() -> None:
    assert _problems(_table()) == []


def _with_field(field: dict[str, Any]) -> TableSpec:
    base = _table()
    return _table(fields=[*(f.model_dump() for f in base.fields), field])


BROKEN = [
    ("partition field missing", _table(partitioning={"field": "nope"}), "partition field 'nope'"),
    ("partition on a STRING", _table(partitioning={"field": "a"}), "must be a single"),
    ("partition on a REPEATED", _table(partitioning={"field": "tags"}), "must be a single"),
    ("HOUR on a DATE", _table(partitioning={"field": "day", "type": "HOUR"}), "HOUR"),
    ("zero expiry", _table(partitioning={"field": "ts", "expiration_days": 0}), "positive"),
    ("5 cluster fields", _table(clustering=["id", "a", "b", "c", "ts"]), "at most 4"),
    ("cluster field missing", _table(clustering=["nope"]), "clustering field 'nope'"),
    ("cluster on JSON", _table(clustering=["payload"]), "cannot be NULLABLE JSON"),
    ("cluster on REPEATED", _table(clustering=["tags"]), "cannot be REPEATED"),
    ("cluster repeats", _table(clustering=["a", "a"]), "repeats"),
    ("key column missing", _table(primary_key=["nope"]), "primary key column 'nope'"),
    ("key on JSON", _table(primary_key=["payload"]), "not a scalar"),
    ("empty table description", _table(description="  "), "empty table description"),
    ("no fields", _table(fields=[], partitioning=None, clustering=[], primary_key=[]), "no fields"),
    ("bad label", _table(labels={"Layer": "raw"}), "invalid label"),
    (
        "duplicate field",
        _with_field({"name": "a", "type": "STRING", "description": "Again."}),
        "duplicate field",
    ),
    (
        "empty nested description",
        _with_field(
            {
                "name": "r",
                "type": "RECORD",
                "description": "R.",
                "fields": [{"name": "x", "type": "STRING", "description": ""}],
            }
        ),
        "t.r.x: empty description",
    ),
    (
        "RECORD without fields",
        _with_field({"name": "r", "type": "RECORD", "description": "R."}),
        "RECORD without fields",
    ),
    (
        "sub-fields on a STRING",
        _with_field(
            {
                "name": "s",
                "type": "STRING",
                "description": "S.",
                "fields": [{"name": "x", "type": "STRING", "description": "X."}],
            }
        ),
        "only RECORD",
    ),
    (
        "NUMERIC too wide",
        _with_field(
            {"name": "n", "type": "NUMERIC", "precision": 40, "scale": 2, "description": "N."}
        ),
        "NUMERIC(40, 2) out of range",
    ),
    (
        "NUMERIC scale over 9",
        _with_field(
            {"name": "n", "type": "NUMERIC", "precision": 20, "scale": 10, "description": "N."}
        ),
        "out of range",
    ),
    (
        "precision on a FLOAT64",
        _with_field({"name": "f", "type": "FLOAT64", "precision": 10, "description": "F."}),
        "precision/scale only",
    ),
]


@pytest.mark.parametrize(("case", "table", "expected"), BROKEN, ids=[c[0] for c in BROKEN])
def test_each_rule_reports_its_case(case: str, table: TableSpec, expected: str) -> None:
    problems = _problems(table)
    assert any(expected in p for p in problems), problems


def test_a_table_defined_twice_is_reported() -> None:
    assert _problems(_table(), _table()) == ["raw.t: defined twice"]


def test_valid_numeric_precisions_pass() -> None:
    ok = _with_field(
        {"name": "n", "type": "NUMERIC", "precision": 38, "scale": 9, "description": "N."}
    )
    big = _with_field(
        {"name": "m", "type": "BIGNUMERIC", "precision": 76, "scale": 38, "description": "M."}
    )
    assert _problems(ok) == []
    assert _problems(big) == []


def _write(root: Path, rel: str, text: str) -> None:
    path = root / "schemas/tables" / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("rel", "text", "message"),
    [
        ("bronze/t.yaml", "description: d\nfields: []\n", "unknown dataset 'bronze'"),
        ("raw/t.yml", "description: d\nfields: []\n", "must be <dataset>/<table>.yaml"),
        ("raw/t.yaml", "description: [unclosed\n", "invalid YAML"),
        ("raw/t.yaml", "- just a list\n", "expected a mapping"),
        ("raw/t.yaml", "name: t\ndescription: d\nfields: []\n", "come from the path"),
        (
            "raw/t.yaml",
            "description: d\nfields: []\npartition: {field: ts}\n",
            "raw/t.yaml",
        ),
        (
            "raw/t.yaml",
            "description: d\nfields: [{name: x, type: VARCHAR, description: x}]\n",
            "raw/t.yaml",
        ),
        ("raw/Bad-Name.yaml", "description: d\nfields: []\n", "Bad-Name.yaml"),
    ],
)
def test_load_tables_names_the_offending_file(
    tmp_path: Path, rel: str, text: str, message: str
) -> None:
    _write(tmp_path, rel, text)
    with pytest.raises(ContractError, match=message.replace("[", r"\[").replace(".", r"\.")):
        load_tables(tmp_path)


def test_datasets_file_must_describe_every_dataset(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas/datasets.yaml").write_text(
        "datasets:\n  raw: {description: Raw.}\n  gold: {description: Gold.}\n"
    )
    with pytest.raises(ContractError, match=r"not described \['mart', 'monitoring', 'staging'\]"):
        load_datasets(tmp_path)
