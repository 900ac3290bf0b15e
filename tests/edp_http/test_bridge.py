"""run_sync / await_only: synchronous code awaiting on the event loop, without threads."""

from __future__ import annotations

import asyncio
import contextvars
import gc
import threading
import warnings

import pytest

from edp.http.bridge import await_only, run_sync


async def _value_after(delay: float, value: object) -> object:
    await asyncio.sleep(delay)
    return value


async def _fail() -> None:
    await asyncio.sleep(0)
    raise KeyError("from the coroutine")


def test_an_exception_of_the_awaitable_is_raised_at_the_await_only_call() -> None:
    def handler() -> str:
        try:
            await_only(_fail())
        except KeyError as exc:
            return f"caught {exc.args[0]}"
        return "not raised"

    assert asyncio.run(run_sync(handler)) == "caught from the coroutine"


def test_an_exception_of_the_sync_code_propagates_out_of_run_sync() -> None:
    def handler() -> None:
        await_only(asyncio.sleep(0))
        raise ValueError("from the sync code")

    with pytest.raises(ValueError, match="from the sync code"):
        asyncio.run(run_sync(handler))


def test_requests_interleave_on_one_thread_each_with_its_own_context() -> None:
    """Five handlers awaiting at once: all on the loop's thread, overlapping, and a context
    variable set by each is still its own after the await (greenlets keep separate contexts)."""
    var: contextvars.ContextVar[int] = contextvars.ContextVar("request_id")
    threads: set[int] = set()
    running = 0
    most = 0

    def handler(n: int) -> tuple[int, int]:
        nonlocal running, most
        var.set(n)
        threads.add(threading.get_ident())
        running += 1
        most = max(most, running)
        await_only(asyncio.sleep(0.05))
        running -= 1
        return n, var.get()

    async def main() -> list[tuple[int, int]]:
        return await asyncio.gather(*(run_sync(handler, n) for n in range(5)))

    assert asyncio.run(main()) == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 4)]
    assert len(threads) == 1
    assert most == 5


def test_cancelling_the_task_unwinds_the_sync_code() -> None:
    unwound: list[str] = []

    def handler() -> None:
        try:
            await_only(asyncio.sleep(10))
        finally:
            unwound.append("finally ran")

    async def main() -> None:
        task = asyncio.create_task(run_sync(handler))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert unwound == ["finally ran"]


def test_await_only_outside_run_sync_refuses_and_closes_the_coroutine() -> None:
    coroutine = _value_after(0, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" would be raised here
        with pytest.raises(RuntimeError, match="outside run_sync"):
            await_only(coroutine)
        assert coroutine.cr_frame is None  # closed
        del coroutine
        gc.collect()


def test_nested_calls_await_from_any_depth() -> None:
    def inner(x: int) -> int:
        return int(await_only(_value_after(0, x))) * 10  # type: ignore[call-overload]

    def outer() -> int:
        return inner(1) + inner(2)

    assert asyncio.run(run_sync(outer)) == 30
