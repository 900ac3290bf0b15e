"""A loopback stand-in of Cloud Trace's ``BatchWriteSpans`` (the one RPC the span exporter makes).

It serves ``google.devtools.cloudtrace.v2.TraceService/BatchWriteSpans`` with a generic gRPC
handler; the platform's ``EDP_TRACES_API_ENDPOINT`` points the real exporter
(``CloudTraceSpanExporter`` over :class:`~edp.observability.span_shipping.LoopTraceClient`) at
it. The tests use it in-process; the ingest benchmark runs it as a process of its own
(``python -m edp_tools.bench._cloud_trace --count-file F``: it prints its port, writes the
number of spans received to ``F`` after every write, and stops on SIGTERM), so its telemetry-on
app exports as deployed, translation and RPC included.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
from google.cloud.trace_v2 import BatchWriteSpansRequest
from google.protobuf.empty_pb2 import Empty

SERVICE = "google.devtools.cloudtrace.v2.TraceService"


class TraceStandIn:
    """BatchWriteSpans on loopback: records span names, or (``hang``) never answers.

    With ``delay_s`` it answers that much later, and records the spans only if the caller is
    still there then: a write its client cancelled midway is not a write. ``count_file`` gets
    the number of spans received so far after every write.
    """

    def __init__(
        self,
        *,
        hang: bool = False,
        delay_s: float = 0.0,
        port: int = 0,
        count_file: Path | None = None,
    ) -> None:
        self.names: list[str] = []
        self.calls = 0
        self.hang = hang
        self.delay_s = delay_s
        self.count_file = count_file
        self.release = threading.Event()
        self._lock = threading.Lock()
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
        self.port = self._server.add_insecure_port(f"127.0.0.1:{port}")

    def _write(self, request: Any, context: Any) -> Empty:
        self.calls += 1
        if self.hang:
            self.release.wait(300)  # longer than any client deadline; freed at teardown
        elif self.delay_s:
            self.release.wait(self.delay_s)
            if not context.is_active():
                return Empty()
        with self._lock:
            self.names += [span.display_name.value for span in request.spans]
            if self.count_file is not None:
                partial = self.count_file.with_suffix(".part")
                partial.write_text(str(len(self.names)), encoding="utf-8")
                partial.replace(self.count_file)  # a reader never sees a half-written number
        return Empty()

    def __enter__(self) -> TraceStandIn:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._server.stop(None)
        self._executor.shutdown(wait=True)


def spans_received(count_file: Path) -> int:
    """What a stand-in process wrote to ``count_file`` (0 before its first write)."""
    try:
        return int(count_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edp_tools.bench._cloud_trace")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--count-file", type=Path, required=True)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with TraceStandIn(port=args.port, count_file=args.count_file) as api:
        print(api.port, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
