"""The job's named PTransforms: thin Beam wrappers over :mod:`edp.load.transforms`.

- :class:`ParseEvents` - Pub/Sub messages -> raw rows (main output) and dead-letter rows
  (``TaggedOutput`` ``dead_letters``), with Beam counters;
- :class:`WindowByPublishTime` - fixed windows on the element timestamp (the Pub/Sub publish
  time), early panes every few seconds, late panes for data within the allowed lateness;
- :class:`DedupByEventId` - drops repeats of an event_id inside a window (+ lateness): rows are
  batched per ``hash(event_id) % shards`` and window within a bundle, and a stateful DoFn keeps
  an index of the window's ids per shard (work per row O(1), see :class:`FirstPerEventIdFn`),
  cleared by a timer when the window can no longer receive data;
- :class:`MicroBatch` - groups rows per shard and pane (what a sink writes at once).

Windows are on **publish time**, not event time: a phone that was offline for a day must not
make its events "late" - raw is the audit trail and keeps everything; event-time logic is for
staging and the marts.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.coders import BytesCoder
from apache_beam.io.gcp.pubsub import PubsubMessage
from apache_beam.metrics import Metrics
from apache_beam.transforms import trigger, window
from apache_beam.transforms.timeutil import TimeDomain
from apache_beam.transforms.userstate import BagStateSpec, TimerSpec, on_timer
from apache_beam.utils.timestamp import Duration, Timestamp
from apache_beam.utils.windowed_value import WindowedValue

from edp.contracts.catalog import load_catalog
from edp.load.transforms import (
    ERRORS_TABLE,
    RAW_TABLE,
    PubsubEnvelope,
    RawRowMapper,
    dead_letter_row,
    process_message,
)
from edp.load.values import now_micros, to_utc_micros

NAMESPACE = "edp.stream_load"
DEAD_LETTERS = "dead_letters"


def shard_of(event_id: str, shards: int) -> int:
    """A stable shard of an event_id (same on every worker and every run).

    >>> shard_of("a", 16) == shard_of("a", 16)
    True
    """
    return zlib.crc32(event_id.encode()) % shards


class ParseMessageFn(beam.DoFn):
    """One Pub/Sub message -> normalised raw rows + typed dead letters."""

    def __init__(self, raw_table: str = RAW_TABLE, errors_table: str = ERRORS_TABLE) -> None:
        self.raw_table = raw_table
        self.errors_table = errors_table
        self.messages = Metrics.counter(NAMESPACE, "messages")
        self.rows = Metrics.counter(NAMESPACE, "pipeline_rows_processed_total")
        self.dead = Metrics.counter(NAMESPACE, "dead_letters")
        self.mapper: RawRowMapper | None = None

    def setup(self) -> None:
        catalog = load_catalog()
        self.mapper = RawRowMapper.for_table(catalog.table(self.raw_table))
        self.errors_spec = catalog.table(self.errors_table)

    def process(
        self, message: PubsubMessage | bytes, timestamp: Any = beam.DoFn.TimestampParam
    ) -> Iterator[Any]:
        assert self.mapper is not None
        envelope = to_envelope(message, timestamp)
        batch = process_message(envelope, self.mapper)
        self.messages.inc()
        for row in batch.rows:
            self.rows.inc()
            yield row
        failed_at = now_micros()
        for dead in batch.dead_letters:
            self.dead.inc()
            Metrics.counter(NAMESPACE, f"dead_letters_{dead.error_type}").inc()
            yield pvalue.TaggedOutput(
                DEAD_LETTERS, dead_letter_row(dead, self.errors_spec, failed_at)
            )


def to_envelope(message: PubsubMessage | bytes, timestamp: Any) -> PubsubEnvelope:
    """Our envelope of a Beam Pub/Sub message.

    The publish time comes from the message, else from the element timestamp (the read sets it
    to the publish time); the message id, when a runner does not carry it (the cross-language
    read may not), falls back to a hash of the body, which is still stable across redeliveries.
    """
    element_us = int(Timestamp.of(timestamp).micros) if timestamp is not None else now_micros()
    if isinstance(message, bytes):
        return PubsubEnvelope(message, f"crc32:{zlib.crc32(message):08x}", element_us)
    publish_us = element_us
    stamp = message.publish_time
    if isinstance(stamp, datetime):
        publish_us = to_utc_micros(stamp)
    elif stamp is not None and hasattr(stamp, "seconds"):  # a protobuf Timestamp
        publish_us = stamp.seconds * 1_000_000 + stamp.nanos // 1000
    message_id = message.message_id or f"crc32:{zlib.crc32(message.data):08x}"
    return PubsubEnvelope(
        data=message.data,
        message_id=message_id,
        publish_time_us=publish_us,
        attributes=dict(message.attributes or {}),
    )


class ParseEvents(beam.PTransform):  # type: ignore[misc]
    """Messages -> ``{"rows": ..., "dead_letters": ...}`` (a DoOutputsTuple)."""

    def __init__(self, raw_table: str = RAW_TABLE, errors_table: str = ERRORS_TABLE) -> None:
        super().__init__()
        self.raw_table = raw_table
        self.errors_table = errors_table

    def expand(self, messages: beam.PCollection) -> Any:
        return messages | "Parse" >> beam.ParDo(
            ParseMessageFn(self.raw_table, self.errors_table)
        ).with_outputs(DEAD_LETTERS, main="rows")


class WindowByPublishTime(beam.PTransform):  # type: ignore[misc]
    """Fixed windows, early panes by processing time, late panes within the allowed lateness."""

    def __init__(self, window_s: int, allowed_lateness_s: int, early_firing_s: int) -> None:
        super().__init__()
        self.window_s = window_s
        self.allowed_lateness_s = allowed_lateness_s
        self.early_firing_s = early_firing_s

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return rows | "FixedWindows" >> beam.WindowInto(
            window.FixedWindows(self.window_s),
            trigger=trigger.AfterWatermark(
                early=trigger.AfterProcessingTime(self.early_firing_s),
                late=trigger.AfterCount(1),
            ),
            allowed_lateness=Duration(seconds=self.allowed_lateness_s),
            accumulation_mode=trigger.AccumulationMode.DISCARDING,
        )


# One bag element per accepted batch: the ids it let through, newline-joined. A bytes chunk
# is one object to the SDK's state cache (which measures every cached value), so appending a
# chunk costs the same however many ids the shard already holds.
_SEEN = BagStateSpec("seen_ids", BytesCoder())
_EXPIRE = TimerSpec("expire", TimeDomain.WATERMARK)
_SEEN_PARAM = beam.DoFn.StateParam(_SEEN)
_EXPIRE_PARAM = beam.DoFn.TimerParam(_EXPIRE)
# Ids kept decoded in memory per DoFn instance (across bundles); beyond it, the least recently
# used (shard, window) indexes are dropped and rebuilt from state when they are needed again.
MEMO_MAX_IDS = 1_000_000


class BatchPerShardFn(beam.DoFn):
    """Rows -> ``(shard, rows)``: one batch per dedup shard and window of each bundle.

    Stateless: it only buffers within a bundle and flushes in ``finish_bundle``, so the stateful
    step below touches its state once per batch instead of once per row.
    """

    def __init__(self, shards: int) -> None:
        self.shards = shards
        self._buffer: dict[tuple[int, Any], list[dict[str, Any]]] = {}

    def start_bundle(self) -> None:
        self._buffer = {}

    def process(self, row: dict[str, Any], win: Any = beam.DoFn.WindowParam) -> None:
        key = (shard_of(row["event_id"], self.shards), win)
        self._buffer.setdefault(key, []).append(row)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for (shard, win), rows in self._buffer.items():
            yield WindowedValue((shard, rows), win.max_timestamp(), [win])
        self._buffer = {}


class _SeenIndex:
    """Decoded ids of one (shard, window) and how many state chunks they cover."""

    __slots__ = ("chunks", "ids")

    def __init__(self, ids: set[str], chunks: int) -> None:
        self.ids = ids
        self.chunks = chunks


class FirstPerEventIdFn(beam.DoFn):
    """Keeps the first row of each event_id per window; the state dies with the window.

    State per (shard, window): a bag of id chunks (one per accepted batch). Per batch the DoFn
    reads the bag once, checks each row against an in-memory index of the ids (rebuilt from the
    bag only when the number of chunks differs from what the index covers: a new worker, an
    evicted index, a key moved between workers) and appends one chunk of the new ids. Work per
    row is O(1); per batch O(number of chunks). A watermark timer at window end + allowed
    lateness clears the state (Flink and Dataflow drop later data themselves; the local runner
    would not).
    """

    SEEN = _SEEN
    EXPIRE = _EXPIRE

    def __init__(self, allowed_lateness_s: int) -> None:
        self.allowed_lateness_s = allowed_lateness_s
        self.duplicates = Metrics.counter(NAMESPACE, "duplicates")
        self._memo: OrderedDict[tuple[int, Any], _SeenIndex] = OrderedDict()
        self._memo_ids = 0

    def setup(self) -> None:
        self._memo = OrderedDict()
        self._memo_ids = 0

    def process(
        self,
        element: tuple[int, list[dict[str, Any]]],
        win: Any = beam.DoFn.WindowParam,
        seen: Any = _SEEN_PARAM,
        expire: Any = _EXPIRE_PARAM,
    ) -> Iterator[dict[str, Any]]:
        shard, rows = element
        chunks = list(seen.read())
        if not chunks:
            expire.set(win.max_timestamp() + Duration(seconds=self.allowed_lateness_s))
        index = self._index((shard, win), chunks)
        new: list[str] = []
        for row in rows:
            event_id = row["event_id"]
            if event_id in index.ids:
                self.duplicates.inc()
                continue
            index.ids.add(event_id)
            new.append(event_id)
            yield row
        if new:
            seen.add("\n".join(new).encode())
            index.chunks += 1
            self._memo_ids += len(new)
            self._evict()

    def _index(self, key: tuple[int, Any], chunks: list[bytes]) -> _SeenIndex:
        index = self._memo.get(key)
        if index is not None and index.chunks == len(chunks):
            self._memo.move_to_end(key)
            return index
        ids: set[str] = set()
        for chunk in chunks:
            ids.update(chunk.decode().split("\n"))
        if index is not None:
            self._memo_ids -= len(index.ids)
        index = self._memo[key] = _SeenIndex(ids, len(chunks))
        self._memo.move_to_end(key)
        self._memo_ids += len(ids)
        return index

    def _evict(self) -> None:
        while self._memo_ids > MEMO_MAX_IDS and len(self._memo) > 1:
            _, oldest = self._memo.popitem(last=False)
            self._memo_ids -= len(oldest.ids)

    @on_timer(_EXPIRE)
    def expire(
        self,
        key: Any = beam.DoFn.KeyParam,
        win: Any = beam.DoFn.WindowParam,
        seen: Any = _SEEN_PARAM,
    ) -> None:
        seen.clear()
        dropped = self._memo.pop((key, win), None)
        if dropped is not None:
            self._memo_ids -= len(dropped.ids)


class DedupByEventId(beam.PTransform):  # type: ignore[misc]
    """Rows -> rows with at most one per event_id per window (+ allowed lateness)."""

    def __init__(self, shards: int, allowed_lateness_s: int) -> None:
        super().__init__()
        self.shards = shards
        self.allowed_lateness_s = allowed_lateness_s

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        return (
            rows
            # An int key: a deterministic coder, as keyed state requires.
            | "BatchPerShard"
            >> beam.ParDo(BatchPerShardFn(self.shards)).with_output_types(
                tuple[int, list[dict[str, Any]]]
            )
            | "FirstPerEventId" >> beam.ParDo(FirstPerEventIdFn(self.allowed_lateness_s))
        )


class MicroBatch(beam.PTransform):  # type: ignore[misc]
    """Rows -> lists of rows, one per shard and trigger firing (the write unit of a sink)."""

    def __init__(self, shards: int) -> None:
        super().__init__()
        self.shards = shards

    def expand(self, rows: beam.PCollection) -> beam.PCollection:
        shards = self.shards
        return (
            rows
            | "KeyByShard" >> beam.Map(lambda row: (shard_of(_batch_key(row), shards), row))
            | "GroupPerPane" >> beam.GroupByKey()
            | "Rows" >> beam.MapTuple(lambda _shard, batch: list(batch))
        )


def _batch_key(row: dict[str, Any]) -> str:
    return str(row.get("event_id") or row.get("error_id") or row.get("message_id") or "")
