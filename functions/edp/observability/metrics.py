"""OpenTelemetry metrics: one meter provider per process, exported where settings say.

Locally the metrics are exposed as Prometheus text (``prometheus_text()``, served at
``/metrics`` by the local servers); in GCP they go to Cloud Monitoring through the OTel Cloud
Monitoring exporter. Code only ever asks for a meter and creates instruments with the names of
the platform's metric list (``events_received_total``, ``request_latency_seconds``, ...).

Example:
    >>> counter = get_meter("edp.example").create_counter("example_total")
    >>> counter.add(1, {"result": "ok"})
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View

from edp.settings import Settings, get_settings

# Latency histograms in seconds: fine buckets below 50 ms (the ingest P99 target) and up to the
# 30-minute freshness SLA.
# fmt: off
LATENCY_BUCKETS_S = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.025, 0.035, 0.05, 0.075, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)
# fmt: on

_lock = threading.Lock()
_provider: MeterProvider | None = None
_prometheus_reader: Any = None


def _build_provider() -> MeterProvider:
    global _prometheus_reader  # noqa: PLW0603 - lazy process-wide singleton
    settings = get_settings()
    readers: list[MetricReader] = []
    if settings.metrics_exporter == "prometheus":
        from opentelemetry.exporter.prometheus import PrometheusMetricReader

        _prometheus_reader = PrometheusMetricReader()
        readers.append(_prometheus_reader)
    elif settings.metrics_exporter == "cloud_monitoring":
        from opentelemetry.exporter.cloud_monitoring import CloudMonitoringMetricsExporter

        readers.append(
            PeriodicExportingMetricReader(
                CloudMonitoringMetricsExporter(
                    project_id=settings.project, client=_monitoring_client(settings)
                ),
                export_interval_millis=60_000,
            )
        )
    views = [
        View(
            instrument_name="*_seconds",
            aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_S),
        )
    ]
    return MeterProvider(metric_readers=readers, views=views)


def _monitoring_client(settings: Settings) -> Any:
    """The Monitoring API client: Google's endpoint (the exporter's default) unless overridden.

    ``EDP_MONITORING_API_ENDPOINT`` (host:port, plaintext gRPC, no credentials) points the real
    exporter at a local stand-in of the Monitoring API: the deploy-shaped tests use it to record
    what the production path writes.
    """
    if not settings.monitoring_api_endpoint:
        return None
    import grpc
    from google.cloud.monitoring_v3 import MetricServiceClient
    from google.cloud.monitoring_v3.services.metric_service.transports import (
        MetricServiceGrpcTransport,
    )

    channel = grpc.insecure_channel(settings.monitoring_api_endpoint)
    return MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))


def get_meter(name: str) -> Meter:
    """A meter from the process-wide provider (created on first use, never at import)."""
    global _provider  # noqa: PLW0603 - lazy process-wide singleton
    with _lock:
        if _provider is None:
            _provider = _build_provider()
            metrics.set_meter_provider(_provider)
    return _provider.get_meter(name)


def prometheus_text() -> bytes:
    """Current metrics in Prometheus exposition format (empty unless exporter=prometheus)."""
    get_meter("edp")
    if _prometheus_reader is None:
        return b""
    from prometheus_client import REGISTRY, generate_latest

    return bytes(generate_latest(REGISTRY))
