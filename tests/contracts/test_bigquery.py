"""BigQuery JSON schema files: what Terraform reads, parsed by the real BigQuery client."""

from __future__ import annotations

import json

import pytest
from google.cloud.bigquery import SchemaField, Table

from edp.contracts.bigquery import bigquery_field, bigquery_schema, bigquery_table_resource
from edp.contracts.catalog import FieldSpec, TableSpec, load_catalog
from edp_tools.contracts.build import BIGQUERY_DIR, repo_root

TABLES = load_catalog().tables


@pytest.mark.parametrize("table", TABLES, ids=[t.ref for t in TABLES])
def test_each_file_is_a_schema_the_bigquery_client_accepts(table: TableSpec) -> None:
    path = repo_root() / BIGQUERY_DIR / table.dataset / f"{table.name}.json"
    fields = [SchemaField.from_api_repr(f) for f in json.loads(path.read_text())]

    assert [f.name for f in fields] == list(table.column_names)
    assert all(f.description for f in fields)


def test_types_use_the_api_spelling_and_nest_records() -> None:
    fields = bigquery_schema(load_catalog().table("raw.user_events"))
    items = next(f for f in fields if f["name"] == "items")
    assert items["type"] == "RECORD"
    assert items["mode"] == "REPEATED"
    by_name = {f["name"]: f for f in items["fields"]}
    assert by_name["quantity"]["type"] == "INTEGER"
    assert by_name["price"]["type"] == "FLOAT"
    assert by_name["item_id"]["mode"] == "REQUIRED"


@pytest.mark.parametrize(
    ("kind", "api"),
    [("INT64", "INTEGER"), ("FLOAT64", "FLOAT"), ("BOOL", "BOOLEAN"), ("STRING", "STRING"),
     ("TIMESTAMP", "TIMESTAMP"), ("JSON", "JSON"), ("NUMERIC", "NUMERIC")],
)  # fmt: skip
def test_legacy_type_names(kind: str, api: str) -> None:
    field = FieldSpec.model_validate({"name": "f", "type": kind, "description": "F."})
    assert bigquery_field(field)["type"] == api


def test_numeric_precision_and_scale_are_kept() -> None:
    field = FieldSpec.model_validate(
        {"name": "amount", "type": "NUMERIC", "precision": 12, "scale": 2, "description": "A."}
    )
    out = bigquery_field(field)
    assert (out["precision"], out["scale"]) == ("12", "2")
    parsed = SchemaField.from_api_repr(out)
    assert (parsed.precision, parsed.scale) == (12, 2)


@pytest.mark.parametrize("table", TABLES, ids=[t.ref for t in TABLES])
def test_table_resource_round_trips_through_the_bigquery_client(table: TableSpec) -> None:
    resource = bigquery_table_resource(table, "proj", f"edp_{table.dataset}")
    parsed = Table.from_api_repr(resource)

    assert (parsed.project, parsed.dataset_id, parsed.table_id) == (
        "proj",
        f"edp_{table.dataset}",
        table.name,
    )
    assert [f.name for f in parsed.schema] == list(table.column_names)
    assert parsed.description == table.description
    assert parsed.clustering_fields == (list(table.clustering) or None)
    if table.partitioning is None:
        assert parsed.time_partitioning is None
    else:
        assert parsed.time_partitioning.field == table.partitioning.field
        assert parsed.time_partitioning.type_ == table.partitioning.type
        assert parsed.require_partition_filter == table.partitioning.require_partition_filter
        days = table.partitioning.expiration_days
        assert parsed.time_partitioning.expiration_ms == (days * 86_400_000 if days else None)
