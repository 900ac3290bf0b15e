"""Shipping finished spans from the event loop they ended on, with no export thread.

The SDK's ``BatchSpanProcessor`` exports from a thread of its own. In the ingest worker (one
event loop answering every request) that thread costs the loop far more than the export's own
work: while it formats and writes a batch it takes the GIL at each of the loop's system calls
and holds it until the switch interval (5 ms) takes it back. Measured in-process on the ingest
app at the deployed sampling ratio (0.1): 386-421 µs of CPU per request with the thread
against 345-354 with the thread never woken, and 289 with telemetry off.

:class:`LoopSpanProcessor` keeps the spans that end on a thread running an asyncio loop and
exports them from that loop in small chunks (a bounded stall per loop turn, never a thread);
spans that end anywhere else (the threaded stream loader, CDC flusher, tools) go to the SDK's
batch processor as before. :class:`LoopTraceClient` is the Cloud Trace side of it: the SDK's
``CloudTraceSpanExporter`` translates the spans on the loop and its one RPC becomes a task of
the loop's own asyncio client instead of a blocking call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import SpanExporter

log = logging.getLogger(__name__)

#: Spans exported per loop turn: one chunk's translation is the longest the loop stalls for.
CHUNK_SPANS: Final = 32
#: A span waits at most this long before its chunk is shipped (the SDK's default is 5 s).
SHIP_DELAY_S: Final = 1.0
#: Spans kept waiting at most; beyond it new spans are dropped and counted (the SDK's 2048).
MAX_PENDING: Final = 2048


class LoopSpanProcessor(SpanProcessor):
    """Sampled spans that end on the event loop's thread, exported from that loop.

    The first loop a span ends on is this processor's loop; a span that ends on any other
    thread is handed to the processor ``fallback()`` builds on first need (the SDK's batch
    processor over the same exporter: its thread is started only in a process that needs it).
    ``exporter.export`` runs on the loop, so it must not block: a file write, or
    :class:`LoopTraceClient`'s task.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter)
        >>> exporter = InMemorySpanExporter()
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(
        ...     LoopSpanProcessor(exporter, lambda: SimpleSpanProcessor(InMemorySpanExporter())))
        >>> async def request() -> None:
        ...     provider.get_tracer("doc").start_span("on the loop").end()
        ...     await asyncio.sleep(SHIP_DELAY_S + 0.1)
        >>> asyncio.run(request())
        >>> [span.name for span in exporter.get_finished_spans()]
        ['on the loop']
    """

    def __init__(
        self,
        exporter: SpanExporter,
        fallback: Callable[[], SpanProcessor],
        *,
        chunk: int = CHUNK_SPANS,
        delay_s: float = SHIP_DELAY_S,
        max_pending: int = MAX_PENDING,
    ) -> None:
        self._exporter = exporter
        self._make_fallback = fallback
        self._fallback: SpanProcessor | None = None
        self._chunk = chunk
        self._delay_s = delay_s
        self._max_pending = max_pending
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: list[ReadableSpan] = []
        self._timer: asyncio.TimerHandle | None = None
        self._soon = False  # a chunk is already due on the loop's next turn
        self._lock = threading.Lock()  # on_end on the loop vs. a flush from another thread
        self._export_lock = threading.Lock()  # one export at a time into the exporter
        self.dropped = 0

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or (self._loop is not None and loop is not self._loop):
            self._off_loop().on_end(span)
            return
        self._loop = loop
        with self._lock:
            if len(self._pending) >= self._max_pending:
                if not self.dropped:  # once, as the SDK's batch processor warns of its queue
                    log.warning("span queue full (%d): new spans are dropped", self._max_pending)
                self.dropped += 1
                return
            self._pending.append(span)
            full = len(self._pending) >= self._chunk
        if full and not self._soon:
            self._soon = True
            loop.call_soon(self._ship_chunk)
        elif self._timer is None and not self._soon:
            self._timer = loop.call_later(self._delay_s, self._ship_chunk)

    def _off_loop(self) -> SpanProcessor:
        with self._lock:
            if self._fallback is None:
                self._fallback = self._make_fallback()
            return self._fallback

    def _take(self, limit: int | None) -> list[ReadableSpan]:
        with self._lock:
            if limit is None or len(self._pending) <= limit:
                spans, self._pending = self._pending, []
            else:
                spans, self._pending = self._pending[:limit], self._pending[limit:]
        return spans

    def _export(self, spans: Sequence[ReadableSpan]) -> None:
        try:
            with self._export_lock:
                self._exporter.export(spans)
        except Exception:  # telemetry never stops the loop it rides on
            log.exception("span export failed; %d spans dropped", len(spans))

    def _ship_chunk(self) -> None:
        """One chunk, on the loop; the rest on the next turn (other callbacks go between)."""
        self._soon = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        spans = self._take(self._chunk)
        if spans:
            self._export(spans)
        if self._pending and self._loop is not None:
            if len(self._pending) >= self._chunk:
                self._soon = True
                self._loop.call_soon(self._ship_chunk)
            else:
                self._timer = self._loop.call_later(self._delay_s, self._ship_chunk)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export every waiting span now (from any thread), then the fallback's."""
        spans = self._take(None)
        if spans:
            self._export(spans)
        fallback = self._fallback
        return fallback.force_flush(timeout_millis) if fallback is not None else True

    def shutdown(self) -> None:
        spans = self._take(None)
        if spans:
            self._export(spans)
        if self._timer is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._timer.cancel)
        if self._fallback is not None:
            self._fallback.shutdown()  # flushes its queue, shuts the shared exporter down
        else:
            self._exporter.shutdown()


