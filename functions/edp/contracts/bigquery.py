"""BigQuery JSON schema files (``schemas/bigquery/<dataset>/<table>.json``) from the catalogue.

The files hold the ``fields`` array exactly as the BigQuery API and Terraform's
``google_bigquery_table.schema`` take it (``schema = file(".../raw/user_events.json")``); the
table metadata (partitioning, clustering, expiry, labels, description) stays in the table YAML,
which Terraform reads with ``yamldecode``.

Types are written with the legacy names the API returns (INTEGER, FLOAT, BOOLEAN), because the
Terraform provider compares the stored schema with the API's answer and would otherwise plan a
change on every run for INT64/FLOAT64/BOOL.

Example:
    >>> from edp.contracts.catalog import FieldSpec
    >>> bigquery_field(FieldSpec(name="n", type="INT64", description="count"))
    {'name': 'n', 'type': 'INTEGER', 'mode': 'NULLABLE', 'description': 'count'}
"""

from __future__ import annotations

import json
from typing import Any

from edp.contracts.catalog import FieldSpec, TableSpec

LEGACY_TYPE_NAMES = {"INT64": "INTEGER", "FLOAT64": "FLOAT", "BOOL": "BOOLEAN"}


def bigquery_field(field: FieldSpec) -> dict[str, Any]:
    """One field as a BigQuery API ``TableFieldSchema`` dict."""
    out: dict[str, Any] = {
        "name": field.name,
        "type": LEGACY_TYPE_NAMES.get(field.type, field.type),
        "mode": field.mode,
        "description": field.description,
    }
    if field.precision is not None:
        out["precision"] = str(field.precision)
    if field.scale is not None:
        out["scale"] = str(field.scale)
    if field.fields:
        out["fields"] = [bigquery_field(f) for f in field.fields]
    return out


def bigquery_schema(table: TableSpec) -> list[dict[str, Any]]:
    """The table's fields as a BigQuery JSON schema (a list of field dicts)."""
    return [bigquery_field(f) for f in table.fields]


def bigquery_schema_json(table: TableSpec) -> str:
    """The schema file's text: stable 2-space JSON, one trailing newline."""
    return json.dumps(bigquery_schema(table), indent=2, ensure_ascii=False) + "\n"
