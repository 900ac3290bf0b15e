"""The Cloud Monitoring dashboards, rendered locally: same JSON, local samples, the warehouse.

``edp dev`` scrapes every local ``/metrics`` endpoint into a :class:`~.promql.Store` every few
seconds (:class:`Scraper`) and serves one HTML page per ``terraform/dashboards/*.json``
(:func:`serve`): each tile's PromQL is evaluated over the last minutes and drawn as an SVG line
chart; tiles reading Google Cloud system metrics say so. Dashboards whose subject lives in the
warehouse (conversion funnel, quality reports, pipeline runs) also show those tables.

Scraped samples carry the labels Managed Service for Prometheus adds in GKE (``job`` = the
component, ``instance`` = host:port, ``namespace="edp"``), so the same matchers select them.

Example:
    >>> [d.name for d in load_dashboards()][:2]
    ['ai-quality-reports', 'autoscaling']
"""

from __future__ import annotations

import html
import json
import math
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from edp_tools.observability.promql import (
    NoLocalSourceError,
    PromQLError,
    Store,
    compile_query,
)

DASHBOARDS = Path(__file__).resolve().parents[3] / "terraform" / "dashboards"
WINDOW_S = 900.0
POINTS = 30
RETENTION_S = 3600.0

#: Warehouse tables shown beside a dashboard's charts (BigQuery-dialect SQL, run locally).
WAREHOUSE_PANELS: dict[str, tuple[str, str]] = {
    "conversion-funnel": (
        "Conversion funnel by day (mart.conversion_funnel, sessions, all devices)",
        "SELECT report_date, viewed, added_to_cart, began_checkout, purchased, "
        "overall_conversion_rate FROM mart.conversion_funnel "
        "WHERE basis = 'session' AND device_type = 'all' ORDER BY report_date DESC LIMIT 14",
    ),
    "ai-quality-reports": (
        "Latest quality findings (monitoring.data_quality_checks)",
        "SELECT checked_at, table_ref, check_type, status, severity, metric_value, threshold "
        "FROM monitoring.data_quality_checks WHERE status != 'pass' "
        "ORDER BY checked_at DESC LIMIT 20",
    ),
    "pipeline-status": (
        "Latest pipeline runs (monitoring.pipeline_runs)",
        "SELECT finished_at, task, status, duration_s, rows_written, error "
        "FROM monitoring.pipeline_runs ORDER BY finished_at DESC LIMIT 20",
    ),
}


@dataclass(frozen=True)
class Tile:
    title: str
    queries: tuple[str, ...]
    scorecard: bool


@dataclass(frozen=True)
class Dashboard:
    name: str
    title: str
    tiles: tuple[Tile, ...]


