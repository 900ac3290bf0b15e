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


def bigquery_table_resource(table: TableSpec, project: str, dataset_id: str) -> dict[str, Any]:
    """The full BigQuery API ``Table`` resource: what Terraform creates from the same YAML.

    For the BigQuery adapter's ``create_tables`` (``bigquery.Table.from_api_repr(resource)``),
    so tables created by code and by Terraform are identical.

    Args:
        table: the table contract.
        project: GCP project id.
        dataset_id: the physical dataset id the logical dataset maps to.

    Example:
        >>> from edp.contracts.catalog import load_catalog
        >>> resource = bigquery_table_resource(
        ...     load_catalog().table("raw.user_events"), "p", "edp_raw")
        >>> resource["timePartitioning"]["field"], resource["clustering"]["fields"]
        ('event_timestamp', ['event_type', 'device_type'])
    """
    resource: dict[str, Any] = {
        "tableReference": {"projectId": project, "datasetId": dataset_id, "tableId": table.name},
        "description": table.description,
        "schema": {"fields": bigquery_schema(table)},
    }
    if table.labels:
        resource["labels"] = dict(table.labels)
    part = table.partitioning
    if part is not None:
        partitioning: dict[str, Any] = {"type": part.type, "field": part.field}
        if part.expiration_days is not None:
            partitioning["expirationMs"] = str(part.expiration_days * 86_400_000)
        resource["timePartitioning"] = partitioning
        resource["requirePartitionFilter"] = part.require_partition_filter
    if table.clustering:
        resource["clustering"] = {"fields": list(table.clustering)}
    return resource
