"""OpenTelemetry instruments of the stream load (local loader; the Beam job uses Beam metrics).

- ``pipeline_rows_processed_total{pipeline, outcome}`` - rows by outcome: ``loaded``,
  ``duplicate`` (dropped by the event_id dedup), ``dead_letter``;
- ``pipeline_dead_letters_total{pipeline, error_type}`` - refused rows by failure type;
- ``data_freshness_seconds{pipeline}`` - histogram of ``loaded - ingested_at`` (server accepted
  the event -> queryable in raw), the figure the freshness SLA is about;
- ``pipeline_end_to_end_lag_seconds{pipeline}`` - histogram of ``loaded - event_timestamp``
  (the user's action -> queryable; includes client-side buffering).

Example:
    >>> LoadMetrics().record_batch(loaded=2, duplicates=1, dead_letters={"parse_error": 1},
    ...     freshness_s=[0.2, 0.3], lag_s=[1.0, 1.5])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edp.observability.metrics import get_meter

PIPELINE = "stream_load"


class LoadMetrics:
    """The loader's instruments (created once per loader)."""

    def __init__(self, pipeline: str = PIPELINE) -> None:
        meter = get_meter("edp.load")
        self._attrs = {"pipeline": pipeline}
        self._rows = meter.create_counter(
            "pipeline_rows_processed_total", unit="1", description="Rows by load outcome."
        )
        self._dead = meter.create_counter(
            "pipeline_dead_letters_total", unit="1", description="Rows refused by the loader."
        )
        self._freshness = meter.create_histogram(
            "data_freshness_seconds", unit="s", description="ingested_at -> loaded in raw."
        )
        self._lag = meter.create_histogram(
            "pipeline_end_to_end_lag_seconds",
            unit="s",
            description="event_timestamp -> loaded in raw.",
        )

    def record_batch(
        self,
        *,
        loaded: int,
        duplicates: int,
        dead_letters: Mapping[str, int],
        freshness_s: Sequence[float],
        lag_s: Sequence[float],
    ) -> None:
        """Record one committed batch."""
        attrs = self._attrs
        if loaded:
            self._rows.add(loaded, {**attrs, "outcome": "loaded"})
        if duplicates:
            self._rows.add(duplicates, {**attrs, "outcome": "duplicate"})
        for error_type, count in dead_letters.items():
            self._rows.add(count, {**attrs, "outcome": "dead_letter"})
            self._dead.add(count, {**attrs, "error_type": error_type})
        for value in freshness_s:
            self._freshness.record(value, attrs)
        for value in lag_s:
            self._lag.record(value, attrs)
