"""E-commerce real-time data platform: one package shared by every Cloud Run function,
the Beam job and the `edp` CLI.

Sub-packages, one concept each:

- ``edp.contracts``     the schema catalogue compiled from ``schemas/`` (tables, event contract,
                        Debezium envelope) and everything derived from it.
- ``edp.warehouse``     the warehouse port and its DuckDB / BigQuery adapters.
- ``edp.bus``           Pub/Sub publisher / subscriber helpers.
- ``edp.observability`` OpenTelemetry metrics (Prometheus locally, Cloud Monitoring in GCP).
- ``edp.local``         the laptop stack: Pub/Sub emulator, throwaway PostgreSQL, served functions.
- ``edp.cli``           the ``edp`` command.
"""

from __future__ import annotations

__version__ = "0.1.0"
