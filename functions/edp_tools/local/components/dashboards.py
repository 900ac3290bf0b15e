"""The dashboards page of ``edp dev``: the eight Cloud Monitoring dashboards, rendered locally.

Scrapes every ``/metrics`` endpoint the components registered (:mod:`edp_tools.local.scrape`:
each function, the stream loader, the CDC reader and the CDC flush loop) every 5 s and serves
``http://127.0.0.1:<port>/`` (:mod:`edp_tools.observability.dashboards`); ``/targets`` lists the
endpoints and their state. The warehouse tables beside the charts are read with a connection
opened per page view, so the DuckDB file stays free for the writers between views.
"""

from __future__ import annotations

from typing import Any

from edp_tools.local.processes import free_port
from edp_tools.local.scrape import targets
from edp_tools.local.stack import Component, Health, StackContext, component
from edp_tools.observability.dashboards import Scraper, serve
from edp_tools.observability.promql import Store

#: Offset from ``--port-base`` (the functions take the first few ports).
PORT_OFFSET = 20


@component
class Dashboards(Component):
    """Local rendering of ``terraform/dashboards/*.json`` over scraped metrics."""

    name = "dashboards"
    order = 90  # after every component that registers a /metrics target
    description = "Dashboards (terraform/dashboards, local metrics + warehouse)"

    def __init__(self) -> None:
        self.scraper: Scraper | None = None
        self.server: Any = None

    def start(self, ctx: StackContext) -> None:
        settings = ctx.settings

        def query_warehouse(sql: str) -> list[dict[str, Any]]:
            from edp.warehouse import get_warehouse

            warehouse = get_warehouse(settings)
            try:
                return list(warehouse.query(sql).rows)
            finally:
                warehouse.close()

        self.scraper = Scraper(targets(ctx), Store()).start()
        port = ctx.port_base + PORT_OFFSET if ctx.port_base else free_port()
        self.server = serve(self.scraper, port, query_warehouse)
        ctx.endpoints["dashboards"] = f"http://127.0.0.1:{port}/"
        ctx.endpoints["metrics targets"] = f"http://127.0.0.1:{port}/targets"

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.scraper is not None:
            self.scraper.stop()

    def health(self) -> Health:
        if self.scraper is None or self.server is None:
            return Health(False, "not running")
        failing = ", ".join(sorted(self.scraper.errors)) or "none"
        return Health(True, f"scraping {len(self.scraper.targets)} targets; failing: {failing}")
