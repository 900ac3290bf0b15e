"""LoopSpanProcessor against the OpenTelemetry SDK itself: its TracerProvider and samplers make
the spans, its InMemorySpanExporter (wrapped to note the thread) receives them.

Expected values are worked out by hand from the processor's documented rule (a chunk of at most
``chunk`` spans per loop turn, the remainder after ``delay_s``) before running it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from edp.observability.span_shipping import LoopSpanProcessor

pytestmark = pytest.mark.timeout(60)


class ThreadNotingExporter(InMemorySpanExporter):
    """The SDK's in-memory exporter, noting each export's size, thread and running loop."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[int, int, bool]] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            asyncio.get_running_loop()
            on_loop = True
        except RuntimeError:
            on_loop = False
        self.batches.append((len(spans), threading.get_ident(), on_loop))
        return super().export(spans)


def _setup(
    **options: float,
) -> tuple[TracerProvider, ThreadNotingExporter, InMemorySpanExporter, list[int]]:
    exporter, fallback_exporter, built = ThreadNotingExporter(), InMemorySpanExporter(), []

    def fallback() -> SimpleSpanProcessor:
        built.append(1)
        return SimpleSpanProcessor(fallback_exporter)

    provider = TracerProvider()
    provider.add_span_processor(LoopSpanProcessor(exporter, fallback, **options))  # type: ignore[arg-type]
    return provider, exporter, fallback_exporter, built


def test_spans_that_end_on_the_loop_are_exported_from_it_in_chunks() -> None:
    provider, exporter, _, built = _setup(chunk=32, delay_s=0.05)
    tracer = provider.get_tracer("t")
    threads_before = threading.active_count()

    async def burst() -> int:
        for i in range(100):
            tracer.start_span(f"s{i}").end()
        await asyncio.sleep(0.3)
        return threading.get_ident()

    loop_thread = asyncio.run(burst())
    # by hand: 100 = 32 + 32 + 32 on three loop turns, then 4 after the 50 ms delay
    assert [size for size, _, _ in exporter.batches] == [32, 32, 32, 4]
    assert all(thread == loop_thread and on_loop for _, thread, on_loop in exporter.batches)
    assert [s.name for s in exporter.get_finished_spans()] == [f"s{i}" for i in range(100)]
    assert built == [] and threading.active_count() == threads_before


def test_spans_that_end_off_the_loop_go_to_the_fallback() -> None:
    provider, exporter, fallback_exporter, built = _setup()
    thread = threading.Thread(target=lambda: provider.get_tracer("t").start_span("off").end())
    thread.start()
    thread.join()
    assert [s.name for s in fallback_exporter.get_finished_spans()] == ["off"]
    assert exporter.batches == [] and built == [1]


def test_a_span_of_a_second_loop_goes_to_the_fallback() -> None:
    provider, exporter, fallback_exporter, _ = _setup(delay_s=0.01)

    async def one(name: str) -> None:
        provider.get_tracer("t").start_span(name).end()
        await asyncio.sleep(0.1)

    asyncio.run(one("first loop"))
    asyncio.run(one("second loop"))  # a new loop: the processor stays with its first
    assert [s.name for s in exporter.get_finished_spans()] == ["first loop"]
    assert [s.name for s in fallback_exporter.get_finished_spans()] == ["second loop"]


def test_a_full_queue_drops_new_spans_and_counts_them() -> None:
    exporter = ThreadNotingExporter()
    processor = LoopSpanProcessor(exporter, lambda: SimpleSpanProcessor(exporter),
                                  chunk=100, delay_s=60, max_pending=10)  # fmt: skip
    provider = TracerProvider()
    provider.add_span_processor(processor)

    async def burst() -> None:
        for i in range(15):
            provider.get_tracer("t").start_span(f"s{i}").end()

    asyncio.run(burst())
    assert exporter.batches == [] and processor.dropped == 5
    assert processor.force_flush()
    assert [s.name for s in exporter.get_finished_spans()] == [f"s{i}" for i in range(10)]


def test_shutdown_exports_what_is_still_waiting() -> None:
    provider, exporter, _, _ = _setup(delay_s=60)

    async def three() -> None:
        for i in range(3):
            provider.get_tracer("t").start_span(f"s{i}").end()

    asyncio.run(three())  # the loop is gone before the 60 s timer
    assert exporter.batches == []
    provider.shutdown()
    assert [s.name for s in exporter.get_finished_spans()] == ["s0", "s1", "s2"]


def test_unsampled_spans_are_not_exported() -> None:
    exporter = ThreadNotingExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(
        LoopSpanProcessor(exporter, lambda: SimpleSpanProcessor(exporter), chunk=1)
    )

    async def one() -> None:
        provider.get_tracer("t").start_span("dropped by the sampler").end()
        await asyncio.sleep(0.05)

    asyncio.run(one())
    assert exporter.get_finished_spans() == ()
