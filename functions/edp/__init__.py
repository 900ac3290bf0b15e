"""E-commerce real-time data platform: the production package.

What Cloud Run functions (``functions/main.py``), the GKE event collector and the Beam job run;
the archive Terraform deploys holds this package and nothing else of the repository's Python.
Laptop tooling (the ``edp`` CLI, local stack, demo, benchmarks, generator, local CDC reader and
loader, DuckDB adapter) lives in :mod:`edp_tools` and is never imported from here.

Sub-packages, one concept each:

- ``edp.contracts``     the schema catalogue compiled from ``schemas/`` (tables, event contract,
                        Debezium envelope) and the models derived from it.
- ``edp.warehouse``     the warehouse port and its BigQuery adapter (DuckDB: a plugin).
- ``edp.bus``           Pub/Sub publisher / subscriber helpers and the topology.
- ``edp.ingest``        the event ingest API (Cloud Run function and GKE collector).
- ``edp.load``          stream-load transforms shared by the Beam job and the local loader.
- ``edp.cdc``           the CDC flush (Debezium messages -> raw.cdc_*) and staging refresh.
- ``edp.etl``           the daily ETL models and their runner.
- ``edp.observability`` OpenTelemetry metrics (Prometheus locally, Cloud Monitoring in GCP).
"""

from __future__ import annotations

__version__ = "0.1.0"
