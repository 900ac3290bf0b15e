"""The Beam dedup measured on FnApiRunner; runs **inside the Beam venv** (``.nox/beam``).

``python -m edp_tools.bench._beam_dedup 1000 10000`` prints one JSON object of figures. The
:mod:`edp_tools.bench.beam` group starts it as a subprocess (apache-beam cannot share the main
venv). Workload per size N: N event_ids, 5 % of them sent twice, every row in one 60 s window,
one dedup shard (the most a single key ever holds); figure = rows / wall time of the whole
pipeline run (source, windowing, dedup, count), after a warm-up run in the same process (Beam
imports its runner modules lazily on the first run); best of 3 runs for the current dedup, one
run for the slow ones.

Three dedups on the same rows:

- ``current``: :class:`edp_stream_load.transforms.DedupByEventId` (rows batched per shard and
  window, chunked id state, in-memory index);
- ``baseline``: the design it replaced, kept here verbatim as the reference - a ``SetState`` of
  ids per (shard, window), read whole for every row;
- ``per_event_id``: Beam's own ``DeduplicatePerKey`` keyed by event_id (one state cell and one
  timer per id): linear, but each state access pays the Python SDK state cache's sizing.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

WINDOW_S = 60
DUPLICATE_RATE = 0.05
LATENESS_S = 600
PUBLISHED_S = 1_767_225_601  # every row's publish time: one window
REPEATS = 3


def rows_for(ids: int) -> list[dict[str, Any]]:
    """``ids`` distinct events plus 5 % repeats, raw-row sized (a JSON ``params`` text).

    >>> rows = rows_for(100)
    >>> len(rows), len({r["event_id"] for r in rows})
    (105, 100)
    """
    total = int(ids * (1 + DUPLICATE_RATE))
    params = json.dumps({"page": "/p/" + "x" * 150})
    return [
        {"event_id": f"00000000-0000-4000-8000-{i % ids:012d}", "event_type": "page_view",
         "params": params}
        for i in range(total)
    ]  # fmt: skip


def _baseline_transform(shards: int) -> Any:
    """The replaced dedup: SetState of ids per (shard, window) - a bag re-read for every row."""
    import zlib

    import apache_beam as beam
    from apache_beam.coders import StrUtf8Coder
    from apache_beam.transforms.timeutil import TimeDomain
    from apache_beam.transforms.userstate import SetStateSpec, TimerSpec, on_timer
    from apache_beam.utils.timestamp import Duration

    seen_spec = SetStateSpec("seen", StrUtf8Coder())
    gc_spec = TimerSpec("gc", TimeDomain.WATERMARK)
    seen_param = beam.DoFn.StateParam(seen_spec)
    gc_param = beam.DoFn.TimerParam(gc_spec)

    class DedupFn(beam.DoFn):  # type: ignore[misc]
        def process(
            self,
            element: Any,
            win: Any = beam.DoFn.WindowParam,
            seen: Any = seen_param,
            gc: Any = gc_param,
        ) -> Iterator[Any]:
            _, row = element
            gc.set(win.max_timestamp() + Duration(seconds=LATENESS_S))
            if row["event_id"] in seen.read():
                return
            seen.add(row["event_id"])
            yield row

        @on_timer(gc_spec)  # type: ignore[untyped-decorator]
        def expire(self, seen: Any = seen_param) -> None:
            seen.clear()

    return beam.Map(lambda r: (zlib.crc32(r["event_id"].encode()) % shards, r)) | beam.ParDo(
        DedupFn()
    )


def _per_event_id_transform() -> Any:
    import apache_beam as beam
    from apache_beam.transforms.deduplicate import DeduplicatePerKey
    from apache_beam.utils.timestamp import Duration

    return (
        beam.Map(lambda r: (r["event_id"], r))
        | DeduplicatePerKey(event_time_duration=Duration(seconds=WINDOW_S + LATENESS_S))
        | beam.Values()
    )


def _current_transform() -> Any:
    from edp_stream_load.transforms import DedupByEventId

    return DedupByEventId(shards=1, allowed_lateness_s=LATENESS_S)


TRANSFORMS: dict[str, Callable[[], Any]] = {
    "current": _current_transform,
    "baseline": lambda: _baseline_transform(shards=1),
    "per_event_id": _per_event_id_transform,
}


def run_once(kind: str, ids: int) -> tuple[float, int]:
    """(rows per second, rows kept) of one FnApiRunner run of dedup ``kind`` over ``ids``."""
    import apache_beam as beam
    from apache_beam.metrics import Metrics
    from apache_beam.metrics.metric import MetricsFilter
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.transforms import window

    kept = Metrics.counter("bench", "kept")
    total = int(ids * (1 + DUPLICATE_RATE))
    started = time.perf_counter()
    p = beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    (
        p
        | beam.Create([ids])
        # Rows are made inside the pipeline: a list captured by a lambda would be type-inferred
        # element by element at construction and dominate the figure.
        | "Rows"
        >> beam.FlatMap(lambda n: (window.TimestampedValue(r, PUBLISHED_S) for r in rows_for(n)))
        | beam.WindowInto(window.FixedWindows(WINDOW_S))
        | kind >> TRANSFORMS[kind]()
        | beam.Map(lambda _: kept.inc())
    )
    result = p.run()
    result.wait_until_finish()
    elapsed = time.perf_counter() - started
    counters = result.metrics().query(MetricsFilter().with_name("kept"))["counters"]
    return total / elapsed, sum(c.committed for c in counters)


def measure(sizes: Sequence[int], kinds: Sequence[str]) -> dict[str, float]:
    """Figures ``beam.dedup.<kind>_events_per_s_<size>`` (current: ``events_per_s_<size>``)."""
    for kind in kinds:
        run_once(kind, 50)  # warm-up: lazy imports, runner start
    figures: dict[str, float] = {}
    for size in sizes:
        for kind in kinds:
            # Best of a few runs: the machine is shared, and the best run is the one least
            # disturbed by others. The slow designs run once (each run takes minutes).
            runs = [run_once(kind, size) for _ in range(REPEATS if kind == "current" else 1)]
            rate = max(r for r, _ in runs)
            kept = {k for _, k in runs}
            if kept != {size}:
                raise RuntimeError(f"{kind} kept {kept} rows of {size} distinct event_ids")
            label = f"{size // 1000}k"
            prefix = "" if kind == "current" else f"{kind}_"
            figures[f"beam.dedup.{prefix}events_per_s_{label}"] = round(rate, 1)
    return figures


def main(argv: Sequence[str]) -> None:
    """``[--kinds a,b] size...``: print the figures as JSON."""
    args = list(argv)
    kinds = list(TRANSFORMS)
    if args and args[0] == "--kinds":
        kinds = args[1].split(",")
        args = args[2:]
    pairs = [a.split(":") for a in args]  # "10000" or "10000:current,baseline"
    figures: dict[str, float] = {}
    for pair in pairs:
        size_kinds = pair[1].split(",") if len(pair) > 1 else kinds
        figures.update(measure([int(pair[0])], size_kinds))
    print(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1:])
