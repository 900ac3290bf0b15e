"""A loopback stand-in of Cloud Trace's ``BatchWriteSpans`` (the one RPC the span exporter makes).

It serves ``google.devtools.cloudtrace.v2.TraceService/BatchWriteSpans`` with a generic gRPC
handler, as tests/observability/gcmfake.py does for Cloud Monitoring; the platform's
``EDP_TRACES_API_ENDPOINT`` points the exporter at it.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc  # type: ignore[import-untyped]
from google.cloud.trace_v2 import BatchWriteSpansRequest
from google.protobuf.empty_pb2 import Empty

SERVICE = "google.devtools.cloudtrace.v2.TraceService"


class TraceStandIn:
    """BatchWriteSpans on loopback: records span names, or (``hang``) never answers.

    With ``delay_s`` it answers that much later, and records the spans only if the caller is
    still there then: a write its client cancelled midway is not a write.
    """

    def __init__(self, *, hang: bool = False, delay_s: float = 0.0) -> None:
        self.names: list[str] = []
        self.calls = 0
        self.hang = hang
        self.delay_s = delay_s
        self.release = threading.Event()
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "BatchWriteSpans": grpc.unary_unary_rpc_method_handler(
                    self._write,
                    request_deserializer=BatchWriteSpansRequest.deserialize,
                    response_serializer=Empty.SerializeToString,
                )
            },
        )
        self._executor = ThreadPoolExecutor(4)
        self._server = grpc.server(self._executor, handlers=[handler])
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    def _write(self, request: Any, context: Any) -> Empty:
        self.calls += 1
        if self.hang:
            self.release.wait(300)  # longer than any client deadline; freed at teardown
        elif self.delay_s:
            self.release.wait(self.delay_s)
            if not context.is_active():
                return Empty()
        self.names += [span.display_name.value for span in request.spans]
        return Empty()

    def __enter__(self) -> TraceStandIn:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.stop(None)
        self._executor.shutdown(wait=True)
