"""The job's PTransforms on Beam's local runners: TestStream with late and duplicate data,
windows, early/on-time/late panes, the dead-letter branch and the counters."""

from __future__ import annotations

import random
from typing import Any

import apache_beam as beam
import orjson
import pytest
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.testing import test_pipeline, test_stream
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import TimestampedValue
from apache_beam.utils.timestamp import Timestamp
from edp_stream_load.options import REPLAY_HORIZON_S, StreamLoadOptions
from edp_stream_load.pipeline import LoadEvents
from edp_stream_load.transforms import (
    DEAD_LETTERS,
    FirstPerEventIdFn,
    MicroBatch,
    ParseEvents,
)

from edp.load.samples import enriched_event, invalid_line

WINDOW_S = 60
LATENESS_S = 600
BASE = 1_767_225_600  # 2026-01-01T00:00:00Z, window-aligned


def _id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _message(*event_numbers: int, message_id: str | None = None) -> PubsubMessage:
    rng = random.Random(0)
    body = b"\n".join(orjson.dumps(enriched_event(rng, _id(n))) for n in event_numbers)
    return PubsubMessage(body, {"event_count": str(len(event_numbers))}, message_id or "m")


def _at(offset_s: float, *event_numbers: int) -> TimestampedValue:
    return TimestampedValue(
        _message(*event_numbers, message_id=f"m{event_numbers}"), BASE + offset_s
    )


def _options(**flags: Any) -> StreamLoadOptions:
    argv = [
        "--subscription=projects/p/subscriptions/s",
        f"--window_seconds={WINDOW_S}",
        f"--allowed_lateness_seconds={LATENESS_S}",
        "--early_firing_seconds=5",
        "--dedup_shards=4",
    ] + [f"--{k}={v}" for k, v in flags.items()]
    return PipelineOptions(argv).view_as(StreamLoadOptions)


def _streaming_pipeline() -> test_pipeline.TestPipeline:
    options = PipelineOptions(["--runner=BundleBasedDirectRunner"])
    options.view_as(StandardOptions).streaming = True
    return test_pipeline.TestPipeline(options=options)


class _PaneOf(beam.DoFn):
    """(sorted event ids of a micro-batch, pane timing) - what a sink would write when."""

    def process(self, batch: list[dict[str, Any]], pane: Any = beam.DoFn.PaneInfoParam) -> Any:
        yield (tuple(sorted(r["event_id"] for r in batch)), pane.timing)


def _event_ids(rows: beam.PCollection, label: str) -> beam.PCollection:
    return rows | label >> beam.Map(lambda row: row["event_id"])


EARLY, ON_TIME, LATE = 0, 1, 2  # apache_beam.utils.windowed_value.PaneInfoTiming


def test_parse_splits_rows_and_typed_dead_letters() -> None:
    rng = random.Random(1)
    body = b"\n".join(
        [
            orjson.dumps(enriched_event(rng, _id(1))),
            invalid_line(rng, _id(2), "broken_json"),
            invalid_line(rng, _id(3), "unknown_event_type"),
            orjson.dumps(enriched_event(rng, _id(4))),
        ]
    )
    options = PipelineOptions(["--runner=FnApiRunner"])
    with test_pipeline.TestPipeline(options=options) as p:
        parsed = p | beam.Create([PubsubMessage(body, {}, "msg-1", None)]) | ParseEvents()
        assert_that(_event_ids(parsed.rows, "Ids"), equal_to([_id(1), _id(4)]), label="Rows")
        assert_that(
            parsed[DEAD_LETTERS]
            | beam.Map(lambda d: (d["error_id"], d["error_type"], d["stage"], bool(d["reason"]))),
            equal_to(
                [
                    ("msg-1:1", "parse_error", "parse", True),
                    ("msg-1:2", "schema_violation", "validate", True),
                ]
            ),
            label="DeadLetters",
        )


def test_duplicates_in_a_window_are_dropped() -> None:
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE)
        .add_elements([_at(1, 1, 2), _at(2, 2, 3), _at(3, 1)])  # 1 and 2 repeat
        .add_elements([_at(30, 3, 4)])  # 3 repeats
        .advance_watermark_to_infinity()
    )
    with _streaming_pipeline() as p:
        loaded = p | stream | LoadEvents(_options())
        assert_that(_event_ids(loaded.rows, "Ids"), equal_to([_id(n) for n in (1, 2, 3, 4)]))


