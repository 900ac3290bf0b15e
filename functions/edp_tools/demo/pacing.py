"""Backpressure for the demo's replay: its compressed clock slows down when the pipeline lags.

The replay sends each request when its last event's arrival comes round on a compressed clock
(24 h -> ``replay_seconds``). On a laptop shared with other work the pieces behind ingest (the
Pub/Sub emulator, the stream loader, the CDC reader and flusher) may not keep up with the day's
peak; sending on schedule then only grows a backlog that every later event waits behind. So the
replay's clock is *virtual*: it advances at ``rate`` x wall time, ``rate`` in ``[min_rate, 1]``,
and every ``tick_s`` the pacer looks at what was *acknowledged*:

- the stream's backlog as a wait: ingest's answers give the running count of accepted events
  and when each request was answered; the loader gives the count of events it has written (or
  dropped as repeats, or dead-lettered). The oldest answer whose events are not all counted in
  yet has waited ``lag`` seconds (the loader writes in arrival order, batch by batch);
- the slowest ingest answer completed in the tick (ingest itself saturated).

Over target (``target_lag_s`` / ``slow_request_ms``), the rate is cut by ``decrease``; under it, the
rate creeps back up by ``increase`` per tick (AIMD, as TCP's congestion window). With no signal
(``landed`` None) the rate stays 1 and the replay runs on its nominal schedule.

The clock also holds still after the first acknowledged events until the loader has landed some
(at most ``max_hold_s``): the first traffic through a fresh stack waited ~4 s somewhere between
ingest, the Pub/Sub emulator and the loader in every measured run, and the requests sent
meanwhile only queued behind it (client-side answers of 3-4 s, freshness of as much).

The replay states what happened: the effective speed-up (86,400 s / the replay's wall seconds)
against the nominal one, and how long the clock ran slow (:meth:`Pacer.describe`).

Example (the loader has landed 100 events; 100 more, accepted at 0 s, still wait at 3 s):
    >>> pacer = Pacer(lambda: 100, target_lag_s=1.0, tick_s=1.0, min_rate=0.5)
    >>> pacer.start(0.0)
    >>> pacer.observe(100, elapsed_ms=20.0, now=0.0)
    >>> pacer.observe(100, elapsed_ms=20.0, now=0.0)
    >>> pacer.virtual(3.0), pacer.rate, pacer.lag_s(3.0)
    (3.0, 0.6, 3.0)
    >>> round(pacer.wall_wait(4.2, now=3.0), 2)  # 1.2 virtual s at 0.6 of wall speed
    2.0
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

_DAY_S = 86_400.0


@dataclass
class Pacer:
    """The replay's virtual clock (see the module docstring).

    Args:
        landed: How many accepted events the loader has dealt with so far (written, dropped as
            repeats or dead-lettered); None: never slow down.
        target_lag_s: Slow down when the oldest accepted event not landed waited longer.
        slow_request_ms: Slow down when an ingest answer of the last tick took longer.
        min_rate: The slowest the clock runs (bounds the demo's duration: 0.5 = at most twice
            the planned replay time).
        decrease: Factor applied to the rate when over target.
        increase: Rate added back per tick when under target.
        tick_s: How often the signals are read (wall seconds).
        max_hold_s: Longest hold for the first events to land.
        max_rate: The fastest the clock runs: 1 (the nominal schedule) until
            :meth:`allow_speed_up` raises it.
    """

    landed: Callable[[], int] | None = None
    target_lag_s: float = 1.5
    slow_request_ms: float = 1_000.0
    min_rate: float = 0.5
    decrease: float = 0.6
    increase: float = 0.1
    tick_s: float = 0.5
    max_hold_s: float = 15.0
    max_rate: float = 1.0
    rate: float = 1.0
    #: why the clock may run faster than nominal (set by allow_speed_up)
    sped_up_because: str = ""
    #: wall seconds the clock held still waiting for the first events to land
    held_s: float = 0.0
    #: (wall seconds since start, rate from then on), one entry per change of rate
    history: list[tuple[float, float]] = field(default_factory=list)
    #: wall seconds the clock ran below full speed
    slowed_s: float = 0.0
    #: the largest wait seen at a tick
    max_lag_s: float = 0.0
    #: (answered at, events accepted up to and including this answer), oldest first
    _answers: deque[tuple[float, int]] = field(default_factory=deque)
    _accepted: int = 0
    _primed: bool = False
    _wall0: float = 0.0
    _wall: float = 0.0
    _virtual: float = 0.0
    _next_tick: float = 0.0
    _slowest_ms: float = 0.0

    def start(self, now: float) -> None:
        """Zero both clocks at wall time ``now``."""
        self._wall0 = self._wall = self._next_tick = now
        self._virtual = 0.0
        self.rate = 1.0
        self.history = [(0.0, 1.0)]
        self.slowed_s = self.max_lag_s = self._slowest_ms = 0.0
        self._answers.clear()
        self._accepted = 0
        self.held_s = 0.0
        self._primed = self.landed is None

    def allow_speed_up(self, max_rate: float, because: str) -> None:
        """From now on the clock may run up to ``max_rate`` x nominal, still only as fast as the
        pipeline keeps up (the same backpressure, now with a higher ceiling; without a
        backpressure signal, at once). The chaos demo raises it once every fault has recovered:
        the rest of the replay only has to be streamed.

        Example (no backpressure signal):
            >>> pacer = Pacer()
            >>> pacer.start(0.0)
            >>> pacer.allow_speed_up(4.0, "the faults were over")
            >>> pacer.virtual(2.0), round(pacer.wall_wait(16.0, now=2.0), 2)
            (8.0, 2.0)
        """
        self.max_rate = max(max_rate, 1.0)
        self.sped_up_because = because
        if self.landed is None:  # no backpressure signal to creep up by: straight to the ceiling
            self.rate = self.max_rate
            self.history.append((self._wall - self._wall0, self.rate))

    def observe(self, accepted: int, *, elapsed_ms: float, now: float) -> None:
        """An ingest answer came back at ``now`` after ``elapsed_ms``, accepting ``accepted``."""
        self._slowest_ms = max(self._slowest_ms, elapsed_ms)
        if accepted > 0:
            self._accepted += accepted
            self._answers.append((now, self._accepted))

    def lag_s(self, now: float) -> float:
        """How long the oldest accepted event not yet landed has waited (0: none waiting)."""
        if self.landed is None:
            return 0.0
        landed = self.landed()
        while self._answers and self._answers[0][1] <= landed:
            self._answers.popleft()
        return now - self._answers[0][0] if self._answers else 0.0

    def virtual(self, now: float) -> float:
        """The replay clock at wall time ``now`` (seconds of the compressed timeline)."""
        if now > self._wall:
            step = now - self._wall
            if self._holding():
                self.held_s += step
            else:
                self._virtual += step * self.rate
                if self.rate < 1.0:
                    self.slowed_s += step
            self._wall = now
        if now >= self._next_tick:
            self._next_tick = now + self.tick_s
            self._adjust(now)
        return self._virtual

    def wall_wait(self, at: float, *, now: float) -> float:
        """Wall seconds until the replay clock reaches ``at`` at the current rate (<= 0: due)."""
        return (at - self.virtual(now)) / self.rate

    def _holding(self) -> bool:
        """Whether the clock waits for the first acknowledged events to land."""
        if self._primed or self.landed is None:
            return False
        if self.landed() > 0 or self.held_s >= self.max_hold_s:
            self._primed = True
            return False
        return self._accepted > 0

    def _adjust(self, now: float) -> None:
        if self.landed is None:
            return
        lag = self.lag_s(now)
        self.max_lag_s = max(self.max_lag_s, lag)
        behind = lag > self.target_lag_s or self._slowest_ms > self.slow_request_ms
        self._slowest_ms = 0.0
        if behind:
            rate = max(self.min_rate, self.rate * self.decrease)
        else:
            rate = min(self.max_rate, self.rate + self.increase)
        if rate != self.rate:
            self.rate = round(rate, 6)
            self.history.append((now - self._wall0, self.rate))

    def describe(self, replay_seconds_planned: float, replay_seconds: float) -> str:
        """One sentence for the report: which way the replay kept the pipeline up to date."""
        nominal = _DAY_S / replay_seconds_planned
        effective = _DAY_S / replay_seconds if replay_seconds > 0 else nominal
        if self.landed is None:
            how = "on its fixed schedule (no backpressure)"
        elif self.slowed_s < self.tick_s:
            how = (
                "on schedule: the pieces kept up (backpressure on, never needed; the oldest "
                f"event waiting for the loader waited {self.max_lag_s:.1f} s at most)"
            )
        else:
            slowest = min(rate for _, rate in self.history)
            how = (
                f"paced to what the machine sustained: the clock ran slow for "
                f"{self.slowed_s:.0f} s (down to {slowest:.0%} of the nominal speed) when the "
                f"oldest event waiting for the loader passed {self.target_lag_s:g} s or an "
                f"ingest answer took over {self.slow_request_ms / 1000:g} s (longest wait "
                f"{self.max_lag_s:.1f} s)"
            )
        held = (
            f"; the clock held {self.held_s:.1f} s for the first events to land"
            if self.held_s >= 0.1
            else ""
        )
        fastest = max(rate for _, rate in self.history) if self.history else 1.0
        kept_up = " (as fast as the pipeline kept up)" if self.landed is not None else ""
        sped = (
            f"; once {self.sped_up_because}, it ran up to {fastest:.1f}x the nominal speed{kept_up}"
            if fastest > 1.0
            else ""
        )
        return (
            f"Replay speed: the day's 24 h in {replay_seconds:.0f} s, {effective:,.0f}x "
            f"(nominal {nominal:,.0f}x in {replay_seconds_planned:.0f} s), {how}{held}{sped}."
        )
