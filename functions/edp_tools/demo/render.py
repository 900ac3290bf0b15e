"""The demo report: one self-contained HTML page (plotly.js inlined) and a Markdown summary.

The page needs no network to view: plotly.js is embedded once, every chart is an inline
``<div class="chart">`` drawn by it, and the data are the figures of
:class:`~edp_tools.demo.collect.ReportData` (read back from the warehouse) and the measured run.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edp_tools.demo.chaos_report import chaos_headline, chaos_html, chaos_markdown
from edp_tools.demo.collect import Accounting, ReportData, percentiles

_COLORS = ("#2563eb", "#f97316", "#16a34a", "#dc2626", "#9333ea", "#0891b2")


@dataclass
class RunFacts:
    """What the run measured itself (not in the warehouse)."""

    size: str
    scale: float
    history_days: int
    live_day: dt.date
    replay_seconds_planned: float
    replay_seconds: float
    sent_per_second: dict[int, int]
    request_ms: list[float]
    status_counts: dict[int, int]
    refusal_types: dict[str, int]
    shop_actions: dict[str, int]
    etl_calls: list[dict[str, Any]]
    etl_seconds: float
    etl_mode: str
    phases: dict[str, float]
    total_seconds: float
    components: list[str]
    in_process: list[str]
    notes: list[str] = field(default_factory=list)
    #: how the replay's clock went (:meth:`edp_tools.demo.pacing.Pacer.describe`)
    pacing: str = ""
    #: wall seconds the replay's clock ran below its nominal speed (backpressure)
    paced_seconds: float = 0.0
    #: ``edp demo --chaos``: the faults, recoveries and checks (:mod:`edp_tools.demo.chaos`).
    chaos: dict[str, Any] | None = None

    @property
    def speedup_nominal(self) -> float:
        """The planned compression: 24 h / the planned replay seconds."""
        return 86_400.0 / self.replay_seconds_planned

    @property
    def speedup(self) -> float:
        """The compression the replay had: 24 h / its wall seconds."""
        return 86_400.0 / self.replay_seconds if self.replay_seconds > 0 else 0.0


def _bins(values_ms: list[float], n: int = 40) -> tuple[list[float], list[int], float]:
    """Histogram of ``values_ms`` (clipped at p99.5) as (bin centres, counts, bin width)."""
    arr = np.asarray(values_ms, dtype=np.float64)
    if arr.size == 0:
        return [], [], 1.0
    hi = max(float(np.percentile(arr, 99.5)), float(arr.min()) + 1.0)
    counts, edges = np.histogram(np.clip(arr, arr.min(), hi), bins=n)
    centres = ((edges[:-1] + edges[1:]) / 2).tolist()
    return centres, counts.astype(int).tolist(), float(edges[1] - edges[0])


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title, "x": 0.01, "font": {"size": 15}},
        "margin": {"l": 60, "r": 20, "t": 44, "b": 46},
        "height": 340,
        "template": "plotly_white",
        "legend": {"orientation": "h", "y": -0.22},
        **extra,
    }


_Chart = tuple[str, str, Any]


def _chart_throughput(data: ReportData, facts: RunFacts) -> _Chart:
    """Throughput."""
    import plotly.graph_objects as go

    fig = go.Figure()
    series = {"answered by ingest (client side)": dict(facts.sent_per_second.items())}
    for label, (xs, ys) in data.throughput.items():
        series[f"{label} (warehouse)"] = {int(x): y for x, y in zip(xs, ys, strict=True)}
    seconds = [s for counts in series.values() for s in counts]
    span = range(min(seconds, default=0), max(seconds, default=-1) + 1)
    for (label, counts), color in zip(series.items(), _COLORS, strict=False):
        # every second of the span, zeros included: a stall shows as a stall
        fig.add_scatter(
            x=list(span),
            y=[counts.get(s, 0) for s in span],
            name=label,
            mode="lines",
            line={"color": color},
        )
    fig.update_layout(
        **_layout(
            f"Events per second, {facts.live_day} replayed in {facts.replay_seconds:.0f} s",
            xaxis_title="seconds since the replay started",
            yaxis_title="events / s",
        )
    )
    return (
        "throughput",
        "Client-side sends, ingest's received_at and the loader's loaded_at, per second. "
        "The day's shape (night trough, evening peak) survives the compression.",
        fig,
    )


def _chart_funnel(data: ReportData, facts: RunFacts) -> _Chart:
    """Funnel."""
    import plotly.graph_objects as go

    fig = go.Figure()
    steps = ["viewed", "added_to_cart", "began_checkout", "purchased"]
    names = ["viewed", "added to cart", "began checkout", "purchased"]
    for row, color in zip(data.funnel, _COLORS, strict=False):
        fig.add_trace(
            go.Funnel(
                name=f"{row['basis']}s",
                y=names,
                x=[int(row[s] or 0) for s in steps],
                textinfo="value+percent initial",
                marker={"color": color},
            )
        )
    fig.update_layout(
        **_layout(f"Conversion funnel, {data.first_day} to {data.last_day}"), funnelmode="group"
    )
    return (
        "funnel",
        "mart.conversion_funnel (all devices), summed over the reporting days; "
        "each step counted only after the previous one.",
        fig,
    )


def _chart_dau(data: ReportData, facts: RunFacts) -> _Chart:
    """DAU / WAU."""
    import plotly.graph_objects as go

    fig = go.Figure()
    days = [str(r["report_date"]) for r in data.dau]
    fig.add_bar(
        x=days, y=[r["new_users"] for r in data.dau], name="new users", marker_color="#cbd5e1"
    )
    for key, color in (("dau", _COLORS[0]), ("wau", _COLORS[1]), ("mau", _COLORS[2])):
        fig.add_scatter(
            x=days,
            y=[r[key] for r in data.dau],
            name=key.upper(),
            mode="lines+markers",
            line={"color": color},
        )
    fig.update_layout(**_layout("Active users per day", yaxis_title="users"))
    return (
        "dau",
        "mart.daily_active_users (all devices and platforms). WAU/MAU windows start "
        "with the first generated day, so they ramp up.",
        fig,
    )


def _chart_retention(data: ReportData, facts: RunFacts) -> _Chart:
    """Retention heatmap."""
    import plotly.graph_objects as go

    rows = [
        r for r in data.retention if int(r["period_number"]) > 0
    ]  # day 0 is 100 % by definition
    cohorts = sorted({str(r["cohort_start"]) for r in rows})
    periods = sorted({int(r["period_number"]) for r in rows})
    z: list[list[float | None]] = [[None] * len(periods) for _ in cohorts]
    text: list[list[str]] = [[""] * len(periods) for _ in cohorts]
    for r in rows:
        i, j = cohorts.index(str(r["cohort_start"])), periods.index(int(r["period_number"]))
        rate = r["retention_rate"]
        z[i][j] = None if rate is None else round(100 * float(rate), 1)
        text[i][j] = f"{r['retained_users']}/{r['cohort_size']}"
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[f"day {p}" for p in periods],
            y=cohorts,
            text=text,
            colorscale="Blues",
            colorbar={"title": "%"},
            hovertemplate="cohort %{y}, %{x}: %{z}%% (%{text})<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout("Retention by first-seen cohort (day N)", yaxis={"autorange": "reversed"})
    )
    return (
        "retention",
        "mart.retention_cohorts, daily grain. The first cohort holds everyone already "
        "active before the data starts, so its retention is the highest.",
        fig,
    )


def _chart_products(data: ReportData, facts: RunFacts) -> _Chart:
    """Product leaderboard."""
    import plotly.graph_objects as go

    products = list(reversed(data.products))
    fig = go.Figure(
        go.Bar(
            x=[float(p["net_revenue"] or 0) for p in products],
            y=[f"{p['item_name'] or p['item_id']}" for p in products],
            orientation="h",
            marker_color=_COLORS[2],
            customdata=[[p["units_sold"], p["views"], p["purchases"]] for p in products],
            hovertemplate="%{y}: %{x:,.0f} KRW<br>units %{customdata[0]}, "
            "views %{customdata[1]}, purchases %{customdata[2]}<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout("Top 10 products by net revenue", xaxis_title="KRW", height=380),
    )
    fig.update_layout(margin={"l": 220})
    return ("products", "mart.product_performance, summed over the reporting days.", fig)


def _chart_freshness(data: ReportData, facts: RunFacts) -> _Chart:
    """Stream freshness distribution."""
    import plotly.graph_objects as go

    centres, counts, width = _bins(data.freshness_ms)
    p50, p99 = data.freshness_p
    fig = go.Figure(go.Bar(x=centres, y=counts, width=width, marker_color=_COLORS[0]))
    fig.update_layout(
        **_layout(
            f"Stream freshness, ingest -> raw: p50 {p50:,.0f} ms, p99 {p99:,.0f} ms",
            xaxis_title="ms",
            yaxis_title="events",
            bargap=0.05,
        )
    )
    return (
        "freshness",
        "loaded_at - received_at of every replayed event in raw.user_events "
        "(Pub/Sub + stream loader).",
        fig,
    )


def _chart_cdc_lag(data: ReportData, facts: RunFacts) -> _Chart:
    """CDC lag distribution."""
    import plotly.graph_objects as go

    fig = go.Figure()
    all_lag = [v for vs in data.cdc_lag_ms.values() for v in vs]
    centres, _, width = _bins(all_lag)
    edges = (
        np.concatenate([np.asarray(centres) - width / 2, [centres[-1] + width / 2]])
        if centres
        else np.asarray([0.0, 1.0])
    )
    for (table, values), color in zip(data.cdc_lag_ms.items(), _COLORS, strict=False):
        if not values:
            continue
        hist, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
        fig.add_bar(x=centres, y=hist.tolist(), name=table, width=width, marker_color=color)
    c50, c99 = data.cdc_lag_p
    fig.update_layout(
        **_layout(
            f"CDC lag, commit -> raw.cdc_*: p50 {c50:,.0f} ms, p99 {c99:,.0f} ms",
            xaxis_title="ms",
            yaxis_title="changes",
            barmode="stack",
            bargap=0.05,
        )
    )
    return (
        "cdc_lag",
        "ingested_at - source_ts of every streamed change (snapshot rows excluded). "
        "The flusher writes at 100 rows or every few seconds, whichever comes first.",
        fig,
    )


def _chart_cdc_changes(data: ReportData, facts: RunFacts) -> _Chart:
    """CDC changes by table and operation."""
    import plotly.graph_objects as go

    fig = go.Figure()
    ops = {"c": "create", "u": "update", "d": "delete", "r": "snapshot read"}
    for (op, label), color in zip(ops.items(), _COLORS, strict=False):
        rows = [r for r in data.cdc_changes if r["op"] == op]
        if rows:
            fig.add_bar(
                x=[r["table"] for r in rows],
                y=[int(r["n"]) for r in rows],
                name=label,
                marker_color=color,
            )
    fig.update_layout(**_layout("CDC changes by table and operation", barmode="stack"))
    return ("cdc_changes", "raw.cdc_* rows by Debezium op (snapshot = initial read).", fig)


def _chart_etl(data: ReportData, facts: RunFacts) -> _Chart:
    """ETL run times."""
    import plotly.graph_objects as go

    runs = [r for r in data.etl_runs if r.get("duration_s") is not None]
    fig = go.Figure(
        go.Bar(
            x=[float(r["duration_s"]) for r in runs],
            y=[str(r["task"]) for r in runs],
            orientation="h",
            marker_color=[_COLORS[2] if r["status"] == "success" else _COLORS[3] for r in runs],
            customdata=[[r["rows_written"], r["status"]] for r in runs],
            hovertemplate="%{y}: %{x:.2f} s, %{customdata[0]} rows (%{customdata[1]})"
            "<extra></extra>",
        )
    )
    fig.update_layout(
        **_layout(
            f"ETL run times (workflow wall time {facts.etl_seconds:.1f} s)",
            xaxis_title="seconds",
            yaxis={"autorange": "reversed"},
        )
    )
    fig.update_layout(margin={"l": 220})
    return (
        "etl",
        "monitoring.pipeline_runs of this run's execution (one row per model run, "
        "as recorded by the etl function).",
        fig,
    )


def _chart_orders(data: ReportData, facts: RunFacts) -> _Chart:
    """Shop orders by current status, from the CDC-fed mart."""
    import plotly.graph_objects as go

    fig = go.Figure()
    days = [str(r["report_date"]) for r in data.orders_daily]
    statuses = ("pending", "paid", "shipped", "delivered", "cancelled", "refunded", "other_status")
    for status, color in zip(statuses, (*_COLORS, "#64748b"), strict=False):
        fig.add_bar(
            x=days,
            y=[int(r[f"{status}_orders"] or 0) for r in data.orders_daily],
            name=status.replace("_status", ""),
            marker_color=color,
        )
    revenue = sum(float(r["net_revenue"] or 0) for r in data.orders_daily)
    fig.update_layout(
        **_layout(
            f"Shop orders by current status (mart.orders_daily; net {revenue:,.0f} KRW)",
            barmode="stack",
            yaxis_title="orders",
            xaxis={"type": "category"},
        )
    )
    return (
        "orders",
        "Orders the shop simulator wrote into PostgreSQL during the replay (real time, so "
        "they fall on today), carried by CDC into raw.cdc_orders, rebuilt into "
        "staging.orders and aggregated by the daily ETL.",
        fig,
    )


def figures(data: ReportData, facts: RunFacts) -> list[_Chart]:
    """``(chart id, caption, plotly figure)`` for every chart of the report."""
    return [
        chart(data, facts)
        for chart in (
            _chart_throughput,
            _chart_funnel,
            _chart_dau,
            _chart_retention,
            _chart_products,
            _chart_freshness,
            _chart_cdc_lag,
            _chart_cdc_changes,
            _chart_etl,
            _chart_orders,
        )
    ]


def _fmt_ms(v: float) -> str:
    return "n/a" if math.isnan(v) else f"{v:,.0f} ms"


def _accounting_rows(acc: Accounting) -> list[tuple[str, str, str]]:
    ok = "balances" if acc.ingest_balances else "DOES NOT BALANCE"
    raw_ok = "balances" if acc.raw_balances else "DOES NOT BALANCE"
    return [
        (
            "sent = accepted + refused",
            f"{acc.sent:,} = {acc.accepted:,} + {acc.refused:,}"
            + (f" (+ {acc.unanswered:,} unanswered)" if acc.unanswered else ""),
            ok,
        ),
        (
            "accepted = rows in raw after dedup",
            f"{acc.accepted_distinct:,} distinct accepted event_ids = {acc.raw_distinct:,} "
            f"distinct event_ids in raw.user_events ({acc.missing_in_raw} missing, "
            f"{acc.unexpected_in_raw} unexpected)",
            raw_ok,
        ),
        (
            "duplicates",
            f"{acc.duplicates_accepted:,} accepted re-sends of an event_id; "
            f"{acc.raw_rows - acc.raw_distinct:,} duplicate rows in raw",
            "dedup by event_id",
        ),
        (
            "refused",
            f"{acc.refused:,} refused by ingest ({acc.malformed:,} deliberately malformed); "
            f"{acc.bad_topic_messages:,} messages on the events-bad topic",
            "one per refused event" if acc.bad_topic_messages == acc.refused else "MISMATCH",
        ),
        (
            "loader dead letters",
            f"{acc.loader_dead_letters:,} rows in raw.user_events_errors",
            "expected 0",
        ),
    ]


def headline(data: ReportData, acc: Accounting, facts: RunFacts) -> list[tuple[str, str]]:
    """The key figures (also printed by the CLI)."""
    f50, f99 = data.freshness_p
    c50, c99 = data.cdc_lag_p
    req50, req99 = percentiles(facts.request_ms)
    return [
        ("events sent (replay)", f"{acc.sent:,}"),
        ("accepted / refused", f"{acc.accepted:,} / {acc.refused:,}"),
        ("landed in raw (distinct)", f"{acc.raw_distinct:,}"),
        ("history rows (fast path)", f"{data.history_rows:,}"),
        ("stream freshness p50 / p99", f"{_fmt_ms(f50)} / {_fmt_ms(f99)}"),
        ("CDC lag p50 / p99", f"{_fmt_ms(c50)} / {_fmt_ms(c99)}"),
        ("ingest request p50 / p99 (client)", f"{_fmt_ms(req50)} / {_fmt_ms(req99)}"),
        (
            "replay speed-up",
            f"{facts.speedup:,.0f}x of {facts.speedup_nominal:,.0f}x"
            + (f" (paced {facts.paced_seconds:.0f} s)" if facts.paced_seconds >= 1 else ""),
        ),
        ("ETL workflow", f"{facts.etl_seconds:.1f} s"),
        ("demo total", f"{facts.total_seconds:.0f} s"),
        ("loss accounting", "balances" if acc.balances else "DOES NOT BALANCE"),
        *(chaos_headline(facts.chaos) if facts.chaos else []),
    ]


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f8fafc;
color:#0f172a}
header{background:#0f172a;color:#f8fafc;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#cbd5e1;font-size:14px}
main{padding:18px 28px;max-width:1400px}
.kpis{display:grid;grid-template-columns:repeat(auto-fill,minmax(210px,1fr));gap:10px}
.kpi{background:#fff;border:1px solid #e2e8f0;border-radius:8px;padding:10px 12px}
.kpi b{display:block;font-size:19px;margin-top:2px} .kpi span{color:#475569;font-size:12px}
.ok{color:#15803d} .bad{color:#b91c1c}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(620px,1fr));gap:14px;
margin-top:14px}
figure{background:#fff;border:1px solid #e2e8f0;border-radius:8px;margin:0;padding:6px}
figcaption{font-size:12px;color:#475569;padding:2px 8px 6px}
table{border-collapse:collapse;background:#fff;font-size:13px;margin-top:8px}
td,th{border:1px solid #e2e8f0;padding:5px 9px;text-align:left;vertical-align:top}
h2{font-size:17px;margin:22px 0 6px}
"""


