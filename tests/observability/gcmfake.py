"""An in-process stand-in of the Cloud Monitoring API (``google.monitoring.v3.MetricService``).

The approach is the one of the exporter's own test fixture,
GoogleCloudPlatform/opentelemetry-operations-python
``opentelemetry-exporter-gcp-monitoring/tests/fixtures/gcmfake.py`` (Apache-2.0, commit
28ec332): a ``grpc.GenericRpcHandler`` implementing ``CreateTimeSeries`` and
``CreateMetricDescriptor`` that records every request proto, served on loopback by a gRPC
server with a single-thread executor (requests are serialised). Instead of patching the
transport's ``create_channel`` as that fixture does, the platform's own setting
``EDP_METRICS_API_ENDPOINT`` points the real ``CloudMonitoringMetricsExporter`` at it, so the
code under test builds its client exactly as in GCP apart from the channel.

The stand-in also checks what the real API would refuse and the exporter would only log:
a time series whose metric labels differ from its descriptor's, and more than 200 series in one
``CreateTimeSeries`` call (https://cloud.google.com/monitoring/quotas: "Number of time series
per request: 200").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.api.metric_pb2 import MetricDescriptor
from google.cloud.monitoring_v3 import CreateMetricDescriptorRequest, CreateTimeSeriesRequest
from google.protobuf.empty_pb2 import Empty

SERVICE = "google.monitoring.v3.MetricService"
MAX_SERIES_PER_REQUEST = 200


@dataclass(frozen=True)
class Series:
    """One written time series, flattened for assertions."""

    metric_type: str
    metric_labels: dict[str, str]
    resource_type: str
    resource_labels: dict[str, str]
    metric_kind: str
    value_type: str


@dataclass
class Recorded:
    """Every request the stand-in answered."""

    descriptors: dict[str, Any] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def types(self) -> set[str]:
        return {s.metric_type for s in self.series}

    def of(self, metric_type: str) -> list[Series]:
        return [s for s in self.series if s.metric_type == metric_type]


class _Handler(grpc.GenericRpcHandler):  # type: ignore[misc]
    def __init__(self, recorded: Recorded) -> None:
        self.recorded = recorded
        self._lock = threading.Lock()
        self._wrapped = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "CreateTimeSeries": self._unary(
                    self._create_time_series,
                    CreateTimeSeriesRequest.deserialize,
                    Empty.SerializeToString,
                ),
                "CreateMetricDescriptor": self._unary(
                    self._create_descriptor,
                    CreateMetricDescriptorRequest.deserialize,
                    MetricDescriptor.SerializeToString,
                ),
            },
        )

    @staticmethod
    def _unary(
        impl: Callable[[Any, Any], Any], deserializer: Any, serializer: Any
    ) -> grpc.RpcMethodHandler:
        return grpc.unary_unary_rpc_method_handler(
            impl, request_deserializer=deserializer, response_serializer=serializer
        )

    def _create_descriptor(self, request: Any, context: Any) -> Any:
        descriptor = CreateMetricDescriptorRequest.pb(request).metric_descriptor
        with self._lock:
            self.recorded.descriptors[descriptor.type] = descriptor
        return descriptor

    def _create_time_series(self, request: Any, context: Any) -> Empty:
        pb = CreateTimeSeriesRequest.pb(request)
        with self._lock:
            if len(pb.time_series) > MAX_SERIES_PER_REQUEST:
                self.recorded.errors.append(f"{len(pb.time_series)} series in one request")
            for ts in pb.time_series:
                series = Series(
                    metric_type=ts.metric.type,
                    metric_labels=dict(ts.metric.labels),
                    resource_type=ts.resource.type,
                    resource_labels=dict(ts.resource.labels),
                    metric_kind=MetricDescriptor.MetricKind.Name(ts.metric_kind),
                    value_type=MetricDescriptor.ValueType.Name(ts.value_type)
                    if ts.value_type
                    else _value_type(ts),
                )
                declared = self.recorded.descriptors.get(ts.metric.type)
                if declared is None:
                    self.recorded.errors.append(f"{ts.metric.type}: no descriptor created first")
                else:
                    keys = {label.key for label in declared.labels}
                    if not set(series.metric_labels) <= keys:
                        self.recorded.errors.append(
                            f"{ts.metric.type}: labels {sorted(series.metric_labels)} "
                            f"not in descriptor {sorted(keys)}"
                        )
                self.recorded.series.append(series)
        return Empty()

    def service(self, handler_call_details: Any) -> Any:
        return self._wrapped.service(handler_call_details)


def _value_type(ts: Any) -> str:
    """The point's value type (the exporter leaves ``TimeSeries.value_type`` unset)."""
    kind = ts.points[0].value.WhichOneof("value") if ts.points else None
    return {
        "int64_value": "INT64",
        "double_value": "DOUBLE",
        "distribution_value": "DISTRIBUTION",
        "bool_value": "BOOL",
    }.get(kind or "", "VALUE_TYPE_UNSPECIFIED")


class FakeMetricService:
    """Serve the stand-in on ``127.0.0.1:<free port>``; ``endpoint`` is what settings take."""

    def __init__(self) -> None:
        self.recorded = Recorded()
        self._executor = ThreadPoolExecutor(1)
        self._server = grpc.server(self._executor, handlers=[_Handler(self.recorded)])
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> FakeMetricService:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(None)
        self._executor.shutdown(wait=True)