def test_duplicates_are_counted_in_batch_mode_too() -> None:
    # Counters are checked on FnApiRunner: the streaming direct runner does not always merge the
    # last bundle's counters before the result reports them.
    p = test_pipeline.TestPipeline(options=PipelineOptions(["--runner=FnApiRunner"]))
    messages = p | beam.Create([_at(1, 1, 2), _at(2, 2, 3), _at(3, 1), _at(30, 3, 4)])
    loaded = messages | LoadEvents(_options())
    assert_that(_event_ids(loaded.rows, "Ids"), equal_to([_id(n) for n in (1, 2, 3, 4)]))
    result = p.run()
    result.wait_until_finish()
    duplicates = result.metrics().query(MetricsFilter().with_name("duplicates"))["counters"]
    assert sum(c.committed for c in duplicates) == 3


def test_dedup_horizon_is_the_window_a_repeat_in_a_later_window_passes() -> None:
    # The bounded horizon: state lives for one window (+ lateness). A repeat in the next window
    # reaches raw, where staging's ROW_NUMBER dedup removes it.
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE)
        .add_elements([_at(10, 1)])
        .advance_watermark_to(BASE + WINDOW_S + 1)
        .add_elements([_at(WINDOW_S + 10, 1)])
        .advance_watermark_to_infinity()
    )
    with _streaming_pipeline() as p:
        loaded = p | stream | LoadEvents(_options())
        assert_that(_event_ids(loaded.rows, "Ids"), equal_to([_id(1), _id(1)]))


def test_early_on_time_and_late_panes_and_data_beyond_lateness_dropped() -> None:
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE)
        .add_elements([_at(10, 1)])
        .advance_processing_time(6)  # early trigger (AfterProcessingTime 5 s) fires
        .add_elements([_at(20, 2), _at(21, 2)])  # + a duplicate
        .advance_watermark_to(BASE + WINDOW_S + 1)  # window [0, 60) closes: on-time pane
        .add_elements([_at(30, 3), _at(31, 1)])  # late but within lateness; 1 is a repeat
        .advance_watermark_to(BASE + WINDOW_S + LATENESS_S + 5)  # past the allowed lateness
        .add_elements([_at(40, 4)])  # too late: dropped
        .advance_watermark_to_infinity()
    )
    with _streaming_pipeline() as p:
        loaded = p | stream | LoadEvents(_options())
        panes = loaded.rows | MicroBatch(shards=1) | beam.ParDo(_PaneOf())
        assert_that(
            panes,
            equal_to([((_id(1),), EARLY), ((_id(2),), ON_TIME), ((_id(3),), LATE)]),
        )


def test_windows_split_by_publish_time() -> None:
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE)
        .add_elements([_at(5, 1), _at(65, 2), _at(125, 3), _at(126, 4)])
        .advance_watermark_to_infinity()
    )
    with _streaming_pipeline() as p:
        loaded = p | stream | LoadEvents(_options())
        windows = loaded.rows | MicroBatch(shards=1) | beam.ParDo(_WindowStart())
        assert_that(
            windows,
            equal_to([(BASE, (_id(1),)), (BASE + 60, (_id(2),)), (BASE + 120, (_id(3), _id(4)))]),
        )


class _WindowStart(beam.DoFn):
    def process(self, batch: list[dict[str, Any]], win: Any = beam.DoFn.WindowParam) -> Any:
        yield (int(win.start), tuple(sorted(r["event_id"] for r in batch)))


def test_dead_letters_are_windowed_and_counted() -> None:
    rng = random.Random(2)
    bad = PubsubMessage(invalid_line(rng, _id(9), "bad_timestamp") + b"\n{", {}, "bad-1", None)
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE)
        .add_elements([TimestampedValue(bad, BASE + 1), _at(2, 1)])
        .advance_watermark_to_infinity()
    )
    p = _streaming_pipeline()
    loaded = p | stream | LoadEvents(_options())
    assert_that(
        loaded.dead_letters
        | MicroBatch(shards=1)
        | beam.Map(lambda b: sorted(r["error_id"] for r in b)),
        equal_to([["bad-1:0", "bad-1:1"]]),
        label="DeadLetterBatches",
    )
    assert_that(_event_ids(loaded.rows, "Ids"), equal_to([_id(1)]), label="Rows")
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["dead_letters"] == 2
    assert counters["dead_letters_schema_violation"] == 1
    assert counters["dead_letters_parse_error"] == 1
    assert counters["messages"] == 2
    assert counters["pipeline_rows_processed_total"] == 1