def render_html(
    data: ReportData, acc: Accounting, facts: RunFacts, generated_at: dt.datetime
) -> str:
    """The self-contained report page."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    charts = []
    for chart_id, caption, fig in figures(data, facts):
        div = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{chart_id}",
            config={"displayModeBar": False, "responsive": True},
        )
        charts.append(
            f'<figure class="chart" data-chart="{chart_id}">{div}'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        )
    kpis = "".join(
        f'<div class="kpi"><span>{html.escape(k)}</span>'
        f'<b class="{"bad" if "NOT" in v else ""}">{html.escape(v)}</b></div>'
        for k, v in headline(data, acc, facts)
    )
    acc_rows = "".join(
        f"<tr><th>{html.escape(a)}</th><td>{html.escape(b)}</td>"
        f'<td class="{"bad" if "NOT" in c or "MISMATCH" in c else "ok"}">{html.escape(c)}</td></tr>'
        for a, b, c in _accounting_rows(acc)
    )
    phases = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.1f} s</td></tr>" for k, v in facts.phases.items()
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in facts.notes)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edp demo report — {facts.live_day}</title>
<style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script>
</head><body>
<header><h1>E-commerce data platform — local demo report</h1>
<p>Size <b>{html.escape(facts.size)}</b> (scale {facts.scale:g}):
{facts.history_days} days of history on the fast path, then {facts.live_day} replayed live over
HTTP in {facts.replay_seconds:.0f} s, with the shop simulator writing PostgreSQL.
{html.escape(facts.pacing)}
Generated {generated_at:%Y-%m-%d %H:%M:%S} UTC. Every number below is read back from the
warehouse or measured by this run.</p></header>
<main>
<div class="kpis">{kpis}</div>
<h2>Loss accounting (replayed day)</h2>
<table>{acc_rows}</table>
{chaos_html(facts.chaos) if facts.chaos else ""}
<div class="grid">{"".join(charts)}</div>
<h2>What ran</h2>
<ul>{notes}</ul>
<table><tr><th>phase</th><th>wall time</th></tr>{phases}</table>
</main></body></html>
"""


