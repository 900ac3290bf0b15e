"""OpenTelemetry instruments of the stream load (local loader; the Beam job uses Beam metrics).

- ``load_rows_total{pipeline, outcome}`` - rows by outcome: ``loaded``, ``duplicate``
  (dropped by the event_id dedup), ``dead_letter``;
- ``load_dead_letters_total{pipeline, error_type}`` - refused rows by failure type;
- ``load_freshness_seconds{pipeline}`` - histogram of ``loaded - ingested_at`` (server accepted
  the event -> queryable in raw), the loader's share of the freshness SLA;
- ``load_end_to_end_lag_seconds{pipeline}`` - histogram of ``loaded - event_timestamp``
  (the user's action -> queryable; includes client-side buffering).

The alerting figure, ``data_freshness_minutes{table}``, comes from the deployed freshness probe
(:mod:`edp.etl.freshness`), which sees a stopped loader as well as a slow one.

Example:
    >>> LoadMetrics().record_batch(loaded=2, duplicates=1, dead_letters={"parse_error": 1},
    ...     freshness_s=[0.2, 0.3], lag_s=[1.0, 1.5])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from edp.observability.catalogue import instrument
from edp.observability.metrics import get_meter

PIPELINE = "stream_load"


class LoadMetrics:
    """The loader's instruments (created once per loader)."""

    def __init__(self, pipeline: str = PIPELINE) -> None:
        meter = get_meter("edp.load")
        self._attrs = {"pipeline": pipeline}
        self._rows = instrument(meter, "load_rows_total")
        self._dead = instrument(meter, "load_dead_letters_total")
        self._freshness = instrument(meter, "load_freshness_seconds")
        self._lag = instrument(meter, "load_end_to_end_lag_seconds")

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
