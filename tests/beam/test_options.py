"""Runner options: the runner is always pinned, Flink gets the cross-language Pub/Sub read and
the worker-pool environment, Dataflow the native read; the BigQuery sink's row shape."""

from __future__ import annotations

import pytest
from apache_beam.io.gcp.pubsub import ReadFromPubSub as NativeRead
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)
from apache_beam.utils.timestamp import Timestamp
from edp_stream_load.options import (
    LOCAL_STREAMING_RUNNER,
    StreamLoadOptions,
    dataflow_argv,
    parse,
    use_xlang_pubsub,
)
from edp_stream_load.pipeline import read_events
from edp_stream_load.sinks import bigquery_schema, to_storage_write_row

from edp.contracts.catalog import load_catalog

SUB = "--subscription=projects/p/subscriptions/events-loader"


def test_no_runner_flag_means_the_local_streaming_runner() -> None:
    options = parse([SUB])
    assert options.view_as(StandardOptions).runner == LOCAL_STREAMING_RUNNER


@pytest.mark.parametrize("runner", ["DirectRunner", "PrismRunner", "SwitchingDirectRunner"])
def test_runners_that_download_prism_are_refused(runner: str) -> None:
    with pytest.raises(ValueError, match="Prism"):
        parse([SUB, f"--runner={runner}"])


def test_subscription_is_required() -> None:
    with pytest.raises(ValueError, match="subscription"):
        parse(["--runner=BundleBasedDirectRunner"])


@pytest.mark.parametrize("runner", ["FlinkRunner", "PortableRunner"])
def test_auto_read_is_xlang_on_flink(runner: str) -> None:
    assert use_xlang_pubsub(parse([SUB, f"--runner={runner}"]))


def test_dataflow_argv_uses_the_native_read() -> None:
    argv = dataflow_argv(
        project="edp-proj",
        region="asia-northeast3",
        subscription="projects/edp-proj/subscriptions/events-loader",
        temp_location="gs://bucket/tmp",
        image="asia-northeast3-docker.pkg.dev/edp-proj/edp/beam:1",
    )
    options = parse(argv)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    assert options.view_as(GoogleCloudOptions).enable_streaming_engine
    assert not use_xlang_pubsub(options)
    assert isinstance(read_events(options), NativeRead)
    assert options.view_as(StreamLoadOptions).sink == "bigquery"


def test_explicit_read_choice_wins() -> None:
    assert not use_xlang_pubsub(parse([SUB, "--runner=PortableRunner", "--pubsub_read=native"]))
    assert use_xlang_pubsub(parse([SUB, "--pubsub_read=xlang"]))


def test_bigquery_schema_mirrors_the_catalogue() -> None:
    spec = load_catalog().table("raw.user_events")
    schema = bigquery_schema(spec)
    assert [f["name"] for f in schema["fields"]] == list(spec.column_names)
    items = next(f for f in schema["fields"] if f["name"] == "items")
    assert items["mode"] == "REPEATED"
    assert "item_id" in [f["name"] for f in items["fields"]]


def test_storage_write_rows_carry_beam_timestamps() -> None:
    spec = load_catalog().table("raw.user_events")
    row = {name: None for name in spec.column_names}
    row.update(event_id="e", event_timestamp=1_767_225_600_000_001, items=[{"item_id": "i"}])
    converted = to_storage_write_row(row, spec)
    assert converted["event_timestamp"] == Timestamp(micros=1_767_225_600_000_001)
    assert converted["items"][0]["item_id"] == "i"
    assert converted["loaded_at"] is None


def test_pipeline_options_parse_our_flags() -> None:
    options = PipelineOptions([SUB, "--window_seconds=30", "--dedup_shards=8", "--bq_exactly_once"])
    ours = options.view_as(StreamLoadOptions)
    assert (ours.window_seconds, ours.dedup_shards, ours.bq_exactly_once) == (30, 8, True)
