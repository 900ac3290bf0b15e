"""The stream-load job: events subscription -> raw.user_events (+ dead letters), composed here.

Read -> ParseEvents (dead letters tagged) -> WindowByPublishTime -> DedupByEventId -> sink.
Every step is a named PTransform from :mod:`edp_stream_load.transforms`; the pure logic lives in
``edp.load.transforms``, shared with the local loader. Run ``python -m edp_stream_load --help``
for the flags; the runner flag sets are in :mod:`edp_stream_load.options`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    SetupOptions,
    StandardOptions,
)

from edp_stream_load.flink import already_running
from edp_stream_load.options import (
    StreamLoadOptions,
    expansion_service,
    parse,
    runner_name,
    use_xlang_pubsub,
)
from edp_stream_load.sinks import WriteToBigQueryStorage, WriteToWarehouse
from edp_stream_load.transforms import (
    DEAD_LETTERS,
    DedupByEventId,
    ParseEvents,
    WindowByPublishTime,
)

log = logging.getLogger(__name__)


class Loaded(NamedTuple):
    """The two outputs of :class:`LoadEvents`."""

    rows: beam.PCollection
    dead_letters: beam.PCollection


class LoadEvents(beam.PTransform):  # type: ignore[misc]
    """Messages -> deduplicated raw rows and dead-letter rows, both windowed (runner-agnostic)."""

    def __init__(self, options: StreamLoadOptions) -> None:
        super().__init__()
        self.opts = options

    def expand(self, messages: beam.PCollection) -> Loaded:
        o = self.opts
        parsed = messages | "ParseEvents" >> ParseEvents(o.output_table, o.errors_table)
        window = {
            "window_s": o.window_seconds,
            "allowed_lateness_s": o.allowed_lateness_seconds,
            "early_firing_s": o.early_firing_seconds,
        }
        rows = (
            parsed.rows
            | "WindowRows" >> WindowByPublishTime(**window)
            | "DedupByEventId" >> DedupByEventId(o.dedup_shards, o.allowed_lateness_seconds)
        )
        dead = parsed[DEAD_LETTERS] | "WindowDeadLetters" >> WindowByPublishTime(**window)
        return Loaded(rows, dead)


def read_events(options: PipelineOptions) -> beam.PTransform:
    """The Pub/Sub source for this runner (cross-language on Flink, see options.py)."""
    o = options.view_as(StreamLoadOptions)
    if use_xlang_pubsub(options):
        from apache_beam.io.external.gcp.pubsub import ReadFromPubSub as XlangReadFromPubSub

        return XlangReadFromPubSub(
            subscription=o.subscription,
            with_attributes=True,
            expansion_service=expansion_service(o.pubsub_expansion_service, o.java_environment),
        )
    return beam.io.ReadFromPubSub(subscription=o.subscription, with_attributes=True)


def build(pipeline: beam.Pipeline, options: PipelineOptions) -> Loaded:
    """Add the whole job to ``pipeline``."""
    o = options.view_as(StreamLoadOptions)
    messages = pipeline | "ReadEvents" >> read_events(options)
    loaded = messages | "LoadEvents" >> LoadEvents(o)
    if o.sink == "warehouse":
        loaded.rows | "WriteRaw" >> WriteToWarehouse(o.output_table)
        loaded.dead_letters | "WriteErrors" >> WriteToWarehouse(o.errors_table)
    else:
        project = options.view_as(GoogleCloudOptions).project
        service = expansion_service(o.bigquery_expansion_service, o.java_environment)
        refused = loaded.rows | "WriteRaw" >> WriteToBigQueryStorage(
            o.output_table, project, o.bq_exactly_once, service, o.errors_table
        )
        loaded.dead_letters | "WriteErrors" >> WriteToBigQueryStorage(
            o.errors_table, project, o.bq_exactly_once, service, o.errors_table
        )
        # Rows BigQuery refused, as insert_error dead letters (their own write: the Java sink's
        # output windowing is not ours to flatten with).
        refused | "WriteRefused" >> WriteToBigQueryStorage(
            o.errors_table, project, o.bq_exactly_once, service, o.errors_table
        )
    return loaded


def run(argv: Sequence[str] | None = None, *, wait: bool = True) -> Any:
    """Build and run the job; returns the PipelineResult (``wait=False`` returns at once).

    With ``--submit_once`` on Flink, returns None without submitting when a job of the same
    ``--job_name`` is already running (see :mod:`edp_stream_load.flink`).
    """
    options = parse(argv)
    options.view_as(StandardOptions).streaming = True
    options.view_as(SetupOptions).save_main_session = False
    if options.view_as(StreamLoadOptions).submit_once and runner_name(options) == "FlinkRunner":
        running = already_running(options)
        if running:
            log.info("job %s is already running on Flink (%s): not submitting", *running)
            return None
    pipeline = beam.Pipeline(options=options)
    build(pipeline, options)
    result = pipeline.run()
    if wait and not options.view_as(StreamLoadOptions).detach:
        result.wait_until_finish()
    return result
