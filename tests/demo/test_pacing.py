"""The replay's backpressure: the pacer's clock on its own, then the real Replayer sending to a
local HTTP endpoint while a loader it watches lags behind."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pytest

from edp_tools.demo.pacing import Pacer
from edp_tools.demo.replay import Replayer
from edp_tools.generator import Generator, GeneratorConfig


def _run_clock(pacer: Pacer, seconds: float, step: float = 0.1) -> float:
    """Advance the pacer's wall clock from 0 to ``seconds``; returns the virtual time."""
    now = 0.0
    while now < seconds - 1e-9:
        now = round(now + step, 6)
        pacer.virtual(now)
    return pacer.virtual(seconds)


def test_without_a_signal_the_clock_is_the_wall_clock() -> None:
    pacer = Pacer()
    pacer.start(0.0)
    pacer.observe(100, elapsed_ms=5_000.0, now=0.0)  # slow answers alone change nothing
    assert _run_clock(pacer, 10.0) == pytest.approx(10.0)
    assert pacer.rate == 1.0
    assert pacer.slowed_s == 0.0
    assert "fixed schedule" in pacer.describe(60.0, 60.0)


def test_a_speed_up_creeps_to_its_ceiling_while_the_loader_keeps_up() -> None:
    # Nothing waits (every accepted event has landed), so each 0.5 s tick adds 0.1 to the rate:
    # 1.0 before the speed-up; after it 1.1, 1.2, ... reaching the ceiling 2.0 after 10 ticks
    # (5 s) and staying there. Virtual time over the 10 s after it, by hand: the first 5 s
    # average (1.0 + 2.0) / 2 = 1.5 minus half a step of lag per tick ~ 7.25, then 5 s at 2.0.
    landed = 100
    pacer = Pacer(lambda: landed, target_lag_s=1.0, increase=0.1, tick_s=0.5)
    pacer.start(0.0)
    pacer.observe(100, elapsed_ms=10.0, now=0.0)
    assert _run_clock(pacer, 5.0) == pytest.approx(5.0)  # nominal: nothing raised the ceiling
    assert pacer.rate == 1.0
    pacer.allow_speed_up(2.0, "the faults were over")
    now, virtual0 = 5.0, pacer.virtual(5.0)
    while now < 15.0 - 1e-9:
        now = round(now + 0.1, 6)
        pacer.virtual(now)
    assert pacer.rate == 2.0 and max(rate for _, rate in pacer.history) == 2.0
    assert pacer.virtual(15.0) - virtual0 == pytest.approx(17.25, abs=0.5)
    assert pacer.slowed_s == 0.0
    assert "once the faults were over, it ran up to 2.0x the nominal speed" in pacer.describe(
        60.0, 40.0
    )


def test_a_speed_up_still_yields_to_a_backlog() -> None:
    landed = 1
    pacer = Pacer(lambda: landed, target_lag_s=1.0, min_rate=0.5, tick_s=0.5)
    pacer.start(0.0)
    pacer.allow_speed_up(4.0, "the faults were over")
    pacer.observe(100, elapsed_ms=10.0, now=0.0)  # 99 of them never land
    _run_clock(pacer, 10.0)
    assert pacer.rate == 0.5  # the ceiling rose; the backlog still brought it to the floor
    # the ticks at 0.1 s and 0.6 s saw waits under the 1 s target (+0.1 each), the next one over
    assert max(rate for _, rate in pacer.history) == 1.2


def test_a_backlog_slows_the_clock_down_to_its_floor_and_no_further() -> None:
    landed = 0  # the loader lands nothing
    pacer = Pacer(lambda: landed, target_lag_s=1.0, min_rate=0.5, tick_s=0.5)
    pacer.start(0.0)
    pacer.observe(100, elapsed_ms=10.0, now=0.0)
    landed = 1  # past the first-events hold; 99 events of the answer still wait
    virtual = _run_clock(pacer, 10.0)
    assert pacer.rate == 0.5
    assert min(rate for _, rate in pacer.history) == 0.5
    # 1 s on target, then slower: well under the wall's 10 s, at least the floor's 5 s
    assert 5.0 <= virtual < 7.0
    assert pacer.slowed_s > 8.0
    assert pacer.max_lag_s == pytest.approx(10.0, abs=0.6)
    text = pacer.describe(60.0, 75.0)
    assert "paced to what the machine sustained" in text
    assert "1,152x (nominal 1,440x in 60 s)" in text


def test_the_clock_recovers_once_the_loader_caught_up() -> None:
    landed = 1
    pacer = Pacer(lambda: landed, target_lag_s=1.0, min_rate=0.5, increase=0.1, tick_s=0.5)
    pacer.start(0.0)
    pacer.observe(101, elapsed_ms=10.0, now=0.0)
    _run_clock(pacer, 5.0)
    assert pacer.rate == 0.5
    landed = 101  # everything acknowledged has landed
    now = 5.0
    while now < 8.0:
        now = round(now + 0.1, 6)
        pacer.virtual(now)
    assert pacer.rate == 1.0  # 5 ticks of +0.1 from 0.5
    assert pacer.lag_s(now) == 0.0


