"""Stream load: events from the ``events`` topic into the append-only ``raw.user_events``.

- :mod:`edp.load.transforms` - pure parse / validate / normalise / Arrow steps shared by every
  runner (the Beam job in ``beam/`` imports them too), over :mod:`edp.load.values` (one JSON
  value to what its column stores) and :mod:`edp.load.dedup` (repeats of an ``event_id``);
- :mod:`edp_tools.load.local_loader` (tooling) - the fast laptop loader (synchronous pull with
  threads from the Pub/Sub emulator, Arrow batches into DuckDB, ack after the write);
- :mod:`edp.load.metrics` - the loader's OpenTelemetry instruments.
"""
