"""``EDP_METRICS_EXPORTER=none`` is off: OpenTelemetry's no-op meter, no SDK provider behind it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.metrics import NoOpMeter

from edp.observability import metrics as otel
from edp.settings import get_settings


@pytest.fixture
def metrics_off(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("EDP_METRICS_EXPORTER", "none")
    get_settings.cache_clear()
    otel.reset_for_tests()
    yield
    otel.reset_for_tests()
    get_settings.cache_clear()


def test_off_is_the_no_op_meter_and_builds_no_provider(metrics_off: None) -> None:
    meter = otel.get_meter("test")
    assert isinstance(meter, NoOpMeter)
    meter.create_counter("events_received_total").add(3, {"event_type": "page_view"})
    meter.create_histogram("request_latency_seconds").record(0.01)
    # nothing was built to aggregate them, and there is nothing to export or scrape
    assert otel._provider is None
    assert otel.prometheus_text() == b""
    assert otel.flush_metrics(force=True)
