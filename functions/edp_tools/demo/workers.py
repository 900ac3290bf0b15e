"""The demo's long-running parts that write the warehouse, as threads sharing one handle.

Why threads and not the ``edp dev`` processes: DuckDB lets one process open the file, and the
local stream loader process holds it for its whole run, so a CDC flusher or ETL process cannot
write while it runs (measured; see NOTES). The demo therefore runs the *same code* in one
process, sharing one thread-safe :class:`~edp_tools.warehouse.duckdb_adapter.DuckDBWarehouse`:

- :class:`LoaderThread`: :class:`edp_tools.load.local_loader.LocalLoader` (the fast loader of the
  stream-load issue) on the ``events-loader`` subscription;
- :class:`CdcFlushThread`: :func:`edp.cdc.app.flush_once`, the ``cdc_flush`` function's core,
  called back to back like Cloud Scheduler's ticks (short runs so it stops quickly);
- :class:`ShopThread`: :class:`edp_tools.cdc.shop_simulator.ShopSimulator` paced at ``tps``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any

from edp.settings import Settings
from edp.warehouse.port import Warehouse

log = logging.getLogger(__name__)


class LoaderThread:
    """The local stream loader in a thread (stops on :meth:`stop`, flushing and acking)."""

    def __init__(self, warehouse: Warehouse, settings: Settings) -> None:
        from edp.bus.clients import get_subscriber
        from edp_tools.load.local_loader import LoaderConfig, LocalLoader

        config = LoaderConfig.from_settings(settings, max_batch_delay_s=0.25)
        self.loader = LocalLoader(warehouse, config, get_subscriber(settings))
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="demo-loader", daemon=True)

    def _run(self) -> None:
        try:
            self.loader.run(self._stop)
        except BaseException as exc:  # reported by the orchestrator
            self.error = exc
            log.exception("stream loader failed")

    def start(self, ready_timeout_s: float = 60.0) -> LoaderThread:
        """Start, and return once every pull worker pulls: started later, the replay's first
        seconds of events waited for the workers' imports (freshness of 4-8 s in the report)."""
        self._thread.start()
        deadline = time.monotonic() + ready_timeout_s
        while not self.loader.ready.wait(0.1):
            if self.error is not None or not self._thread.is_alive():
                break  # the orchestrator reports self.error
            if time.monotonic() > deadline:
                log.warning(
                    "stream loader not ready after %.0f s; replaying anyway", ready_timeout_s
                )
                break
        return self

    @property
    def rows_loaded(self) -> int:
        return self.loader.stats.rows_loaded

    @property
    def duplicates(self) -> int:
        return self.loader.stats.duplicates

    @property
    def dead_letters(self) -> int:
        return self.loader.stats.dead_letters

    @property
    def landed(self) -> int:
        """Events the loader has dealt with: written, dropped as repeats or dead-lettered (what
        the replay's pacer compares with ingest's acknowledgements)."""
        stats = self.loader.stats
        return stats.rows_loaded + stats.duplicates + stats.dead_letters

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)


class CdcFlushThread:
    """``cdc_flush``'s core called back to back (each call pulls for ``run_s``, flushes, acks)."""

    def __init__(self, warehouse: Warehouse, run_s: float = 3.0) -> None:
        self.warehouse = warehouse
        self.run_s = run_s
        self.calls = 0
        self.rows_written = 0
        self.per_table: Counter[str] = Counter()
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-cdc-flush", daemon=True)

    def _call(self, max_run_s: float) -> dict[str, Any]:
        from edp.cdc.app import FlushRequest, flush_once

        out = flush_once(self.warehouse, FlushRequest(max_run_s=max_run_s, refresh_staging=False))
        self.calls += 1
        self.rows_written += int(out.get("rows_written", 0))
        for table, n in (out.get("per_table") or {}).items():
            self.per_table[table] += int(n)
        return out

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._call(self.run_s)
            except Exception as exc:
                self.error = exc
                log.exception("cdc flush call failed; retrying")
                self._stop.wait(1.0)

    def start(self) -> CdcFlushThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def drain(self, idle_s: float = 2.0) -> None:
        """After :meth:`stop`: one last run until the subscriptions stayed empty ``idle_s``."""
        from edp.cdc.flush import CdcFlusher

        flusher = CdcFlusher(self.warehouse)
        stats = flusher.run(max_run_s=60.0, until_idle_s=idle_s)
        self.rows_written += stats.rows_written
        for table, n in stats.per_table.items():
            self.per_table[table] += n


class ShopThread:
    """The shop simulator writing PostgreSQL at ``tps`` transactions per second."""

    def __init__(self, dsn: str, *, tps: float, seed: int) -> None:
        from edp_tools.cdc.shop_simulator import ShopSimulator

        self.sim = ShopSimulator(dsn, seed=seed)
        self.tps = tps
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-shop", daemon=True)

    def _run(self) -> None:
        start = time.monotonic()
        done = 0
        try:
            while not self._stop.is_set():
                wait = start + done / self.tps - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                    continue
                self.sim.step()
                done += 1
        except Exception as exc:
            self.error = exc
            log.exception("shop simulator failed")

    @property
    def actions(self) -> dict[str, int]:
        return dict(self.sim.stats.actions)

    def start(self) -> ShopThread:
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self.sim.close()
