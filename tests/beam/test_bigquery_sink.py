"""The BigQuery branch is built up to the Java expansion, against a local expansion stand-in.

Beam's Storage Write sink is a cross-language transform: construction runs in Python (schema ->
Beam row type, the configuration payload) and then asks an expansion service to expand it in
Java. The stand-in (``expansion_standin.py``) sits exactly where the baked jar would, records what
Beam sends and refuses to expand, so these tests prove everything on the Python side and read
the real request.
"""

from __future__ import annotations

from typing import Optional

import apache_beam as beam
import pytest
from apache_beam.coders.row_coder import RowCoder
from apache_beam.io.gcp import bigquery_tools
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.portability import common_urns
from apache_beam.portability.api import external_transforms_pb2, schema_pb2
from apache_beam.utils.timestamp import Timestamp
from edp_stream_load.pipeline import build
from edp_stream_load.sinks import TYPE_OVERRIDES, bigquery_schema, refused_to_dead_letter
from expansion_standin import STORAGE_WRITE, expansion_standin

from edp.contracts.catalog import load_catalog

SUB = "--subscription=projects/edp-proj/subscriptions/events-loader"


def _build_against(address: str, *flags: str) -> None:
    options = PipelineOptions(
        [
            SUB,
            "--runner=BundleBasedDirectRunner",
            "--project=edp-proj",
            "--sink=bigquery",
            "--pubsub_read=native",
            f"--bigquery_expansion_service={address}",
            *flags,
        ]
    )
    options.view_as(StandardOptions).streaming = True
    build(beam.Pipeline(options=options), options)


def _config(request) -> dict:  # type: ignore[no-untyped-def]
    assert request.transform.spec.urn == common_urns.schematransform_based_expand.urn
    payload = external_transforms_pb2.SchemaTransformPayload.FromString(
        request.transform.spec.payload
    )
    assert payload.identifier == STORAGE_WRITE
    row = RowCoder(payload.configuration_schema).decode(payload.configuration_row)
    return row._asdict()


def _input_schema(request) -> schema_pb2.Schema:  # type: ignore[no-untyped-def]
    (pcoll_id,) = request.transform.inputs.values()
    coder = request.components.coders[request.components.pcollections[pcoll_id].coder_id]
    assert coder.spec.urn == common_urns.coders.ROW.urn
    return schema_pb2.Schema.FromString(coder.spec.payload)


def test_beam_without_the_json_override_cannot_type_the_raw_table() -> None:
    # The trap itself, against Beam's own type map: raw.user_events has a JSON column (params).
    schema = bigquery_schema(load_catalog().table("raw.user_events"))
    with pytest.raises(ValueError, match=r"Converting BigQuery type \[JSON\]"):
        bigquery_tools.get_beam_typehints_from_tableschema(schema)
    hints = dict(bigquery_tools.get_beam_typehints_from_tableschema(schema, TYPE_OVERRIDES))
    assert hints["params"] == Optional[str]  # noqa: UP045 - what Beam builds


@pytest.mark.parametrize("exactly_once", [False, True])
def test_bigquery_branch_builds_up_to_the_expansion_service(exactly_once: bool) -> None:
    flags = ["--bq_exactly_once"] if exactly_once else []
    with (
        expansion_standin() as (address, standin),
        pytest.raises(RuntimeError, match="expansion stand-in"),
    ):
        _build_against(address, *flags)
    # Beam reached our injected service (not Maven, not localhost:8097) and sent the raw write.
    assert standin.discovered >= 1
    request = standin.expand_requests[0]
    config = _config(request)
    assert config["table"] == "edp-proj:raw.user_events"
    assert config["create_disposition"] == "CREATE_NEVER"
    assert config["write_disposition"] == "WRITE_APPEND"
    handling = config["error_handling"]
    assert dict(handling)["output"] == "FailedRowsWithErrors"
    assert config["use_at_least_once_semantics"] is (not exactly_once)
    assert config["auto_sharding"] is exactly_once
    if exactly_once:
        assert config["triggering_frequency_seconds"] == 5
    # The rows Beam hands to Java: the JSON column travels as a nullable STRING.
    fields = {f.name: f.type for f in _input_schema(request).fields}
    assert fields["params"].atomic_type == schema_pb2.STRING
    assert fields["params"].nullable
    assert fields["event_id"].atomic_type == schema_pb2.STRING
    assert not fields["event_id"].nullable
    assert fields["items"].WhichOneof("type_info") == "array_type"


def test_a_refused_row_becomes_an_insert_error_dead_letter_with_its_error() -> None:
    # The shape Beam 2.77 gives for dict input (StorageWriteToBigQuery.expand):
    # {"error_message": ..., "failed_row": Row._asdict()}, values as Beam types.
    errors = load_catalog().table("raw.user_events_errors")
    failed_row = {
        "event_id": "e-1",
        "pubsub_message_id": "m-7",
        "pubsub_publish_time": Timestamp(micros=1_767_225_600_000_000),
        "ingested_at": Timestamp(micros=1_767_225_599_000_000),
        "params": '{"a": 1}',
        "items": [beam.Row(item_id="i-1", price=1.5)],
    }
    refused = {"error_message": "Field value out of range", "failed_row": failed_row}
    row = refused_to_dead_letter(refused, errors, failed_at_us=42)
    assert row["error_id"] == "m-7:e-1"  # DeadLetter.error_id of a line-less (insert) error
    assert row["error_type"] == "insert_error"
    assert row["stage"] == "insert"
    assert row["reason"] == "Field value out of range"
    assert row["event_id"] == "e-1"
    assert row["message_id"] == "m-7"
    assert row["publish_time"] == 1_767_225_600_000_000
    assert row["ingested_at"] == 1_767_225_599_000_000
    assert row["failed_at"] == 42
    assert '"item_id":"i-1"' in row["payload"]
    assert "2026-01-01T00:00:00.000000Z" in row["payload"]
    assert set(row) == set(errors.column_names)
