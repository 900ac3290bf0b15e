"""The stream loader as an ``edp dev`` component: events-loader -> raw.user_events (DuckDB)."""

from __future__ import annotations

from edp_tools.local.processes import ManagedProcess
from edp_tools.local.scrape import metered
from edp_tools.local.stack import Component, Health, StackContext, component


@component
class StreamLoader(Component):
    """``python -m edp_tools.load run`` as a child process (SIGTERM: flush, ack, exit)."""

    name = "stream-loader"
    order = 50  # after the emulator (10), topology (30) and the warehouse tables (40)
    description = "events subscription -> raw.user_events (local loader)"

    def __init__(self) -> None:
        self.proc: ManagedProcess | None = None

    def start(self, ctx: StackContext) -> None:
        self.proc = ctx.spawn(
            self.name,
            # Per-batch DuckDB handle: the served cdc_flush / etl functions write the same file.
            metered(ctx, self.name, "edp_tools.load", "run", "--no-ensure-topology",
                    "--share-warehouse"),
        )  # fmt: skip
        proc = self.proc
        proc.wait_ready(lambda: "loader ready" in proc.log_tail(), timeout=120)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()

    def health(self) -> Health:
        if self.proc is None or not self.proc.running:
            return Health(False, "not running")
        return Health(True, f"pid {self.proc.pid}, loading {self.description.split(' ->')[0]}")

    def processes(self) -> list[ManagedProcess]:
        return [self.proc] if self.proc else []
