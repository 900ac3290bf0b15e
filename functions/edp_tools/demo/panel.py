"""What ``edp demo`` shows while it runs: timed phases and the live lag panel under the replay."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

from edp.errors import EdpError
from edp_tools.demo.collect import cdc_lag_ms, percentiles, recent_freshness_ms
from edp_tools.demo.replay import Replayer
from edp_tools.demo.workers import CdcFlushThread, LoaderThread, ShopThread


class Phases:
    """Times each phase of the run and prints its start and duration."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.seconds: dict[str, float] = {}
        #: Set by the run's SIGINT handler. A Ctrl-C that lands inside a DuckDB query is turned
        #: into a query error, which a worker or a probe may handle and go on; the flag makes
        #: the run stop at the latest when the current phase ends.
        self.interrupted = False

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        if self.interrupted:
            raise KeyboardInterrupt
        started = time.monotonic()
        self.console.print(f"[bold cyan]▶ {name}[/bold cyan]")
        yield
        if self.interrupted:
            raise KeyboardInterrupt
        self.seconds[name] = time.monotonic() - started
        self.console.print(f"  [green]✓[/green] {name} ({self.seconds[name]:.1f} s)")


@contextlib.contextmanager
def _ctrl_c_stays_ctrl_c() -> Iterator[None]:
    """DuckDB turns a SIGINT that lands during a query into ``RuntimeError('Query
    interrupted')`` (or an ``InterruptException`` the warehouse wraps in an EdpError); the demo
    must see Ctrl-C as Ctrl-C (clean stop, exit 130), neither a crash nor a swallowed error."""
    try:
        yield
    except RuntimeError as exc:
        if "interrupted" in str(exc).lower():
            raise KeyboardInterrupt from exc
        raise
    except EdpError as exc:
        if "interrupt" in type(exc.__cause__).__name__.lower():
            raise KeyboardInterrupt from exc
        raise


def p50_p99(values: list[float], what: str) -> str:
    if not values:
        return f"no {what} in the last 10 s"
    p50, p99 = percentiles(values)
    return f"p50 {p50:,.0f} ms, p99 {p99:,.0f} ms ({len(values):,} {what})"


class LagPanel:
    """The live numbers under the replay's progress bar."""

    def __init__(self) -> None:
        self.rows: dict[str, str] = {}
        self._last_query = 0.0

    def sample(  # noqa: PLR0917 - the pieces it watches
        self,
        wh: Any,
        replayer: Replayer,
        loader: LoaderThread,
        flusher: CdcFlushThread,
        shop: ShopThread,
        lo: dt.datetime,
    ) -> None:
        s = replayer.stats
        backlog = max(0, s.accepted - loader.rows_loaded - loader.duplicates)
        self.rows["ingest"] = (
            f"{s.accepted:,} accepted, {s.refused:,} refused, {s.unanswered:,} unanswered"
        )
        self.rows["stream load"] = f"{loader.rows_loaded:,} rows in raw, backlog ~{backlog:,}"
        self.rows["shop (PostgreSQL)"] = f"{sum(shop.actions.values()):,} transactions"
        self.rows["CDC flush"] = f"{flusher.rows_written:,} changes in raw.cdc_*"
        now = time.monotonic()
        if now - self._last_query >= 2.0:
            self._last_query = now
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=10)
            with contextlib.suppress(EdpError), _ctrl_c_stays_ctrl_c():
                fresh = recent_freshness_ms(wh, since, lo)
                self.rows["stream freshness (10 s)"] = p50_p99(fresh, "rows loaded")
                lag = [v for vs in cdc_lag_ms(wh, since).values() for v in vs]
                self.rows["CDC lag (10 s)"] = p50_p99(lag, "changes flushed")

    def table(self) -> Table:
        table = Table(show_header=False, box=None, padding=(0, 2))
        for key, value in self.rows.items():
            table.add_row(f"    [dim]{key}[/dim]", value)
        return table
