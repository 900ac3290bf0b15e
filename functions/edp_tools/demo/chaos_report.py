"""The fault section of the demo report (``edp demo --chaos``): timeline, recoveries, checks.

Pure rendering of the ``chaos`` figures :mod:`edp_tools.demo.chaos` measured (kept apart from
:mod:`edp_tools.demo.render` so the plain report does not change). Every value shown was measured
by the run: when each fault was injected, how long until the pipeline it broke moved data again,
which processes the supervisor restarted after they exited, and the loss checks computed from
the warehouse and PostgreSQL.

Example:
    >>> section = chaos_markdown({"faults": [], "lost": 0, "duplicates_in_staging": 0})
    >>> section[0]
    '## Faults injected during the replay'
"""

from __future__ import annotations

import html
from typing import Any


def _fmt_s(value: Any) -> str:
    return "not recovered" if value is None else f"{float(value):.1f} s"


def _fault_rows(chaos: dict[str, Any]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for i, f in enumerate(chaos.get("faults", []), start=1):
        when = f"{f['at_s']:.1f} s" + ("" if f.get("during_replay", True) else " (after replay)")
        rows.append(
            (
                str(i),
                when,
                f["target"],
                f["action"],
                _fmt_s(f.get("recovered_s")),
                f.get("recovered_when", ""),
            )
        )
    return rows


def _restart_rows(chaos: dict[str, Any]) -> list[tuple[str, ...]]:
    return [(f"{r['at_s']:.1f} s", r["target"], r["reason"]) for r in chaos.get("restarts", [])]


def _check_rows(chaos: dict[str, Any]) -> list[tuple[str, str, bool]]:
    cdc = chaos.get("cdc", {})
    rows = [
        (
            "lost (events + CDC)",
            f"{chaos['lost']:,} = {chaos.get('lost_events', 0):,} accepted events missing in raw "
            f"+ {chaos.get('lost_cdc', 0):,} CDC rows where staging differs from PostgreSQL",
            chaos["lost"] == 0,
        ),
        (
            "duplicates in staging",
            f"{chaos['duplicates_in_staging']:,} = "
            f"{chaos.get('staging_event_duplicates', 0):,} repeated event_ids in "
            f"staging.user_events + {chaos.get('staging_cdc_duplicates', 0):,} repeated keys in "
            "the CDC staging tables",
            chaos["duplicates_in_staging"] == 0,
        ),
    ]
    for table, t in sorted(cdc.items()):
        rows.append(
            (
                f"staging.{table} vs shop.{table}",
                f"{t['source_rows']:,} source rows, {t['staging_rows']:,} staging rows; "
                f"{t['missing']:,} missing, {t['extra']:,} extra, {t['different']:,} different",
                t["missing"] + t["extra"] + t["different"] + t["duplicates"] == 0,
            )
        )
    return rows


def _timeline_div(chaos: dict[str, Any]) -> str:
    """A plotly chart: one bar per fault from its injection to its recovery."""
    import plotly.graph_objects as go
    import plotly.io as pio

    faults = chaos.get("faults", [])
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            name="fault → recovered",
            orientation="h",
            y=[f["target"] for f in faults],
            base=[f["at_s"] for f in faults],
            x=[f["recovered_s"] if f.get("recovered_s") is not None else 0.5 for f in faults],
            marker_color=[
                "#f97316" if f.get("recovered_s") is not None else "#dc2626" for f in faults
            ],
            text=[_fmt_s(f.get("recovered_s")) for f in faults],
            textposition="outside",
        )
    )
    restarts = chaos.get("restarts", [])
    if restarts:
        fig.add_trace(
            go.Scatter(
                name="supervisor restart",
                mode="markers",
                x=[r["at_s"] for r in restarts],
                y=[r["target"] for r in restarts],
                marker={"symbol": "x", "size": 10, "color": "#0f172a"},
                text=[r["reason"] for r in restarts],
            )
        )
    replay_s = chaos.get("replay_seconds")
    if replay_s:
        fig.add_vline(x=replay_s, line_dash="dot", annotation_text="replay ends")
    fig.update_layout(
        title={"text": "Fault timeline (seconds after the replay started)", "font": {"size": 14}},
        height=320,
        margin={"l": 110, "r": 20, "t": 40, "b": 40},
        xaxis_title="s after the replay started",
        legend={"orientation": "h", "y": -0.25},
        template="plotly_white",
    )
    return str(
        pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            div_id="chart-faults",
            config={"displayModeBar": False, "responsive": True},
        )
    )


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]], attrs: str = "") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table{attrs}><tr>{th}</tr>{body}</table>"