def test_slow_ingest_answers_slow_the_clock_without_a_backlog() -> None:
    pacer = Pacer(lambda: 10**9, slow_request_ms=1_000.0, tick_s=0.5)
    pacer.start(0.0)
    pacer.virtual(0.0)
    pacer.observe(0, elapsed_ms=2_500.0, now=0.2)
    pacer.virtual(0.6)
    assert pacer.rate == pytest.approx(0.6)
    pacer.virtual(1.2)  # nothing slow since the last tick: recovering
    assert pacer.rate == pytest.approx(0.7)


def test_the_clock_holds_until_the_first_accepted_events_land_at_most_max_hold() -> None:
    landed = 0
    pacer = Pacer(lambda: landed, max_hold_s=3.0)
    pacer.start(0.0)
    assert pacer.virtual(1.0) == pytest.approx(1.0)  # nothing accepted yet: no hold
    pacer.observe(100, elapsed_ms=10.0, now=1.0)
    assert pacer.virtual(2.0) == pytest.approx(1.0)  # held
    landed = 100
    assert pacer.virtual(3.0) == pytest.approx(2.0)  # released
    assert pacer.held_s == pytest.approx(1.0)

    stuck = Pacer(lambda: 0, max_hold_s=3.0, target_lag_s=1e9)
    stuck.start(0.0)
    stuck.observe(100, elapsed_ms=10.0, now=0.0)
    assert _run_clock(stuck, 5.0) == pytest.approx(2.0)  # held 3 s, then runs on
    assert stuck.held_s == pytest.approx(3.0)
    assert "held 3.0 s" in stuck.describe(60.0, 63.0)


def test_lag_is_the_wait_of_the_oldest_answer_not_landed() -> None:
    landed = 0
    pacer = Pacer(lambda: landed)
    pacer.start(0.0)
    pacer.observe(100, elapsed_ms=1.0, now=1.0)
    pacer.observe(0, elapsed_ms=1.0, now=1.5)  # all refused: nothing to wait for
    pacer.observe(50, elapsed_ms=1.0, now=2.0)
    assert pacer.lag_s(4.0) == pytest.approx(3.0)
    landed = 100
    assert pacer.lag_s(4.0) == pytest.approx(2.0)
    landed = 150
    assert pacer.lag_s(4.0) == 0.0


# --- the Replayer with a pacer ----------------------------------------------------------------


class _Ingest(BaseHTTPRequestHandler):
    """Answers every batch 200 (all accepted) and counts the events it got."""

    events = 0
    lock = threading.Lock()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        with _Ingest.lock:
            _Ingest.events += body.count(b'"event_id"')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        """No access log: the test asserts on what the server received, not on its log."""


@pytest.fixture
def ingest_url() -> Iterator[str]:
    _Ingest.events = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ingest)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _day(n_days: int = 1) -> tuple[pa.Table, datetime]:
    start = (datetime.now(UTC) - timedelta(days=2)).date()
    gen = Generator(GeneratorConfig(start=start, days=n_days, seed=3, scale=0.0005))
    return gen.day(0).table, datetime.combine(start, datetime.min.time(), UTC)


def test_the_replay_runs_on_schedule_when_the_loader_keeps_up(ingest_url: str) -> None:
    table, day_start = _day()
    replayer = Replayer(table, day_start, ingest_url, replay_seconds=2.0, batch_size=20)
    replayer.pacer = Pacer(landed=lambda: replayer.stats.accepted)  # lands on acceptance
    stats = replayer.run()
    assert stats.accepted == stats.planned == _Ingest.events
    assert stats.seconds < 3.0
    assert replayer.pacer.slowed_s < replayer.pacer.tick_s
    assert "on schedule" in replayer.pacer.describe(2.0, stats.seconds)


def test_the_replay_slows_down_while_the_loader_lags(ingest_url: str) -> None:
    table, day_start = _day()
    started = time.monotonic()

    def landed() -> int:  # a loader that lands 2 s late, then keeps up
        return 0 if time.monotonic() - started < 2.0 else 1

    replayer = Replayer(table, day_start, ingest_url, replay_seconds=2.0, batch_size=20)
    replayer.pacer = Pacer(landed=landed, max_hold_s=1.0, min_rate=0.5, tick_s=0.1)
    stats = replayer.run()
    assert stats.accepted == stats.planned == _Ingest.events
    # the hold (1 s) plus slowed seconds stretch the 2 s replay
    assert stats.seconds > 3.0
    assert replayer.pacer.held_s == pytest.approx(1.0, abs=0.3)
    assert replayer.pacer.slowed_s > 0.5