def render_markdown(
    data: ReportData, acc: Accounting, facts: RunFacts, generated_at: dt.datetime
) -> str:
    """The Markdown summary next to the page."""
    lines = [
        f"# edp demo — {facts.live_day} replayed (size {facts.size})",
        "",
        f"Generated {generated_at:%Y-%m-%d %H:%M:%S} UTC by `edp demo --size {facts.size}`. "
        "Every figure is read back from the warehouse or measured by the run; the charts are "
        "in [index.html](index.html).",
        "",
        *([facts.pacing, ""] if facts.pacing else []),
        "| figure | value |",
        "| --- | --- |",
        *[f"| {k} | {v} |" for k, v in headline(data, acc, facts)],
        "",
        "## Loss accounting",
        "",
        "| check | counts | verdict |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in _accounting_rows(acc)],
        "",
        *(chaos_markdown(facts.chaos) if facts.chaos else []),
        "## Daily active users",
        "",
        "| day | DAU | WAU | new |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {r['report_date']} | {r['dau']:,} | {r['wau']:,} | {r['new_users']:,} |"
            for r in data.dau
        ],
        "",
        "## Top products (net revenue, KRW)",
        "",
        "| product | net revenue | units | views |",
        "| --- | ---: | ---: | ---: |",
        *[
            f"| {p['item_name'] or p['item_id']} | {float(p['net_revenue'] or 0):,.0f} | "
            f"{p['units_sold']:,} | {p['views']:,} |"
            for p in data.products
        ],
        "",
        "## ETL runs",
        "",
        "| task | status | seconds | rows |",
        "| --- | --- | ---: | ---: |",
        *[
            f"| {r['task']} | {r['status']} | {float(r['duration_s'] or 0):.2f} | "
            f"{r['rows_written'] or 0:,} |"
            for r in data.etl_runs
        ],
        "",
        "## What ran",
        "",
        *[f"- {n}" for n in facts.notes],
        "",
        "| phase | seconds |",
        "| --- | ---: |",
        *[f"| {k} | {v:.1f} |" for k, v in facts.phases.items()],
        "",
    ]
    return "\n".join(lines)
