"""Scheduled functions export before answering, but never twice within Cloud Monitoring's
minimum sampling period of a series (5 s: "One or more points were written more frequently than
the maximum sampling period", https://cloud.google.com/monitoring/quotas)."""

from __future__ import annotations

import pytest

from edp.observability import metrics as otel
from edp.observability.catalogue import instrument

from .recording import cloud_monitoring


def test_a_second_flush_within_the_sampling_period_is_skipped_unless_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with cloud_monitoring(monkeypatch) as fake:
        runs = instrument(otel.get_meter("test"), "pipeline_runs_total")
        labels = {"pipeline": "etl", "task": "t", "status": "success"}
        runs.add(1, labels)
        otel.flush_metrics()
        runs.add(1, labels)
        otel.flush_metrics()  # 0 s later: skipped
        assert len(fake.recorded.of("workload.googleapis.com/pipeline_runs_total")) == 1
        otel.flush_metrics(force=True)
        assert len(fake.recorded.of("workload.googleapis.com/pipeline_runs_total")) == 2
