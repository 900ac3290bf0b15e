"""OpenLineage run events for SQL model runs, with the column-lineage facet.

Every run of a model emits a ``START`` event and then ``COMPLETE`` or ``FAIL`` (OpenLineage
2-0-2 RunEvent): job ``<pipeline>.<model>``, the tables it reads as inputs, the table it writes
as the output with the ``schema`` facet (1-2-0, from the catalogue) and the ``columnLineage``
facet (1-2-0: per-column ``inputFields`` with DIRECT/INDIRECT transformations, and the
dataset-level INDIRECT edges in ``dataset``), the model SQL as the ``sql`` job facet and, on
failure, the ``errorMessage`` run facet. A lineage service (Marquez, a Dataplex bridge) ingests
them.

Where events go (``EDP_OPENLINEAGE_TRANSPORT``): ``file`` appends JSON lines to
``EDP_OPENLINEAGE_FILE`` (default ``<state_dir>/lineage/openlineage.jsonl``); ``http`` POSTs each
event as JSON to ``EDP_OPENLINEAGE_URL`` + ``EDP_OPENLINEAGE_ENDPOINT`` (Marquez:
``/api/v1/lineage``); ``none`` drops them; ``auto`` (default) means ``http`` when a URL is set,
else ``file`` on the local DuckDB warehouse and ``none`` on BigQuery (a Cloud Run instance's
disk is memory). Lineage is an observer: a failed send is logged, never fails the model run.

Example:
    >>> import datetime as dt
    >>> event = run_event(
    ...     "COMPLETE", "7f1c3b9e-3a4e-4c43-9a55-5c3c1f0e6a10", "mart.product_performance",
    ...     at=dt.datetime(2026, 11, 26, tzinfo=dt.UTC), namespace="duckdb",
    ...     job_namespace="edp-local")
    >>> lineage = event["outputs"][0]["facets"]["columnLineage"]
    >>> (source,) = lineage["fields"]["item_id"]["inputFields"]
    >>> source["name"], source["field"], source["transformations"]
    ('staging.user_events', 'items.item_id', [{'type': 'DIRECT', 'subtype': 'IDENTITY'}])
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edp.contracts.catalog import FieldSpec, load_catalog
from edp.errors import ConfigError, EdpError
from edp.lineage.columns import Edges
from edp.lineage.models import sql_lineage, sql_models
from edp.settings import Settings

log = logging.getLogger(__name__)

EventType = Literal["START", "COMPLETE", "FAIL"]
#: A URI naming the producer (the spec asks for a URI; this package has no canonical URL).
PRODUCER = "urn:edp:lineage"
RUN_EVENT_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
COLUMN_LINEAGE_SCHEMA = "https://openlineage.io/spec/facets/1-2-0/ColumnLineageDatasetFacet.json"
SCHEMA_SCHEMA = "https://openlineage.io/spec/facets/1-2-0/SchemaDatasetFacet.json"
SQL_SCHEMA = "https://openlineage.io/spec/facets/1-1-0/SQLJobFacet.json"
JOB_TYPE_SCHEMA = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json"
ERROR_SCHEMA = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json"


def run_uuid(run_id: str, model: str) -> str:
    """The OpenLineage run id of one model inside a pipeline run (stable across retries).

    Example:
        >>> run_uuid("r1", "mart.a") == run_uuid("r1", "mart.a") != run_uuid("r1", "mart.b")
        True
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"edp:{run_id}:{model}"))


def _facet(schema_url: str, **body: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema_url, **body}