def load_dashboards(folder: Path = DASHBOARDS) -> list[Dashboard]:
    """Every dashboard JSON of ``folder``, in file-name order."""
    out = []
    for path in sorted(folder.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        tiles = []
        for tile in doc["mosaicLayout"]["tiles"]:
            widget = tile["widget"]
            if "scorecard" in widget:
                queries = (widget["scorecard"]["timeSeriesQuery"]["prometheusQuery"],)
                tiles.append(Tile(widget["title"], queries, True))
            else:
                data = widget["xyChart"]["dataSets"]
                queries = tuple(d["timeSeriesQuery"]["prometheusQuery"] for d in data)
                tiles.append(Tile(widget["title"], queries, False))
        out.append(Dashboard(path.stem, doc["displayName"], tuple(tiles)))
    return out


# --- scraping -----------------------------------------------------------------------------------
def ingest_exposition(store: Store, text: str, labels: Mapping[str, str], at: float) -> int:
    """Add every sample of a Prometheus text exposition to ``store``; returns how many.

    Example:
        >>> s = Store()
        >>> text = "# TYPE a_total counter\\na_total{x=\\"1\\"} 3\\n"
        >>> ingest_exposition(s, text, {"job": "j"}, 1)
        1
        >>> s.series["a_total"]
        {(('job', 'j'), ('x', '1')): [(1, 3.0)]}
    """
    from prometheus_client.parser import text_string_to_metric_families

    n = 0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name.endswith("_created"):
                continue  # creation timestamps, not values
            store.add(sample.name, {**sample.labels, **labels}, at, float(sample.value))
            n += 1
    return n


class Scraper:
    """Scrape ``targets`` (component -> base URL) every ``interval_s`` into ``store``.

    ``errors`` holds the last scrape error of each target that is failing now (a target that
    answers again leaves it); ``samples`` the sample count of each target's last good scrape.
    """

    def __init__(self, targets: Mapping[str, str], store: Store, interval_s: float = 5.0) -> None:
        self.targets = dict(targets)
        self.store = store
        self.interval_s = interval_s
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: dict[str, str] = {}
        self.samples: dict[str, int] = {}

    def scrape_once(self, at: float | None = None) -> int:
        now = time.time() if at is None else at
        total = 0
        for job, base in self.targets.items():
            instance = base.split("//", 1)[-1]
            try:
                with urllib.request.urlopen(f"{base}/metrics", timeout=3) as response:  # noqa: S310
                    text = response.read().decode()
            except OSError as exc:  # a component without /metrics or down: keep the others
                self.errors[job] = str(exc)
                continue
            labels = {"job": job, "instance": instance, "namespace": "edp"}
            with self.lock:
                n = ingest_exposition(self.store, text, labels, now)
                self.store.trim(now - RETENTION_S)
            self.errors.pop(job, None)
            self.samples[job] = n
            total += n
        return total

    def status(self) -> dict[str, dict[str, Any]]:
        """Per target: its ``/metrics`` URL, whether the last scrape worked, and its samples or
        error (what Prometheus's targets page shows)."""
        return {
            job: {
                "url": f"{base}/metrics",
                "up": job in self.samples and job not in self.errors,
                "samples": self.samples.get(job, 0),
                "error": self.errors.get(job),
            }
            for job, base in self.targets.items()
        }

    def start(self) -> Scraper:
        def loop() -> None:
            while not self._stop.is_set():
                self.scrape_once()
                self._stop.wait(self.interval_s)

        self._thread = threading.Thread(target=loop, name="dashboard-scraper", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


# --- rendering ----------------------------------------------------------------------------------
def _label_text(labels: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{k}={v}" for k, v in labels) or "total"


def _svg(series: dict[str, list[tuple[float, float]]], start: float, end: float) -> str:
    values = [v for points in series.values() for _, v in points]
    if not values:
        return '<p class="empty">no data yet</p>'
    low, high = min(0.0, *values), max(values)
    span = (high - low) or 1.0
    width, height = 460, 140
    lines = []
    colours = ("#1a73e8", "#e8710a", "#188038", "#d93025", "#9334e6", "#12b5cb")
    for i, (name, points) in enumerate(series.items()):
        coords = " ".join(
            f"{(t - start) / (end - start) * width:.1f},{height - (v - low) / span * height:.1f}"
            for t, v in points
        )
        colour = colours[i % len(colours)]
        lines.append(
            f'<polyline class="series" data-series="{html.escape(name)}" fill="none" '
            f'stroke="{colour}" stroke-width="1.5" points="{coords}"/>'
        )
    return (
        f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'data-max="{high:g}">{"".join(lines)}</svg>'
    )


def render_tile(tile: Tile, store: Store, now: float) -> str:
    """One tile as HTML: an SVG chart (or a number) and the latest value of each series."""
    start = now - WINDOW_S
    series: dict[str, list[tuple[float, float]]] = {}
    note = ""
    for query in tile.queries:
        try:
            compiled = compile_query(query)
        except NoLocalSourceError as exc:
            note = f"Google Cloud metric ({exc}): shown in Cloud Monitoring only."
            continue
        except PromQLError as exc:
            note = f"not renderable locally: {exc}"
            continue
        for step in range(POINTS + 1):
            at = start + (now - start) * step / POINTS
            value = compiled(store, at)
            vector = {(): value} if isinstance(value, float) else value
            for labels, v in vector.items():
                if not math.isnan(v):  # 0/0 has no point
                    series.setdefault(_label_text(labels), []).append((at, v))
    latest = "".join(
        f"<li><span>{html.escape(name)}</span> <b>{points[-1][1]:.4g}</b></li>"
        for name, points in sorted(series.items())
    )
    body = (
        f'<p class="scorecard">{next(iter(series.values()))[-1][1]:.4g}</p>'
        if tile.scorecard and series
        else _svg(series, start, now)
    )
    foot = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return (
        f'<section class="tile" data-local="{"yes" if series else "no"}">'
        f"<h2>{html.escape(tile.title)}</h2>{body}<ul>{latest}</ul>{foot}</section>"
    )


def render_table(title: str, rows: list[dict[str, Any]]) -> str:
    """A warehouse panel."""
    if not rows:
        return f'<section class="table"><h2>{html.escape(title)}</h2><p>no rows yet</p></section>'
    head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row.values()) + "</tr>"
        for row in rows
    )
    return (
        f'<section class="table"><h2>{html.escape(title)}</h2>'
        f"<table><tr>{head}</tr>{body}</table></section>"
    )


_STYLE = (
    "body{font-family:sans-serif;margin:1rem;background:#f8f9fa}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(480px,1fr));gap:1rem}"
    ".tile,.table{background:#fff;padding:.5rem 1rem;border-radius:6px}"
    "h2{font-size:1rem}.note,.empty{color:#5f6368;font-size:.85rem}"
    ".scorecard{font-size:2.5rem;margin:.5rem}ul{font-size:.8rem;padding-left:1rem}"
    "td,th{font-size:.8rem;padding:2px 6px;text-align:left}"
)


def render_page(
    dashboard: Dashboard,
    store: Store,
    now: float,
    query_warehouse: Callable[[str], list[dict[str, Any]]] | None = None,
    others: list[Dashboard] | None = None,
) -> str:
    """The whole page of one dashboard (self-contained HTML, refreshes every 15 s)."""
    nav = " · ".join(
        f'<a href="/d/{d.name}">{html.escape(d.title.split(" — ")[-1])}</a>' for d in others or []
    )
    tiles = "".join(render_tile(tile, store, now) for tile in dashboard.tiles)
    extra = ""
    if dashboard.name in WAREHOUSE_PANELS and query_warehouse is not None:
        title, sql = WAREHOUSE_PANELS[dashboard.name]
        try:
            extra = render_table(title, query_warehouse(sql))
        except Exception as exc:
            extra = render_table(f"{title}: warehouse unavailable ({exc})", [])
    return (
        f'<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" '
        f'content="15"><title>{html.escape(dashboard.title)}</title><style>{_STYLE}</style>'
        f"</head><body><nav>{nav}</nav><h1>{html.escape(dashboard.title)}</h1>"
        f'<div class="grid">{tiles}{extra}</div></body></html>'
    )


def serve(
    scraper: Scraper,
    port: int,
    query_warehouse: Callable[[str], list[dict[str, Any]]] | None = None,
    folder: Path = DASHBOARDS,
) -> ThreadingHTTPServer:
    """Serve ``/`` (the list), ``/d/<name>`` and ``/targets`` (JSON: every scraped
    ``/metrics`` endpoint and its state) on 127.0.0.1:``port`` (a daemon thread)."""
    dashboards = load_dashboards(folder)
    by_name = {d.name: d for d in dashboards}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            name = self.path.removeprefix("/d/").strip("/")
            content_type = "text/html; charset=utf-8"
            if self.path in {"/", ""}:
                links = "".join(f'<li><a href="/d/{d.name}">{d.title}</a></li>' for d in dashboards)
                page = (
                    f"<!doctype html><html><body><h1>Dashboards</h1><ul>{links}</ul>"
                    f'<p><a href="/targets">Scraped /metrics endpoints</a></p></body></html>'
                )
                status = 200
            elif self.path == "/targets":
                page = json.dumps(scraper.status(), indent=1)
                status, content_type = 200, "application/json"
            elif name in by_name:
                with scraper.lock:
                    page = render_page(
                        by_name[name], scraper.store, time.time(), query_warehouse, dashboards
                    )
                status = 200
            else:
                page, status = "not found", 404
            data = page.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, name="dashboards", daemon=True).start()
    return server
