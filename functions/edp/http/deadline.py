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
  taken evicts the oldest slow holder or is refused at once (503 + ``Retry-After``) instead of
  queueing a thread behind slow clients, so the remaining threads stay free for health checks
  and fast requests.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import socket
import threading
import time
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Entry:
    """One body read being watched (the heap holds ``(deadline, seq, entry)`` tuples)."""

    deadline: float
    sock: socket.socket | None = None
    fired: bool = False
    cancelled: bool = False


#: The watchdog thread looks at its heap at least this often: it drops the entries of finished
#: reads a second's worth at a time, and a new deadline later than its next look needs no wake-up.
_TICK_S = 1.0
#: With nothing to watch for this long the thread ends (the next arm starts another).
_IDLE_EXIT_S = 60.0


class Watchdog:
    """Shuts the read side of sockets whose body read overran its deadline.

    Arming is a heap push under a lock: the thread is woken only for a deadline earlier than its
    next look (never for the usual seconds-long body deadline). Waking it per request - a futex
    wake, a thread switch and a GIL hand-off - cost the ingest worker more than the push itself.

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
        self._heap: list[tuple[float, int, _Entry]] = []
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._next_look = float("inf")  # when the thread next looks at the heap (under _cond)

    def arm(self, sock: socket.socket | None, deadline: float) -> _Entry:
        """Watch ``sock`` until :meth:`disarm`; shut its read side at ``deadline`` (monotonic)."""
        entry = _Entry(deadline, sock)
        if sock is None:
            return entry
        with self._cond:
            heapq.heappush(self._heap, (deadline, next(self._seq), entry))
            if self._thread is None or not self._thread.is_alive():
                self._next_look = float("inf")
                self._thread = threading.Thread(target=self._run, name="edp-body-deadline")
                self._thread.daemon = True
                self._thread.start()
            elif deadline < self._next_look:
                self._cond.notify()
        return entry

    def disarm(self, entry: _Entry) -> None:
        """Stop watching (the body was read, or the request failed otherwise)."""
        with self._cond:
            entry.cancelled = True

    def _run(self) -> None:
        idle_since: float | None = None
        with self._cond:
            while True:
                heap = self._heap
                while heap and heap[0][2].cancelled:
                    heapq.heappop(heap)
                now = time.monotonic()
                if not heap:
                    idle_since = now if idle_since is None else idle_since
                    if now - idle_since >= _IDLE_EXIT_S:
                        self._thread = None
                        return
                    self._next_look = now + _TICK_S
                    self._cond.wait(_TICK_S)
                    continue
                idle_since = None
                deadline, _, entry = heap[0]
                if deadline > now:
                    self._next_look = min(deadline, now + _TICK_S)
                    self._cond.wait(self._next_look - now)
                    continue
                heapq.heappop(heap)
                entry.fired = True
                if entry.sock is not None:
                    try:
                        entry.sock.shutdown(socket.SHUT_RD)
                    except OSError as exc:  # already closed by the client or the server
                        log.debug("body deadline: shutdown failed: %s", exc)


@dataclass
class Ticket:
    """One upload slot held by a request (``evicted``: its socket was shut for a newcomer)."""

    sock: socket.socket | None
    since: float
    evicted: bool = False


class UploadGate:
    """A cap on the request bodies read at the same time in this process, fair to fast clients.

    A newcomer that finds every slot taken evicts the oldest holder that has held its slot for
    at least ``min_hold_s`` (its socket's read side is shut, so its read ends and it is refused
    408), then waits up to ``wait_s`` for the slot. A body that is already in the buffers reads
    in microseconds, so fast clients get through while stalled uploads push each other out;
    with nothing to evict the newcomer is refused at once (503 + ``Retry-After``).

    Example:
        >>> gate = UploadGate(1, min_hold_s=60)
        >>> first = gate.enter(None); gate.enter(None) is None
        True
        >>> gate.leave(first); gate.enter(None) is not None
        True
    """

    def __init__(self, slots: int, *, min_hold_s: float = 0.2, wait_s: float = 0.1) -> None:
        self.slots = slots
        self.min_hold_s = min_hold_s
        self.wait_s = wait_s
        self._holders: list[Ticket] = []
        self._cond = threading.Condition()

    def enter(self, sock: socket.socket | None) -> Ticket | None:
        """A slot for the body read on ``sock``, or None if none could be had."""
        now = time.monotonic()
        with self._cond:
            if len(self._holders) >= self.slots:
                victim = next(
                    (
                        t
                        for t in self._holders
                        if not t.evicted and t.sock is not None and now - t.since >= self.min_hold_s
                    ),
                    None,
                )
                if victim is None:
                    return None
                victim.evicted = True
                _shut_read(victim.sock)
                deadline = now + self.wait_s
                while len(self._holders) >= self.slots:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    self._cond.wait(left)
            ticket = Ticket(sock, time.monotonic())
            self._holders.append(ticket)
            return ticket

    def leave(self, ticket: Ticket) -> None:
        """Give the slot back."""
        with self._cond:
            self._holders.remove(ticket)
            self._cond.notify()


def _shut_read(sock: socket.socket | None) -> None:
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RD)
    except OSError as exc:  # already closed
        log.debug("upload gate: shutdown failed: %s", exc)


__all__ = ["Ticket", "UploadGate", "Watchdog"]
