"""OpenTelemetry metrics: one meter provider per process, exported where settings say.

Locally the metrics are exposed as Prometheus text (``prometheus_text()``, served at
``/metrics`` by the local servers and the GKE collector); in GCP the Cloud Run functions send
them to Cloud Monitoring through the OTel Cloud Monitoring exporter. Instruments are created
through :func:`edp.observability.catalogue.instrument`, so every name, unit and label set is the
one declared (and documented) in the catalogue.

Each process carries its own OTel resource (``service.name`` = the Cloud Run service or
``OTEL_SERVICE_NAME``, ``service.instance.id`` unique per process): the exporter maps it to the
``generic_task`` monitored resource, so two instances (or two gunicorn workers) write two
series that a query sums, instead of overwriting one cumulative series with the other's totals.

Example:
    >>> counter = get_meter("edp.example").create_counter("example_total")
    >>> counter.add(1, {"result": "ok"})
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from typing import Any

from opentelemetry import metrics
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource

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
_NO_OP = metrics.NoOpMeterProvider()
_prometheus_reader: Any = None


def process_resource(settings: Settings) -> Resource:
    """The OTel resource of this process (``generic_task`` in Cloud Monitoring).

    ``job`` is ``settings.service_name`` (the Cloud Run service, ``K_SERVICE``); ``task_id``
    is unique per process so concurrent writers never share a series.

    Example:
        >>> from edp.settings import Settings
        >>> r = process_resource(Settings(_env_file=None))
        >>> r.attributes["service.namespace"], r.attributes["cloud.region"]
        ('edp', 'asia-northeast3')
    """
    instance = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return Resource.create(
        {
            "service.name": settings.service_name,
            "service.namespace": "edp",
            "service.instance.id": instance,
            "cloud.region": settings.region,
        }
    )


def _monitoring_client(settings: Settings) -> Any:
    """A MetricServiceClient; against the loopback stand-in when one is configured."""
    if settings.metrics_api_endpoint is None:
        return None  # the exporter builds its default client (ADC, monitoring.googleapis.com)
    import grpc
    from google.cloud.monitoring_v3 import MetricServiceClient
    from google.cloud.monitoring_v3.services.metric_service.transports import (
        MetricServiceGrpcTransport,
    )

    channel = grpc.insecure_channel(settings.metrics_api_endpoint)
    return MetricServiceClient(transport=MetricServiceGrpcTransport(channel=channel))


def _catalogue_named_reader() -> MetricReader:
    """A Prometheus reader whose series are named exactly as the catalogue (and Cloud Monitoring).

    The OpenTelemetry Prometheus exporter appends the unit to a name that does not end with it
    (``bigquery_bytes_processed_total``, unit ``By``, would be exposed as
    ``bigquery_bytes_processed_bytes_total``), so the same query would read different names
    locally and in GCP. The catalogue's names already say their unit; the unit stays in the
    catalogue and in Cloud Monitoring's metric descriptors.
    """
    from dataclasses import replace

    from opentelemetry.exporter.prometheus import PrometheusMetricReader
    from opentelemetry.sdk.metrics.export import MetricsData

    class CatalogueNamedReader(PrometheusMetricReader):
        def _receive_metrics(
            self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
        ) -> None:
            if metrics_data is not None:
                metrics_data = replace(
                    metrics_data,
                    resource_metrics=[
                        replace(rm, scope_metrics=[
                            replace(sm, metrics=[replace(m, unit="") for m in sm.metrics])
                            for sm in rm.scope_metrics
                        ])
                        for rm in metrics_data.resource_metrics
                    ],
                )  # fmt: skip
            super()._receive_metrics(metrics_data, timeout_millis, **kwargs)

    return CatalogueNamedReader()


def _build_provider() -> MeterProvider:
    global _prometheus_reader  # noqa: PLW0603 - lazy process-wide singleton
    settings = get_settings()
    readers: list[MetricReader] = []
    if settings.metrics_exporter == "prometheus":
        _prometheus_reader = _catalogue_named_reader()
        readers.append(_prometheus_reader)
    elif settings.metrics_exporter == "cloud_monitoring":
        from opentelemetry.exporter.cloud_monitoring import CloudMonitoringMetricsExporter

        readers.append(
            PeriodicExportingMetricReader(
                CloudMonitoringMetricsExporter(
                    project_id=settings.project, client=_monitoring_client(settings)
                ),
                export_interval_millis=settings.metrics_export_interval_sec * 1000,
            )
        )
    views = [
        View(
            instrument_name="*_seconds",
            aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS_S),
        )
    ]
    return MeterProvider(
        metric_readers=readers,
        views=views,
        resource=process_resource(settings),
        shutdown_on_exit=settings.metrics_exporter != "cloud_monitoring",
    )


def get_meter(name: str) -> Meter:
    """A meter from the process-wide provider (created on first use, never at import).

    With ``metrics_exporter=none`` it is OpenTelemetry's no-op meter: its instruments record
    nothing. (An SDK provider without a reader still aggregated every point, two histogram
    points per ingest request, for nobody.)
    """
    global _provider  # noqa: PLW0603 - lazy process-wide singleton
    if get_settings().metrics_exporter == "none":
        return _NO_OP.get_meter(name)
    with _lock:
        if _provider is None:
            _provider = _build_provider()
            metrics.set_meter_provider(_provider)
    return _provider.get_meter(name)


#: Cloud Monitoring refuses a point written less than 5 s after the previous one of a series.
MIN_FLUSH_INTERVAL_S = 5.5
_last_flush = -MIN_FLUSH_INTERVAL_S


def flush_metrics(timeout_s: float = 10.0, *, force: bool = False) -> bool:
    """Export what was recorded now (no-op for Prometheus, which is pulled).

    Scheduled Cloud Run functions call it before answering: CPU is only allocated during a
    request, so the periodic export thread may not run again before the instance is frozen or
    stopped. A flush within 5.5 s of the previous one is skipped (Cloud Monitoring would refuse
    the points, e.g. when the workflow calls etl for several models at once): cumulative values
    are not lost, they go out with the next flush or periodic export. ``force`` exports
    regardless (as the periodic reader does at its own pace).
    """
    global _last_flush  # noqa: PLW0603 - process-wide rate limit
    with _lock:
        provider = _provider
        now = time.monotonic()
        if provider is None or (not force and now - _last_flush < MIN_FLUSH_INTERVAL_S):
            return True
        _last_flush = now
    return bool(provider.force_flush(timeout_millis=int(timeout_s * 1000)))


def reset_for_tests() -> None:
    """Shut the provider down so the next :func:`get_meter` reads the settings again.

    Instruments cached by components (e.g. ``ingest_metrics``) must be cleared by the caller.
    """
    global _provider, _prometheus_reader, _last_flush  # noqa: PLW0603 - lazy singleton
    with _lock:
        provider, _provider = _provider, None
        _prometheus_reader = None
        _last_flush = -MIN_FLUSH_INTERVAL_S
    if provider is not None:
        provider.shutdown()  # the Prometheus reader unregisters its collector here


def prometheus_text() -> bytes:
    """Current metrics in Prometheus exposition format (empty unless exporter=prometheus).

    Under the collector's gunicorn the multiprocess series (every worker's, summed) come
    first, then this process's OpenTelemetry ones.
    """
    from edp.observability import multiprocess

    get_meter("edp")
    shared = multiprocess.exposition() if multiprocess.enabled() else b""
    if _prometheus_reader is None:
        return shared
    from prometheus_client import REGISTRY, generate_latest

    return shared + bytes(generate_latest(REGISTRY))