_FAULT_HEAD = ("#", "injected at", "component", "fault", "recovered after", "recovered when")


def chaos_headline(chaos: dict[str, Any]) -> list[tuple[str, str]]:
    """Key figures of the chaos run (a value with "NOT" is shown as a failure).

    Example:
        >>> chaos_headline({"faults": [{"recovered_s": 3.0}], "lost": 2})
        [('faults recovered', '1 of 1'), ('lost under faults', '2 — NOT zero')]
    """
    faults = chaos.get("faults", [])
    recovered = sum(1 for f in faults if f.get("recovered_s") is not None)
    rows = [
        (
            "faults recovered",
            f"{recovered} of {len(faults)}" + ("" if recovered == len(faults) else " — NOT all"),
        )
    ]
    for key, label in (
        ("lost", "lost under faults"),
        ("duplicates_in_staging", "duplicates in staging"),
    ):
        if key in chaos:
            n = int(chaos[key])
            rows.append((label, f"{n:,}" + (" — NOT zero" if n else "")))
    return rows


def chaos_html(chaos: dict[str, Any]) -> str:
    """The report's fault section (HTML)."""
    checks = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(counts)}</td>"
        f'<td class="{"ok" if ok else "bad"}">{"OK" if ok else "NOT OK"}</td></tr>'
        for name, counts, ok in _check_rows(chaos)
    )
    restarts = _restart_rows(chaos)
    restart_html = (
        "<p>Processes the supervisor restarted after they exited on their own "
        "(as Kubernetes restarts a crashed container):</p>"
        + _table(("at", "component", "why it exited"), restarts)
        if restarts
        else "<p>No process exited on its own: the supervisor restarted only the killed ones.</p>"
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in chaos.get("notes", []))
    return f"""<h2 id="faults">Faults injected during the replay</h2>
{_table(_FAULT_HEAD, _fault_rows(chaos), ' data-section="faults"')}
<figure class="chart" data-chart="faults">{_timeline_div(chaos)}
<figcaption>Each bar starts when the fault was injected and ends when data created after it
(or after the service came back) had got through the path it broke (polled every second in the
warehouse, PostgreSQL and the client's answers); crosses: processes that exited on their own
and were restarted.</figcaption></figure>
{restart_html}
<h2>Loss checks after the faults (from DuckDB and PostgreSQL)</h2>
<table data-section="chaos-checks">{checks}</table>
<ul>{notes}</ul>
"""


def chaos_markdown(chaos: dict[str, Any]) -> list[str]:
    """The summary's fault section (Markdown lines)."""
    lines = [
        "## Faults injected during the replay",
        "",
        "| " + " | ".join(_FAULT_HEAD) + " |",
        "| " + " | ".join("---" for _ in _FAULT_HEAD) + " |",
        *["| " + " | ".join(row) + " |" for row in _fault_rows(chaos)],
        "",
    ]
    restarts = _restart_rows(chaos)
    if restarts:
        lines += [
            "Restarted by the supervisor after exiting on their own:",
            "",
            "| at | component | why it exited |",
            "| --- | --- | --- |",
            *["| " + " | ".join(r) + " |" for r in restarts],
            "",
        ]
    if "lost" in chaos:
        lines += [
            "| check | counts | verdict |",
            "| --- | --- | --- |",
            *[
                f"| {name} | {counts} | {'OK' if ok else 'NOT OK'} |"
                for name, counts, ok in _check_rows(chaos)
            ],
            "",
        ]
    lines += [f"- {n}" for n in chaos.get("notes", [])]
    if chaos.get("notes"):
        lines.append("")
    return lines
