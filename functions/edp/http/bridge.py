"""Synchronous code inside an event loop that awaits I/O without a thread: greenlets.

:func:`run_sync` runs a plain function in a child greenlet of the calling coroutine; wherever
that function (however deep) calls :func:`await_only`, the child switches back to the coroutine,
which awaits the awaitable in the event loop and switches back in with its result (or throws its
exception at the ``await_only`` call). No thread, no executor: the same technique SQLAlchemy's
asyncio extension uses to run its synchronous ORM over async drivers.

Why: the ingest request handling (flask, validation, the core) is synchronous and fast; the one
slow step is the Publish RPC. Under a threaded server every request paid thread hand-offs that
cost more CPU on this kind of VM than the Python work itself. In one event loop per worker the
request runs start to finish on the loop's thread and only the RPC is awaited.

Rules for code run this way: it must not block the thread (no ``time.sleep``, no blocking
socket I/O) and must never hold a ``threading.Lock`` across an ``await_only``: another request
running on the same thread would block on it and stop the loop.

Example:
    >>> import asyncio
    >>> async def double(x):
    ...     await asyncio.sleep(0)
    ...     return 2 * x
    >>> def handler(x):
    ...     return await_only(double(x)) + 1
    >>> asyncio.run(run_sync(handler, 20))
    41
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import greenlet

T = TypeVar("T")


class _Bridged(greenlet.greenlet):
    """A greenlet started by :func:`run_sync` (:func:`await_only` works only inside one)."""


async def run_sync(fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn(*args)`` on this thread; its :func:`await_only` calls are awaited here.

    Exceptions raised by ``fn`` propagate; a cancellation of the calling task is thrown into
    ``fn`` at its pending ``await_only`` (so its ``finally`` blocks run) and then propagates.
    """
    child = _Bridged(fn, greenlet.getcurrent())
    result: Any = child.switch(*args)
    while not child.dead:
        try:
            value = await result
        except BaseException as exc:  # handed to fn, which decides
            result = child.throw(exc)
        else:
            result = child.switch(value)
    return result  # type: ignore[no-any-return]


def await_only(awaitable: Awaitable[T]) -> T:
    """Await ``awaitable`` from synchronous code running under :func:`run_sync`.

    Raises:
        RuntimeError: not called (directly or deeply) from a function run by :func:`run_sync`;
            the awaitable is closed, never awaited.
    """
    current = greenlet.getcurrent()
    if not isinstance(current, _Bridged):
        close = getattr(awaitable, "close", None)
        if close is not None:
            close()
        raise RuntimeError("await_only() called outside run_sync(): nothing awaits it")
    parent = current.parent
    assert parent is not None  # run_sync made it with the awaiting coroutine's greenlet
    return parent.switch(awaitable)  # type: ignore[no-any-return]


__all__ = ["await_only", "run_sync"]
