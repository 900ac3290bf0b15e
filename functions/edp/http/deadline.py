"""Slow-client guards: a body read deadline and a cap on concurrent uploads per worker.

A gthread worker (functions-framework's gunicorn, and the collector's) gives each request a
thread, and a thread reading a request body blocks on the socket for as long as the client
takes: a few dozen connections that send headers and part of a body, then stall, hold every
thread and the worker stops answering, health checks included. gunicorn's ``timeout`` is the
worker heartbeat, not a body deadline, and the socket has no read timeout.

Two guards, both per worker process:

* :class:`Watchdog` - one daemon thread holding the deadlines of the body reads in progress;
  when one passes it shuts the read side of that socket (``shutdown(SHUT_RD)``), which wakes
  the blocked ``recv`` with end-of-file, so the read ends short and the request is refused
  (408) however slowly the client drips bytes. The socket comes from the WSGI server
  (``gunicorn.socket``); without one (test clients) the deadline is checked between chunks.
* :class:`UploadGate` - at most N bodies are read at once; a request that finds every slot
  taken is refused at once (503 + ``Retry-After``) instead of queueing a thread behind slow
  clients, so the remaining threads stay free for health checks and fast requests.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Entry:
    deadline: float
    seq: int
    sock: socket.socket | None = field(compare=False, default=None)
    fired: bool = field(compare=False, default=False)
    cancelled: bool = field(compare=False, default=False)


class Watchdog:
    """Shuts the read side of sockets whose body read overran its deadline.

    Example:
        >>> import socket, time
        >>> a, b = socket.socketpair()
        >>> dog = Watchdog()
        >>> entry = dog.arm(a, time.monotonic() + 0.05)
        >>> a.recv(10), entry.fired  # blocks until the watchdog shuts the read side
        (b'', True)
        >>> a.close(); b.close()
    """

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, sock: socket.socket | None, deadline: float) -> _Entry:
        """Watch ``sock`` until :meth:`disarm`; shut its read side at ``deadline`` (monotonic)."""
        entry = _Entry(deadline, next(self._seq), sock)
        if sock is None:
            return entry
        with self._cond:
            heapq.heappush(self._heap, entry)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="edp-body-deadline")
                self._thread.daemon = True
                self._thread.start()
            elif self._heap[0] is entry:
                self._cond.notify()
        return entry

    def disarm(self, entry: _Entry) -> None:
        """Stop watching (the body was read, or the request failed otherwise)."""
        with self._cond:
            entry.cancelled = True

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0].cancelled:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait(timeout=60.0)
                    if not self._heap:
                        self._thread = None
                        return
                    continue
                wait = self._heap[0].deadline - time.monotonic()
                if wait > 0:
                    self._cond.wait(timeout=wait)
                    continue
                entry = heapq.heappop(self._heap)
                entry.fired = True
                if entry.sock is not None:
                    try:
                        entry.sock.shutdown(socket.SHUT_RD)
                    except OSError as exc:  # already closed by the client or the server
                        log.debug("body deadline: shutdown failed: %s", exc)


class UploadGate:
    """A non-blocking cap on the request bodies read at the same time in this process.

    Example:
        >>> gate = UploadGate(1)
        >>> gate.try_enter(), gate.try_enter()
        (True, False)
        >>> gate.leave(); gate.try_enter()
        True
    """

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._sem = threading.BoundedSemaphore(slots)

    def try_enter(self) -> bool:
        """Take a slot if one is free (never waits)."""
        return self._sem.acquire(blocking=False)

    def leave(self) -> None:
        """Give the slot back."""
        self._sem.release()


__all__ = ["UploadGate", "Watchdog"]
