"""A local stand-in of Beam's Java expansion service (gRPC on 127.0.0.1), for construction tests.

It answers ``DiscoverSchemaTransform`` with the configuration schema of the BigQuery Storage
Write schema transform and records every ``Expand`` request, answering it with an error (there
is no Java here). So a pipeline built against it goes through all of Beam's Python-side
construction - the row conversion where the JSON type used to fail, the configuration payload -
up to the exact point where Beam hands the transform to Java, and the test reads what Beam sent.

The configuration fields are Java's ``BigQueryWriteConfiguration`` (apache/beam,
sdks/java/io/google-cloud-platform/.../bigquery/providers/BigQueryWriteConfiguration.java: table,
createDisposition, writeDisposition, triggeringFrequencySeconds, useAtLeastOnceSemantics,
autoSharding, numStreams, kmsKey, errorHandling{output}, useCdcWrites, primaryKey) in the
snake_case the schema-transform provider exposes, plus the clusteringFields and
bigLakeConfiguration that Beam 2.77's Python sink sends (``StorageWriteToBigQuery.expand``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager
from typing import NamedTuple, Optional

import grpc
import numpy as np
from apache_beam.portability.api import beam_expansion_api_pb2, beam_expansion_api_pb2_grpc
from apache_beam.typehints.schemas import named_tuple_to_schema

STORAGE_WRITE = "beam:schematransform:org.apache.beam:bigquery_storage_write:v2"


class ErrorHandling(NamedTuple):
    output: str


class BigQueryWriteConfiguration(NamedTuple):
    table: str
    create_disposition: Optional[str]  # noqa: UP045 - Beam's schema inference reads typing
    write_disposition: Optional[str]  # noqa: UP045
    triggering_frequency_seconds: Optional[np.int64]  # noqa: UP045
    use_at_least_once_semantics: Optional[bool]  # noqa: UP045
    auto_sharding: Optional[bool]  # noqa: UP045
    num_streams: Optional[np.int32]  # noqa: UP045
    kms_key: Optional[str]  # noqa: UP045
    error_handling: Optional[ErrorHandling]  # noqa: UP045
    use_cdc_writes: Optional[bool]  # noqa: UP045
    primary_key: Optional[Sequence[str]]  # noqa: UP045
    clustering_fields: Optional[Sequence[str]]  # noqa: UP045
    big_lake_configuration: Optional[Mapping[str, str]]  # noqa: UP045


class StandIn(beam_expansion_api_pb2_grpc.ExpansionServiceServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.discovered = 0
        self.expand_requests: list[beam_expansion_api_pb2.ExpansionRequest] = []
        self._lock = threading.Lock()

    def DiscoverSchemaTransform(self, request, context):  # type: ignore[no-untyped-def]
        with self._lock:
            self.discovered += 1
        config = beam_expansion_api_pb2.SchemaTransformConfig(
            config_schema=named_tuple_to_schema(BigQueryWriteConfiguration),
            input_pcollection_names=["input"],
            output_pcollection_names=["FailedRowsWithErrors"],
        )
        return beam_expansion_api_pb2.DiscoverSchemaTransformResponse(
            schema_transform_configs={STORAGE_WRITE: config}
        )

    def Expand(self, request, context):  # type: ignore[no-untyped-def]
        with self._lock:
            self.expand_requests.append(request)
        return beam_expansion_api_pb2.ExpansionResponse(
            error="expansion stand-in: no Java expansion service here"
        )


@contextmanager
def expansion_standin() -> Iterator[tuple[str, StandIn]]:
    """``(host:port, servicer)`` of a stand-in serving on a free loopback port."""
    servicer = StandIn()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    beam_expansion_api_pb2_grpc.add_ExpansionServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        server.stop(grace=None)