class LoopTraceClient:
    """``batch_write_spans`` for ``CloudTraceSpanExporter``: a task on the running loop (the
    asyncio client, built there on first use) or, off the loop, the blocking client.

    ``retry`` and ``deadline_s`` bound the asyncio write as the blocking client's own policy
    bounds it (see :class:`edp.observability.tracing.BoundedTraceClient`); a task that fails
    is logged, as the exporter logs a failed blocking call. A reference to every task is kept
    until it ends, so none is collected mid-flight.
    """

    def __init__(
        self, blocking: Any, async_factory: Callable[[], Any], *, retry: Any, deadline_s: float
    ) -> None:
        self._blocking = blocking
        self._async_factory = async_factory
        self._retry = retry
        self._deadline_s = deadline_s
        self._async: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def batch_write_spans(self, request: Any = None, **_: Any) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or (self._loop is not None and loop is not self._loop):
            self._blocking.batch_write_spans(request=request)
            return
        if self._async is None:
            self._loop, self._async = loop, self._async_factory()
        task = loop.create_task(self._write(request))
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._written, request))

    def _written(self, request: Any, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            # The loop is stopping with this write pending: asyncio.run cancels what is left,
            # and a server with no drain hook (functions-framework's app on Cloud Run) never
            # waits. Written the blocking way, within the same deadline, rather than lost; a
            # span Cloud Trace already had is rewritten under the same name.
            self._write_blocking(request)

    def _write_blocking(self, request: Any) -> None:
        try:
            self._blocking.batch_write_spans(request=request)
        except Exception as exc:
            log.error("Error while writing to Cloud Trace: %s", exc)

    async def drain(self, timeout_s: float) -> None:
        """Wait, at most ``timeout_s``, for the writes in flight on the running loop (a write
        still pending when its loop stops is cancelled, then written the blocking way)."""
        loop = asyncio.get_running_loop()
        tasks = [task for task in self._tasks if task.get_loop() is loop]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout_s)

    async def _write(self, request: Any) -> None:
        try:
            await self._async.batch_write_spans(
                request=request, retry=self._retry, timeout=self._deadline_s
            )
        except Exception as exc:
            log.error("Error while writing to Cloud Trace: %s", exc)