def _schema_fields(fields: tuple[FieldSpec, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for spec in fields:
        entry: dict[str, Any] = {
            "name": spec.name,
            "type": spec.type,
            "description": spec.description,
        }
        if spec.fields:
            entry["fields"] = _schema_fields(spec.fields)
        out.append(entry)
    return out


def _input_fields(edges: Edges, namespace: str) -> list[dict[str, Any]]:
    return [
        {
            "namespace": namespace,
            "name": source.table,
            "field": source.field,
            "transformations": [
                {"type": kind.type, "subtype": kind.subtype} for kind in sorted(kinds)
            ],
        }
        for source, kinds in edges.items()
    ]


def column_lineage_facet(sql: str, namespace: str) -> dict[str, Any]:
    """The ``columnLineage`` facet (1-2-0) of the table a model's ``sql`` writes."""
    lineage = sql_lineage(sql)
    return _facet(
        COLUMN_LINEAGE_SCHEMA,
        fields={
            column: {"inputFields": _input_fields(edges, namespace)}
            for column, edges in lineage.columns.items()
        },
        dataset=[
            {
                "namespace": namespace,
                "name": source.table,
                "field": source.field,
                "transformations": [{"type": "INDIRECT", "subtype": s} for s in sorted(subtypes)],
            }
            for source, subtypes in lineage.dataset.items()
        ],
    )


def run_event(
    event_type: EventType,
    run_id: str,
    model: str,
    *,
    at: dt.datetime,
    namespace: str,
    job_namespace: str,
    pipeline: str = "daily_etl",
    sql: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """One OpenLineage RunEvent for a run of ``model`` (a table a SQL model writes).

    ``sql`` is the model's SELECT (default: the registered model of that name).
    """
    sql = sql_models()[model].sql if sql is None else sql
    lineage = sql_lineage(sql)
    spec = load_catalog().table(model)
    run: dict[str, Any] = {"runId": run_id}
    if error is not None:
        run["facets"] = {
            "errorMessage": _facet(ERROR_SCHEMA, message=error, programmingLanguage="PYTHON")
        }
    return {
        "eventType": event_type,
        "eventTime": at.isoformat(),
        "producer": PRODUCER,
        "schemaURL": RUN_EVENT_SCHEMA,
        "run": run,
        "job": {
            "namespace": job_namespace,
            "name": f"{pipeline}.{model}",
            "facets": {
                "jobType": _facet(
                    JOB_TYPE_SCHEMA, processingType="BATCH", integration="EDP", jobType="MODEL"
                ),
                "sql": _facet(SQL_SCHEMA, query=sql, dialect="bigquery"),
            },
        },
        "inputs": [
            {"namespace": namespace, "name": table} for table in sorted(lineage.tables - {model})
        ],
        "outputs": [
            {
                "namespace": namespace,
                "name": model,
                "facets": {
                    "schema": _facet(SCHEMA_SCHEMA, fields=_schema_fields(spec.fields)),
                    "columnLineage": column_lineage_facet(sql, namespace),
                },
            }
        ],
    }


Sink = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class FileSink:
    """Appends each event as one JSON line."""

    path: Path

    def __call__(self, event: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(event, separators=(",", ":")) + "\n")


@dataclass(frozen=True)
class HttpSink:
    """POSTs each event as JSON (OpenLineage HTTP transport; Marquez ``/api/v1/lineage``)."""

    url: str
    timeout_s: float = 5.0

    def __post_init__(self) -> None:
        # urlopen also opens file: and custom schemes; only ever send to an HTTP endpoint
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"OpenLineage URL must be http(s): {self.url!r}")

    def __call__(self, event: dict[str, Any]) -> None:
        request = urllib.request.Request(  # noqa: S310 (scheme checked in __post_init__)
            self.url,
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # noqa: S310
            response.read()


def sink_for(settings: Settings) -> Sink | None:
    """Where this process's events go, from the settings (None: nowhere).

    Example:
        >>> sink_for(Settings(_env_file=None, openlineage_transport="none")) is None
        True
        >>> sink_for(Settings(_env_file=None, openlineage_url="http://127.0.0.1:5000"))
        HttpSink(url='http://127.0.0.1:5000/api/v1/lineage', timeout_s=5.0)
    """
    transport = settings.openlineage_transport
    if transport == "auto":
        if settings.openlineage_url:
            transport = "http"
        else:
            transport = "file" if settings.warehouse == "duckdb" else "none"
    if transport == "none":
        return None
    if transport == "http":
        if not settings.openlineage_url:
            raise ConfigError("EDP_OPENLINEAGE_TRANSPORT=http needs EDP_OPENLINEAGE_URL")
        base = settings.openlineage_url.rstrip("/")
        return HttpSink(f"{base}/{settings.openlineage_endpoint.lstrip('/')}")
    path = settings.openlineage_file or settings.state_dir / "lineage" / "openlineage.jsonl"
    return FileSink(path)


@dataclass
class LineageEmitter:
    """Emits the START / COMPLETE / FAIL events of model runs to a sink, never raising."""

    sink: Sink | None
    namespace: str
    job_namespace: str
    pipeline: str = "daily_etl"

    @classmethod
    def from_settings(cls, settings: Settings, pipeline: str = "daily_etl") -> LineageEmitter:
        namespace = "bigquery" if settings.warehouse == "bigquery" else "duckdb"
        return cls(sink_for(settings), namespace, settings.project, pipeline)

    def emit(
        self,
        event_type: EventType,
        run_id: str,
        model: str,
        at: dt.datetime,
        *,
        sql: str | None = None,
        error: str | None = None,
    ) -> dict[str, Any] | None:
        """Build and send one event; returns it (None when there is no sink or it failed)."""
        if self.sink is None:
            return None
        try:
            event = run_event(
                event_type,
                run_uuid(run_id, model),
                model,
                at=at,
                namespace=self.namespace,
                job_namespace=self.job_namespace,
                pipeline=self.pipeline,
                sql=sql,
                error=error,
            )
            self.sink(event)
        except (EdpError, OSError, urllib.error.URLError, ValueError) as exc:
            log.warning("OpenLineage %s event of %s not sent: %s", event_type, model, exc)
            return None
        return event