def test_publish_time_falls_back_to_element_timestamp() -> None:
    from edp_stream_load.transforms import to_envelope

    message = PubsubMessage(b"{}", {}, None, None)
    envelope = to_envelope(message, Timestamp(BASE))
    assert envelope.publish_time_us == BASE * 1_000_000
    assert envelope.message_id.startswith("crc32:")
    assert to_envelope(message, Timestamp(BASE)).message_id == envelope.message_id


@pytest.mark.parametrize("shards", [1, 3, 64])
def test_shard_is_stable_and_in_range(shards: int) -> None:
    from edp_stream_load.transforms import shard_of

    values = {shard_of(_id(n), shards) for n in range(500)}
    assert values <= set(range(shards))
    assert shard_of(_id(7), shards) == shard_of(_id(7), shards)
    if shards > 1:
        assert len(values) > 1


DAY_S = 24 * 3600


def _written_ids(rows: beam.PCollection) -> beam.PCollection:
    # Through MicroBatch (the sink's GroupByKey), where a runner drops data beyond the lateness.
    return rows | MicroBatch(shards=2) | beam.FlatMap(lambda batch: [r["event_id"] for r in batch])


def test_replay_with_old_publish_times_is_loaded_exactly_once() -> None:
    # A Pub/Sub seek back two days redelivers messages with their original publish times, two
    # days behind the watermark: the ones already loaded are dropped as duplicates, the one that
    # never made it (5) is loaded once, a repeat inside the replay too - within the 7-day horizon.
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE)
        .add_elements([_at(10, 1, 2), _at(70, 3)])
        .advance_watermark_to(BASE + 2 * DAY_S)  # two days of live traffic later
        .add_elements([_at(2 * DAY_S, 4)])
        .add_elements([_at(10, 1, 2), _at(11, 5), _at(70, 3), _at(12, 5)])  # the replay
        .advance_watermark_to_infinity()
    )
    with _streaming_pipeline() as p:
        options = _options(allowed_lateness_seconds=REPLAY_HORIZON_S)
        loaded = p | stream | LoadEvents(options)
        assert_that(_written_ids(loaded.rows), equal_to([_id(n) for n in (1, 2, 3, 4, 5)]))


def test_the_old_ten_minute_lateness_would_have_lost_the_replay() -> None:
    # The same replay with 600 s of allowed lateness: the runner drops the old rows silently.
    stream = (
        test_stream.TestStream()
        .advance_watermark_to(BASE)
        .add_elements([_at(10, 1)])
        .advance_watermark_to(BASE + 2 * DAY_S)
        .add_elements([_at(11, 5)])
        .advance_watermark_to_infinity()
    )
    with _streaming_pipeline() as p:
        loaded = p | stream | LoadEvents(_options(allowed_lateness_seconds=600))
        assert_that(_written_ids(loaded.rows), equal_to([_id(1)]))


def test_the_replay_horizon_is_the_topic_retention() -> None:
    # terraform/variables.tf: var.pubsub.message_retention = "604800s" (7 days) on the topic.
    assert REPLAY_HORIZON_S == 604_800
    assert PipelineOptions([]).view_as(StreamLoadOptions).allowed_lateness_seconds == 604_800


def test_dedup_index_is_rebuilt_from_state_by_a_fresh_worker() -> None:
    # A key moved to another worker: its DoFn has no index, the state has two chunks.
    fn = FirstPerEventIdFn(allowed_lateness_s=60)
    fn.setup()
    index = fn._index((3, "w"), [b"a\nb", b"c"])
    assert index.ids == {"a", "b", "c"} and index.chunks == 2
    # Same number of chunks: the in-memory index is reused as is.
    index.ids.add("d")
    assert fn._index((3, "w"), [b"a\nb", b"c"]).ids == {"a", "b", "c", "d"}
    # A chunk added elsewhere (count differs): rebuilt from state, never trusted stale.
    assert fn._index((3, "w"), [b"a\nb", b"c", b"e"]).ids == {"a", "b", "c", "e"}


def test_dedup_index_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    import edp_stream_load.transforms as transforms

    monkeypatch.setattr(transforms, "MEMO_MAX_IDS", 3)
    fn = FirstPerEventIdFn(allowed_lateness_s=60)
    fn.setup()
    fn._index((1, "w"), [b"a\nb"])
    fn._index((2, "w"), [b"c\nd"])
    fn._evict()
    assert list(fn._memo) == [(2, "w")]  # the least recently used index went
    assert fn._memo_ids == 2
