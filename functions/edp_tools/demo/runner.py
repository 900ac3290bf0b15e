"""``edp demo``: the whole platform end to end on this machine, then a report.

Phases (each timed and shown with a progress bar):

1. **stack**: the ``edp dev`` components (Pub/Sub emulator, PostgreSQL 15 with the shop
   database, topics, warehouse tables, the Cloud Run functions over HTTP, the CDC reader) in a
   fresh state folder, on free ports;
2. **history**: ``history_days`` generated days loaded on the fast path (generator ->
   ``raw.user_events``), so the marts and retention have depth;
3. **replay**: once the stream loader pulls, the next day replayed live over HTTP into the
   ``ingest`` function on a compressed timeline (:mod:`edp_tools.demo.replay`) that slows down
   while the loader lags (:mod:`edp_tools.demo.pacing`), while the shop simulator writes orders,
   payments, shipments and stock into PostgreSQL; the stream loader and the CDC flusher run
   (:mod:`edp_tools.demo.workers`); the live panel shows the lag;
4. **catch-up**: wait until every accepted event_id is in raw and the CDC slot has confirmed
   every source commit and the flusher has drained its subscriptions;
5. **etl**: the daily ETL workflow's calls to the ``etl`` function (:mod:`edp_tools.demo.etl`) for
   the replayed day with a lookback over the history;
6. **report**: the stack stops, the warehouse is read back (:mod:`edp_tools.demo.collect`) and
   ``index.html`` + ``summary.md`` are written (:mod:`edp_tools.demo.render`).

Ctrl-C (or SIGTERM) at any point stops the threads and every child process, in reverse order.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import shutil
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from edp.errors import EdpError
from edp_tools.demo.collect import (
    Accounting,
    ReportData,
    accounting,
    collect,
    live_distinct_count,
    percentiles,
)
from edp_tools.demo.config import DemoConfig
from edp_tools.demo.etl import EtlOutcome, run_daily_etl
from edp_tools.demo.pacing import Pacer
from edp_tools.demo.panel import LagPanel, Phases
from edp_tools.demo.probes import drain_count, pg_lsn
from edp_tools.demo.render import RunFacts, headline, render_html, render_markdown
from edp_tools.demo.replay import Replayer
from edp_tools.demo.stack import IN_PROCESS, build_stack
from edp_tools.demo.workers import CdcFlushThread, LoaderThread, ShopThread
from edp_tools.demo.workflow import EmulatorVenv, run_workflow

#: The write key the demo's ingest function accepts and the replay sends.
WRITE_KEY = "demo-write-key"
#: DuckDB checkpoint threshold of the demo's warehouse handle (above a large replay's WAL).
CHECKPOINT_AT = "2GB"


class DemoError(EdpError):
    """The demo could not finish (a stage failed or never caught up)."""


class StopRequestedError(Exception):
    """SIGTERM/SIGHUP asked the demo to stop."""


@dataclass
class DemoResult:
    """What ``edp demo`` prints at the end."""

    report: Path
    summary: Path
    accounting: Accounting
    data: ReportData
    facts: RunFacts
    headline: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.accounting.balances


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequestedError(signal.Signals(signum).name)


class DemoRunner:
    """One demo run (see the module docstring); :meth:`run` returns the result."""

    def __init__(self, config: DemoConfig, console: Console | None = None) -> None:
        self.cfg = config
        self.console = console or Console(stderr=True)
        self.phase = Phases(self.console)
        self._threads: list[Any] = []
        self.notes: list[str] = []

    # --- the run ------------------------------------------------------------------------------
    def run(self) -> DemoResult:
        previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
        signal.signal(signal.SIGINT, self._on_ctrl_c)
        saved_env = dict(os.environ)
        self.stack: Any = None
        try:
            return self._run()
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
            try:
                self._cleanup()
            finally:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                os.environ.clear()
                os.environ.update(saved_env)
                from edp.settings import get_settings

                get_settings.cache_clear()

    def _on_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        """Ctrl-C: remembered (see :attr:`Phases.interrupted`), then raised as usual."""
        self.phase.interrupted = True
        raise KeyboardInterrupt

    def _cleanup(self) -> None:
        for thread in reversed(self._threads):
            with contextlib.suppress(Exception):
                thread.stop()
        self._threads.clear()
        if getattr(self, "wh", None) is not None:
            with contextlib.suppress(Exception):
                self.wh.close()
        if self.stack is not None:
            self.stack.stop()
            self.stack = None

    def _on_event(self, name: str, event: str, detail: str) -> None:
        if event in ("started", "failed", "stop-failed"):
            colour = "green" if event == "started" else "red"
            suffix = f" — {detail}" if detail else ""
            self.console.print(f"  [{colour}]{event:>8}[/{colour}] {name}{suffix}")

    def _run(self) -> DemoResult:  # noqa: PLR0915 - the phases read best in one place
        from edp.settings import get_settings
        from edp_tools.generator import Generator, GeneratorConfig
        from edp_tools.generator.sinks import write_warehouse
        from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

        cfg = self.cfg
        started = time.monotonic()
        # Sessions that straddle midnight have events "after now" when the demo runs just after
        # midnight; the loader's lag histogram warns on each (harmless, noisy).
        logging.getLogger("opentelemetry.sdk.metrics").setLevel(logging.ERROR)
        demo_start = dt.datetime.now(dt.UTC)
        state_dir = cfg.state_dir.absolute()
        shutil.rmtree(state_dir, ignore_errors=True)
        state_dir.mkdir(parents=True)
        env = {
            "EDP_STATE_DIR": str(state_dir),
            "EDP_WAREHOUSE": "duckdb",
            "EDP_DUCKDB_PATH": str(state_dir / "warehouse.duckdb"),
            "EDP_WRITE_KEYS": WRITE_KEY,
            "EDP_CDC_HEARTBEAT_INTERVAL_SEC": "1",
            # Reporting days = the generator's UTC days, so the replayed day is one report day.
            "EDP_ETL_TIMEZONE": "UTC",
        }
        root = Path(__file__).resolve().parents[3]  # the checkout (functions/edp_tools/demo/..)
        workflow_yaml = root / "workflows" / "daily_etl.yaml"
        wf_venv: EmulatorVenv | None = None
        if cfg.etl_mode != "calls" and workflow_yaml.is_file():
            wf_venv = EmulatorVenv(root).start()  # builds while the other phases run
            self._threads.append(wf_venv)
        self.stack = build_stack(state_dir, self._on_event, env)
        with self.phase("start the local stack"):
            self.stack.start()
        settings = get_settings()
        values = self.stack.ctx.values
        functions: dict[str, str] = values.get("functions", {})
        for needed in ("ingest", "etl"):
            if needed not in functions:
                raise DemoError(f"the stack serves no {needed!r} function (functions/main.py)")
        shop_dsn = values.get("cdc_source_dsn")
        if not shop_dsn:
            raise DemoError("the stack has no CDC source (cdc-source component missing)")

        self.wh: Any = DuckDBWarehouse(
            settings.duckdb_file, settings=settings, estimate_bytes="never"
        )
        gen = Generator(
            GeneratorConfig(
                start=cfg.history_start, days=cfg.days, seed=cfg.seed, scale=cfg.size.scale
            )
        )
        with self.phase(f"load {cfg.size.history_days} days of history (fast path)"):
            with self._progress() as progress:
                task = progress.add_task("history days", total=cfg.size.history_days)
                history_rows = 0
                for day in range(cfg.size.history_days):
                    history_rows += write_warehouse(self.wh, gen.day(day))
                    progress.advance(task)
            self.console.print(f"    {history_rows:,} events into raw.user_events")
            live_day = gen.day(cfg.size.history_days)
            replayer = Replayer(
                live_day.table,
                cfg.live_day_start,
                functions["ingest"],
                replay_seconds=cfg.size.replay_seconds,
                write_key=WRITE_KEY,
                batch_size=cfg.batch_size,
                concurrency=cfg.concurrency,
                bad_fraction=cfg.size.bad_fraction,
                seed=cfg.seed,
            )

        loader, flusher = self._start_writers(settings)
        # backpressure from the loader when it counts what it landed (the threaded one does)
        landed = getattr(loader, "landed", None)
        replayer.pacer = Pacer(landed=(lambda: loader.landed) if landed is not None else None)
        shop = self._start_shop(shop_dsn)
        lo = dt.datetime.combine(cfg.live_day, dt.time(), dt.UTC) - dt.timedelta(days=1)
        replay_start = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        with self.phase(f"replay {cfg.live_day} live over HTTP"):
            self._replay(replayer, loader, flusher, shop, lo)
        shop.stop()
        self._threads.remove(shop)
        end_lsn = pg_lsn(shop_dsn, "SELECT pg_current_wal_lsn()::text")

        with self.phase("wait for the stream load and CDC to catch up"):
            self._catch_up(
                replayer=replayer,
                loader=loader,
                flusher=flusher,
                shop_dsn=shop_dsn,
                end_lsn=end_lsn,
                replay_start=replay_start,
                lo=lo,
            )
        from edp.cdc.staging import refresh_staging

        refresh_staging(self.wh)
        bad_messages = drain_count(settings.subscription_bad_events_archive)
        self.wh.close()
        self.wh = None

        execution_id = f"demo-{uuid.uuid4()}"
        # The shop writes in real time (today); the events are history + yesterday. One run
        # for today with a lookback over every generated day covers both.
        run_date = cfg.live_day + dt.timedelta(days=1)
        lookback = cfg.size.history_days + 1
        outcome = self._etl(
            wf_venv, workflow_yaml, functions["etl"], run_date, lookback, execution_id
        )

        components = [c.name for c in self.stack.classes]
        with self.phase("stop the stack"):
            self.stack.stop()
            self.stack = None

        with self.phase("read back and write the report"):
            self.wh = DuckDBWarehouse(
                settings.duckdb_file, settings=settings, read_only=True, estimate_bytes="never"
            )
            data = collect(
                self.wh,
                first_day=cfg.history_start,
                last_day=cfg.live_day,
                replay_start=replay_start,
                execution_id=execution_id,
                demo_start=demo_start,
                t0=replayer.stats.started_at,
            )
            acc = accounting(
                self.wh,
                replay=replayer.stats,
                bad_topic_messages=bad_messages,
                replay_start=replay_start,
                lo=lo,
            )
            self.wh.close()
            self.wh = None
            facts = self._facts(
                replayer, shop, outcome, components, total=time.monotonic() - started
            )
            result = self._write(data, acc, facts)
        result.facts.phases = dict(self.phase.seconds)
        result.facts.total_seconds = time.monotonic() - started
        # rewrite with the final phase timings included
        return self._write(data, acc, result.facts)

    # --- phases -------------------------------------------------------------------------------
    def _start_writers(self, settings: Any) -> tuple[Any, Any]:
        """The stream loader and the CDC flusher (threads on the shared handle; ``--chaos``
        runs them as processes, :mod:`edp_tools.demo.chaos`)."""
        from edp_tools.warehouse.duckdb_adapter import DuckDBWarehouse

        # The loader and the CDC flusher commit through one handle all through the replay; at
        # DuckDB's default 16 MiB of WAL a commit checkpointed inline, holding the writer lock
        # for 3-12 s mid-replay on a busy laptop (freshness and CDC lag p99 of that much). So
        # the history is checkpointed now (closing the handle) and the replay's WAL when the
        # handle closes after the catch-up.
        self.wh.close()
        self.wh = DuckDBWarehouse(
            settings.duckdb_file,
            settings=settings.model_copy(update={"duckdb_checkpoint_threshold": CHECKPOINT_AT}),
            estimate_bytes="never",
        )
        loader = LoaderThread(self.wh, settings).start()  # returns once its workers pull
        self._threads.append(loader)
        flusher = CdcFlushThread(self.wh).start()
        self._threads.append(flusher)
        return loader, flusher

    def _start_shop(self, shop_dsn: str) -> Any:
        """The shop simulator writing PostgreSQL during the replay."""
        shop = ShopThread(shop_dsn, tps=self.cfg.size.shop_tps, seed=self.cfg.seed).start()
        self._threads.append(shop)
        return shop

    def _stream_done(self, have: int, want: int) -> bool:
        """Whether the stream load has caught up (every accepted event_id is in raw)."""
        return have >= want

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("    {task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )

    def _replay(
        self,
        replayer: Replayer,
        loader: LoaderThread,
        flusher: CdcFlushThread,
        shop: ShopThread,
        lo: dt.datetime,
    ) -> None:
        progress = self._progress()
        task = progress.add_task("events sent", total=replayer.stats.planned)
        thread = threading.Thread(target=replayer.run, name="demo-replay", daemon=True)
        self._threads.append(replayer)
        thread.start()
        lag = LagPanel()
        with Live(Group(progress, lag.table()), console=self.console, refresh_per_second=4) as live:
            while thread.is_alive():
                thread.join(0.5)
                lag.sample(self.wh, replayer, loader, flusher, shop, lo)
                progress.update(task, completed=replayer.progress()[0])
                live.update(Group(progress, lag.table()))
        if not self.console.is_terminal:
            self.console.line()
        self._threads.remove(replayer)
        if loader.error is not None:
            raise DemoError(f"stream loader failed: {loader.error}")
        if shop.error is not None:
            self.notes.append(f"The shop simulator stopped early: {shop.error}")

    def _catch_up(
        self,
        *,
        replayer: Replayer,
        loader: LoaderThread,
        flusher: CdcFlushThread,
        shop_dsn: str,
        end_lsn: str,
        replay_start: dt.datetime,
        lo: dt.datetime,
    ) -> None:
        from edp.settings import get_settings

        slot = get_settings().cdc_slot_name
        want = len(replayer.stats.accepted_ids)
        deadline = time.monotonic() + self.cfg.catch_up_timeout_s
        progress = self._progress()
        events = progress.add_task("accepted events in raw", total=want)
        cdc = progress.add_task("CDC slot confirmed", total=1)
        stream_done = cdc_done = False
        with Live(progress, console=self.console, refresh_per_second=4):
            while not (stream_done and cdc_done):
                if time.monotonic() > deadline:
                    raise DemoError(
                        f"no catch-up within {self.cfg.catch_up_timeout_s:.0f} s "
                        f"(stream {'done' if stream_done else 'behind'}, "
                        f"CDC {'done' if cdc_done else 'behind'})"
                    )
                if loader.error is not None:
                    raise DemoError(f"stream loader failed: {loader.error}")
                have = live_distinct_count(self.wh, replay_start, lo)
                progress.update(events, completed=have)
                stream_done = self._stream_done(have, want)
                if not cdc_done:
                    cdc_done = bool(
                        pg_lsn(
                            shop_dsn,
                            "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                            "WHERE slot_name = %s",
                            end_lsn,
                            slot,
                        )
                    )
                    progress.update(cdc, completed=int(cdc_done))
                if not (stream_done and cdc_done):
                    time.sleep(0.5)
        if not self.console.is_terminal:
            self.console.line()
        flusher.stop()
        self._threads.remove(flusher)
        flusher.drain(idle_s=2.0)
        loader.stop()
        self._threads.remove(loader)
        if flusher.error is not None:
            self.notes.append(f"a cdc_flush call failed once and was retried: {flusher.error}")

    def _etl(  # noqa: PLR0917 - the workflow's inputs
        self,
        wf_venv: EmulatorVenv | None,
        workflow_yaml: Path,
        etl_url: str,
        run_date: dt.date,
        lookback: int,
        execution_id: str,
    ) -> EtlOutcome:
        """The daily ETL: the workflow in the emulator, or its calls from here."""
        python = None
        if wf_venv is not None:
            with self.phase("wait for the workflows-emulator venv"):
                python = wf_venv.wait()
            if python is None:
                if self.cfg.etl_mode == "workflow":
                    raise DemoError(wf_venv.error or "no workflows-emulator")
                self.notes.append(
                    f"The Workflows emulator was not available ({wf_venv.error}); the demo made "
                    "the workflow's calls itself."
                )
            elif wf_venv.built:
                self.notes.append(
                    f"The workflows-emulator venv (.nox/workflows) was built by this run in "
                    f"{wf_venv.seconds:.0f} s, in the background (reused by later runs)."
                )
        title = f"daily ETL for {run_date} with a {lookback}-day lookback"
        if python is not None:
            with self.phase(f"{title} (workflows/daily_etl.yaml in the workflows-emulator)"):
                wf = run_workflow(
                    python,
                    workflow_yaml,
                    etl_url,
                    run_date,
                    lookback_days=lookback,
                    execution_id=execution_id,
                )
                self.console.print(f"    {json.dumps(wf.result)}")
            return EtlOutcome(run_date, lookback, execution_id, seconds=wf.seconds, mode="workflow")
        with self.phase(f"{title} (the workflow's calls, made by the demo)"):
            outcome = run_daily_etl(
                etl_url, run_date, lookback_days=lookback, execution_id=execution_id
            )
            for call in outcome.calls:
                self.console.print(
                    f"    {call.target}: {call.seconds:.2f} s, "
                    f"{call.reply.get('rows_written', 0):,} rows"
                )
        return outcome

    # --- results ------------------------------------------------------------------------------
    def _facts(
        self,
        replayer: Replayer,
        shop: ShopThread,
        outcome: EtlOutcome,
        components: list[str],
        total: float,
    ) -> RunFacts:
        cfg = self.cfg
        s = replayer.stats
        notes = [
            "Ran as separate processes (the `edp dev` components): "
            + ", ".join(components)
            + ". Events went over HTTP into the served `ingest` function "
            "(functions-framework), through the Pub/Sub emulator; shop changes went from "
            "PostgreSQL 15 through the local Debezium-format CDC reader (pgoutput) and Pub/Sub.",
            "Ran inside the demo process, sharing one DuckDB handle: the local stream loader "
            "(`edp_tools.load.local_loader.LocalLoader`, the fast loader; not the Beam job, whose "
            "local runner manages ~300 events/s) and the `cdc_flush` function's core "
            "(`edp.cdc.app.flush_once`, called back to back as Cloud Scheduler would call the "
            "function; the served `cdc_flush` function was up but not called). Why: DuckDB lets "
            "one process open the file, so these writers cannot be separate processes next to "
            f"each other ({', '.join(IN_PROCESS)} components replaced).",
            f"Daily ETL: run date {outcome.run_date} with a {outcome.lookback_days}-day lookback "
            f"({outcome.lookback_days + 1} reporting days, UTC) through the served `etl` "
            "function over HTTP: "
            + (
                "workflows/daily_etl.yaml itself, executed by the workflows-emulator "
                "(auth blocks stripped: the emulator has no OIDC)."
                if outcome.mode == "workflow"
                else "the calls of workflows/daily_etl.yaml in its order (staging layer, then "
                "the marts in parallel), made by the demo — not through the workflows-emulator."
            ),
            f"History: {cfg.size.history_days} generated days loaded on the fast path "
            "(generator -> raw.user_events), the same code `edp generate` uses.",
            f"Replay: {s.planned:,} events in {s.requests:,} requests of up to {cfg.batch_size}, "
            f"{cfg.concurrency} in flight; {s.malformed:,} deliberately malformed "
            f"({', '.join(sorted(s.refusal_types)) or 'none refused'}); "
            f"HTTP statuses {dict(sorted(s.status_counts.items()))}; {s.retries} retries.",
            "Shop simulator: "
            + ", ".join(f"{k} {v}" for k, v in sorted(shop.actions.items()))
            + f" ({cfg.size.shop_tps:g} transactions/s).",
            *self.notes,
        ]
        return RunFacts(
            size=cfg.size_name,
            scale=cfg.size.scale,
            history_days=cfg.size.history_days,
            live_day=cfg.live_day,
            replay_seconds_planned=cfg.size.replay_seconds,
            replay_seconds=s.seconds,
            sent_per_second=dict(s.sent_per_second),
            request_ms=list(s.request_ms),
            status_counts=dict(s.status_counts),
            refusal_types=dict(s.refusal_types),
            shop_actions=shop.actions,
            etl_calls=[
                {"target": c.target, "seconds": c.seconds, "attempts": c.attempts}
                for c in outcome.calls
            ],
            etl_seconds=outcome.seconds,
            etl_mode=outcome.mode,
            phases=dict(self.phase.seconds),
            total_seconds=total,
            components=components,
            in_process=list(IN_PROCESS),
            notes=notes,
            pacing=replayer.pacer.describe(cfg.size.replay_seconds, s.seconds),
            paced_seconds=replayer.pacer.slowed_s,
        )

    def _write(self, data: ReportData, acc: Accounting, facts: RunFacts) -> DemoResult:
        out = self.cfg.out_dir
        out.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        report = out / "index.html"
        summary = out / "summary.md"
        report.write_text(render_html(data, acc, facts, now), encoding="utf-8")
        summary.write_text(render_markdown(data, acc, facts, now), encoding="utf-8")
        figures = {
            "generated_at": now.isoformat(),
            "size": facts.size,
            "live_day": facts.live_day.isoformat(),
            "accounting": {
                **dataclasses.asdict(acc),
                "ingest_balances": acc.ingest_balances,
                "raw_balances": acc.raw_balances,
                "balances": acc.balances,
            },
            "history_rows": data.history_rows,
            "live_rows": data.live_rows,
            "freshness_ms_p50_p99": data.freshness_p,
            "cdc_lag_ms_p50_p99": data.cdc_lag_p,
            "etl_seconds": facts.etl_seconds,
            "etl_mode": facts.etl_mode,
            "phases_s": facts.phases,
            "total_s": facts.total_seconds,
            "replay_s": facts.replay_seconds,
            "replay_speedup": facts.speedup,
            "replay_speedup_nominal": facts.speedup_nominal,
            "replay_paced_s": facts.paced_seconds,
            "ingest_request_ms_p50_p99": percentiles(facts.request_ms),
        }
        (out / "report.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
        return DemoResult(report, summary, acc, data, facts, headline(data, acc, facts))
