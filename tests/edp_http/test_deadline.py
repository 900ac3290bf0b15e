"""The body-read watchdog on real sockets: deadlines fire, finished reads are forgotten, and
arming the usual seconds-long deadline does not wake the watchdog thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from edp.http.deadline import Watchdog


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_a_short_deadline_fires_while_the_thread_sleeps_on_a_long_one(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    dog = Watchdog()
    long = dog.arm(a, time.monotonic() + 30)  # the thread now sleeps up to its next tick
    time.sleep(0.05)
    began = time.monotonic()
    short = dog.arm(a, began + 0.1)
    a.settimeout(5)
    assert a.recv(10) == b""  # the watchdog shut the read side: end of file
    assert short.fired and not long.fired
    assert time.monotonic() - began < 0.9  # woken for it, not at the next one-second tick


def test_a_disarmed_read_never_fires_and_is_dropped(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    dog = Watchdog()
    entries = [dog.arm(a, time.monotonic() + 0.2) for _ in range(500)]
    for entry in entries:
        dog.disarm(entry)
    time.sleep(1.5)
    b.sendall(b"still open")
    a.settimeout(2)
    assert a.recv(20) == b"still open"
    assert not any(e.fired for e in entries)
    assert dog._heap == []


def test_arming_a_seconds_long_deadline_does_not_wake_the_thread(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, _ = pair
    dog = Watchdog()
    dog.disarm(dog.arm(a, time.monotonic() + 10))  # starts the thread
    time.sleep(0.05)
    wakes = 0
    notify = dog._cond.notify

    def counting(n: int = 1) -> None:
        nonlocal wakes
        wakes += 1
        notify(n)

    dog._cond.notify = counting  # type: ignore[method-assign]
    busy = threading.Event()
    for i in range(2000):
        dog.disarm(dog.arm(a, time.monotonic() + 10))
        if i % 100 == 0:
            busy.wait(0.001)  # give the watchdog thread its chances to run
    assert wakes == 0
