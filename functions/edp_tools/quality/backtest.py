"""``edp quality backtest``: score the quality agent against injected incidents.

History is simulated (:mod:`edp_tools.quality.history`): ``warmup_days`` of clean traffic to
train on, ``clean_days`` more scored for false alerts (weekly seasonality, day-to-day noise),
then one injected incident per day — every kind (unannounced promotion, outage, null burst,
duplicate storm, freshness stall, schema drift, category-mix shift, CDC stall) at a subtle, the
default and a large magnitude, plus declared promotions that must *not* alert.

The agent runs as the scheduler runs it, every 30 minutes of simulated time, through the same
code as production: each check's ``evaluate`` (:mod:`edp.quality.checks`) with the tables'
declared checks from the catalogue, the volume detector, the promotions calendar, flagged-slot
exclusion, and the incident grouping/alert decision (:mod:`edp.quality.incidents`). Only the
measurement differs: slot counts come from the simulated metrics instead of SQL (the SQL
measurement is tested against DuckDB in ``tests/quality``).

Scoring, per configuration (ours, and the common rule: freshness, volume z against the 14-day
mean |z| > 2, null rate > 5 %, duplicate rate > 1 %):

- an **alert** is an incident the agent opens (one Slack message);
- it is **true** when it opens in an injected incident's group between its start and two hours
  after its end; otherwise false (alerts on declared promotions are false);
- **precision** = true alerts / alerts; **recall** = detected incidents / incidents;
  **time to detect** = first true alert - incident start (median);
- **false alerts per week** counted on the clean days only.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

from edp.contracts.catalog import Catalog, TableSpec, load_catalog
from edp.quality.calendar import Promotion, PromotionCalendar
from edp.quality.checks import category_mix, cdc_lag, duplicates, freshness, nulls, schema_drift
from edp.quality.checks import volume as volume_check
from edp.quality.incidents import IncidentState, decide, group_failing
from edp.quality.model import CheckResult
from edp.quality.volume import scored_window
from edp.warehouse.arrow_schema import arrow_schema
from edp_tools.generator import Incident
from edp_tools.quality.history import SLOT, History, Injected, VisibleCounts, simulate

EVENTS = "raw.user_events"
CDC = "raw.cdc_orders"
GRACE = timedelta(hours=2)
LOADER_LAG = timedelta(minutes=2)
CDC_LAG_S = 2.8

# kind -> {label: magnitude}; hours per kind; group of its checks
MAGNITUDES: dict[str, dict[str, float]] = {
    "promo": {"subtle": 1.5, "default": 2.0, "large": 3.0},
    "outage": {"subtle": 0.4, "default": 1.0, "large": 1.0},
    "nulls": {"subtle": 0.08, "default": 0.4, "large": 0.9},
    "dupes": {"subtle": 0.05, "default": 0.3, "large": 0.6},
    "freshness": {"subtle": 0.75, "default": 2.0, "large": 6.0},  # hours stalled
    "schema": {"subtle": 1.0, "default": 2.0, "large": 3.0},  # 1 added, 2 type, 3 dropped
    "category_mix": {"subtle": 0.2, "default": 0.5, "large": 0.8},
    "cdc_stall": {"subtle": 0.75, "default": 2.0, "large": 6.0},  # hours stalled
}
HOURS = {
    "promo": 3.0,
    "outage": 1.0,
    "nulls": 1.0,
    "dupes": 0.5,
    "schema": 4.0,
    "category_mix": 2.0,
}
GROUPS: dict[str, tuple[str, ...]] = {k: ("events",) for k in MAGNITUDES} | {
    "cdc_stall": ("cdc",),
    "promo": ("events", "cdc"),  # a promotion raises orders as well as events
}
START_HOURS = (11, 3, 6, 8, 14, 1, 20, 17)  # UTC; spread over the day (KST = UTC+9)


def default_plan(
    first_day: date, labels: Iterable[str] = ("default", "subtle", "large")
) -> list[Injected]:
    """One incident per day from ``first_day``: every kind at every magnitude label, then two
    declared promotions (which must not alert)."""
    plan = []
    day = 0
    for label in labels:
        for i, kind in enumerate(MAGNITUDES):
            hour = START_HOURS[(i + day) % len(START_HOURS)]
            start = datetime(first_day.year, first_day.month, first_day.day, hour, tzinfo=UTC)
            start += timedelta(days=day)
            mag = MAGNITUDES[kind][label]
            hours = mag if kind in ("freshness", "cdc_stall") else HOURS[kind]
            plan.append(Injected(kind, mag, label, start, hours, GROUPS[kind]))
            day += 1
    for _ in range(2):
        start = datetime(first_day.year, first_day.month, first_day.day, 11, tzinfo=UTC)
        start += timedelta(days=day)
        plan.append(
            Injected("promo", 2.0, "declared", start, 3.0, GROUPS["promo"], calendared=True)
        )
        day += 1
    return plan


def generator_incidents(plan: list[Injected], first: date) -> tuple[Incident, ...]:
    """The plan's kinds the traffic generator injects itself (promo, outage, nulls, dupes)."""
    out = []
    for inc in plan:
        if inc.kind in ("promo", "outage", "nulls", "dupes"):
            out.append(
                Incident(
                    type=inc.kind,  # type: ignore[arg-type]
                    day=(inc.start.date() - first).days,
                    start_hour=inc.start.hour,
                    hours=inc.hours,
                    magnitude=inc.magnitude,
                    column="session_id" if inc.kind == "nulls" else None,
                )
            )
    return tuple(out)


@dataclass
class Simulator:
    """Runs the checks of ``raw.user_events`` and ``raw.cdc_orders`` on the history at ``now``."""

    history: History
    catalog: Catalog
    calendar: PromotionCalendar
    seed_rule: bool = False
    flagged: dict[str, set[datetime]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        events = self.catalog.table(EVENTS)
        cdc = self.catalog.table(CDC)
        assert events.checks and cdc.checks
        self.events, self.cdc = events, cdc
        self.declared = arrow_schema(events)

    def _volume(
        self, spec: TableSpec, base: dict[datetime, float], stall: str, now: datetime
    ) -> CheckResult:
        assert spec.checks and spec.checks.volume
        check = spec.checks.volume
        if self.seed_rule:
            check = check.model_copy(update={"method": "mean14", "threshold": 2.0})
        h = self.history
        counts = VisibleCounts(base, now, lambda s: h.hidden(stall, s, now))
        lo, hi = scored_window(now, check)
        promos = [p.name for p in self.calendar.overlapping(spec.ref, lo, hi)]
        flagged = self.flagged.setdefault(spec.ref, set())
        result = volume_check.evaluate(
            spec.ref,
            check,
            counts,
            now,
            flagged=flagged,
            promotions=promos,
            history_start=datetime(h.start.year, h.start.month, h.start.day, tzinfo=UTC),
        )
        if result.status in ("fail", "expected"):
            flagged.update(datetime.fromisoformat(s) for s in result.details["slots"])
        return result

    def _freshness(self, spec: TableSpec, stall: str, now: datetime) -> CheckResult:
        assert spec.checks and spec.checks.freshness
        stalls = list(self.history.active(stall, now))
        newest = min(s.start for s in stalls) if stalls else now - LOADER_LAG
        return freshness.evaluate(spec.ref, spec.checks.freshness, newest, now)

    def run(self, now: datetime) -> list[CheckResult]:
        h = self.history
        ev = h.events
        checks = self.events.checks
        assert checks and checks.nulls and checks.duplicates and checks.category_mix
        results = [
            self._freshness(self.events, "freshness", now),
            self._volume(self.events, ev.rows, "freshness", now),
            self._freshness(self.cdc, "cdc_stall", now),
            self._volume(self.cdc, h.cdc_rows, "cdc_stall", now),
        ]
        window = (now - timedelta(hours=1), now)
        slots = [window[0], window[0] + SLOT]
        visible = [s for s in slots if not h.hidden("freshness", s, now)]
        rows = int(sum(ev.rows.get(s, 0.0) for s in visible))
        null_counts = {
            c: int(sum(ev.nulls.get(c, {}).get(s, 0.0) for s in visible))
            for c in checks.nulls.columns
        }
        results += [
            replace(r, window_start=window[0], window_end=window[1])
            for r in nulls.evaluate(EVENTS, checks.nulls, rows, null_counts)
        ]
        distinct = int(ev.distinct_hour.get(window[0], 0.0)) if len(visible) == 2 else rows
        results.append(
            duplicates.evaluate(EVENTS, self.events.primary_key, checks.duplicates, rows, distinct)
        )
        if self.seed_rule:
            return results
        found = self.declared
        for inc in h.active("schema", now):
            found = _drifted(self.declared, inc.magnitude)
        results.append(schema_drift.evaluate(EVENTS, self.declared, found))
        results += self._mix(now, checks.category_mix, visible)
        cdc_checks = self.cdc.checks
        assert cdc_checks and cdc_checks.cdc_lag
        cdc_rows = int(
            sum(h.cdc_rows.get(s, 0.0) for s in slots if not h.hidden("cdc_stall", s, now))
        )
        lag = CDC_LAG_S
        for inc in h.incidents:  # a recovered stall delivers its backlog late
            if inc.kind == "cdc_stall" and inc.end <= now < inc.end + timedelta(hours=1):
                lag = inc.hours * 3600 / 2
        results.append(cdc_lag.evaluate(CDC, cdc_checks.cdc_lag, cdc_rows, lag, lag * 2))
        return results

    def _mix(self, now: datetime, check: Any, visible: list[datetime]) -> list[CheckResult]:
        out = []
        ev = self.history.events
        sessions = sum(ev.session_sq.get(s, 0.0) for s in visible)
        rows = sum(ev.rows.get(s, 0.0) - ev.nulls["session_id"].get(s, 0.0) for s in visible)
        deff = sessions / rows if rows else 1.0
        lags = category_mix.windows(now, 60)
        recent = lags[-1]
        for column in check.columns:
            counts: dict[tuple[datetime, str | None], float] = {}
            source = self.history.events.mix.get(column, {})
            for lo, _hi in lags:
                for s in (lo, lo + SLOT):
                    if lo == recent[0] and s not in visible:
                        continue
                    shift = self.history.mix_shift(s) if column == "event_type" else 0.0
                    for (slot, value), n in _slot_values(source, s):
                        counts[(slot, value)] = counts.get((slot, value), 0.0) + n * (1 - shift)
                    if shift:
                        total = sum(n for _, n in _slot_values(source, s))
                        key = (s, "page_view")
                        counts[key] = counts.get(key, 0.0) + total * shift
            current, baseline, weeks = category_mix.split(
                counts, recent, self.flagged.get(EVENTS, ())
            )
            out.append(
                category_mix.evaluate(
                    EVENTS,
                    column,
                    check,
                    current,
                    baseline,
                    window=recent,
                    lags=weeks,
                    design_effect=deff,
                )
            )
        return out


def _slot_values(
    source: dict[tuple[datetime, str], float], slot: datetime
) -> list[tuple[tuple[datetime, str], float]]:
    index = _index_cache.get(id(source))
    if index is None:
        index = {}
        for (s, v), n in source.items():
            index.setdefault(s, []).append(((s, v), n))
        _index_cache[id(source)] = index
    return index.get(slot, [])


_index_cache: dict[int, dict[datetime, list[tuple[tuple[datetime, str], float]]]] = {}


def _drifted(declared: pa.Schema, kind: float) -> pa.Schema:
    if kind == 1.0:
        return declared.append(pa.field("experiment_variant", pa.string()))
    if kind == 2.0:
        i = declared.get_field_index("value")
        return declared.set(i, pa.field("value", pa.string()))
    return declared.remove(declared.get_field_index("page_title"))


@dataclass
class Alert:
    at: datetime
    group: str
    checks: tuple[str, ...]
    incident: Injected | None = None


@dataclass
class Score:
    """The figures of one configuration."""

    precision: float
    recall: float
    mttd_minutes: float
    false_alerts_per_week: float
    alerts: int
    incidents: int
    recall_by_label: dict[str, float]
    recall_by_kind: dict[str, float]
    missed: list[str]
    false_alerts: list[str]

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def run_agent(sim: Simulator, start: datetime, end: datetime, quiet: timedelta) -> list[Alert]:
    """Every 30 minutes from ``start`` to ``end``: checks, grouping, alert decision."""
    states: dict[str, IncidentState] = {}
    alerts: list[Alert] = []
    now = start
    while now < end:
        results = sim.run(now)
        failing = group_failing(sim.catalog, results)
        for group in set(failing) | set(states):
            decision = decide(group, failing.get(group, []), states.get(group), now, quiet)
            if decision is None:
                continue
            states[group] = decision.state
            if decision.action == "opened":
                alerts.append(Alert(now, group, decision.state.checks))
        now += SLOT
    return alerts


def score(
    alerts: list[Alert],
    plan: list[Injected],
    clean: tuple[datetime, datetime],
    labels: tuple[str, ...] | None = None,
) -> Score:
    """Match alerts to incidents and compute the figures.

    With ``labels``, only incidents of those magnitude labels count: an alert on an incident of
    another label is neither true nor false (it is left out).
    """
    detected: dict[int, datetime] = {}
    false: list[Alert] = []
    counted = 0
    for alert in alerts:
        match = None
        for i, inc in enumerate(plan):
            if alert.group in inc.groups and inc.start <= alert.at <= inc.end + GRACE:
                match = i
                break
        if (
            match is not None
            and labels
            and not plan[match].calendared
            and plan[match].label not in labels
        ):
            continue
        counted += 1
        if match is None or plan[match].calendared:
            false.append(alert)
            continue
        alert.incident = plan[match]
        detected.setdefault(match, alert.at)
    real = [
        i
        for i, inc in enumerate(plan)
        if not inc.calendared and (not labels or inc.label in labels)
    ]
    ttd = [(detected[i] - plan[i].start).total_seconds() / 60 for i in real if i in detected]
    weeks = (clean[1] - clean[0]) / timedelta(days=7)
    clean_false = [a for a in false if clean[0] <= a.at < clean[1]]

    def recall_of(pred: Any) -> float:
        idx = [i for i in real if pred(plan[i])]
        return round(sum(1 for i in idx if i in detected) / len(idx), 3) if idx else 0.0

    return Score(
        precision=round((counted - len(false)) / counted, 3) if counted else 1.0,
        recall=recall_of(lambda inc: True),
        mttd_minutes=statistics.median(ttd) if ttd else float("nan"),
        false_alerts_per_week=round(len(clean_false) / weeks, 3),
        alerts=counted,
        incidents=len(real),
        recall_by_label={
            lb: recall_of(lambda inc, lb=lb: inc.label == lb)
            for lb in ("subtle", "default", "large")
            if not labels or lb in labels
        },
        recall_by_kind={k: recall_of(lambda inc, k=k: inc.kind == k) for k in MAGNITUDES},
        missed=[
            f"{plan[i].kind}/{plan[i].label}@{plan[i].start:%m-%d %H}h"
            for i in real
            if i not in detected
        ],
        false_alerts=[f"{a.group}@{a.at:%m-%d %H:%M} {','.join(a.checks)}" for a in false],
    )


@dataclass
class BacktestResult:
    """Figures for our detector and for the common rule, on the same history."""

    ours: Score
    seed_rule: Score
    ours_default: Score
    seed_rule_default: Score
    days: int
    scale: float

    def figures(self) -> dict[str, float]:
        out = {
            "quality.backtest.precision": self.ours_default.precision,
            "quality.backtest.recall": self.ours_default.recall,
            "quality.backtest.false_alerts_per_week": self.ours.false_alerts_per_week,
            "quality.backtest.mttd_minutes": self.ours_default.mttd_minutes,
            "quality.backtest.all_magnitudes.precision": self.ours.precision,
            "quality.backtest.all_magnitudes.recall": self.ours.recall,
            "quality.backtest.seed_rule.precision": self.seed_rule_default.precision,
            "quality.backtest.seed_rule.recall": self.seed_rule_default.recall,
            "quality.backtest.seed_rule.false_alerts_per_week": (
                self.seed_rule.false_alerts_per_week
            ),
            "quality.backtest.seed_rule.mttd_minutes": self.seed_rule_default.mttd_minutes,
        }
        for label, r in self.ours.recall_by_label.items():
            out[f"quality.backtest.recall.{label}"] = r
        return out


def backtest(
    *,
    warmup_days: int = 28,
    clean_days: int = 28,
    start: date = date(2026, 8, 3),
    scale: float = 0.05,
    seed: int = 7,
    quiet: timedelta = timedelta(hours=2),
    catalog: Catalog | None = None,
) -> BacktestResult:
    """Simulate, run both configurations, score them."""
    catalog = catalog or load_catalog()
    first_incident = start + timedelta(days=warmup_days + clean_days)
    plan = default_plan(first_incident)
    days = warmup_days + clean_days + len(plan) + 1
    history = simulate(
        start,
        days,
        plan,
        generator_incidents=generator_incidents(plan, start),
        scale=scale,
        seed=seed,
    )
    calendar = PromotionCalendar(
        promotions=tuple(
            Promotion(
                name=f"declared promotion {i}", start=inc.start, end=inc.end, tables=(EVENTS, CDC)
            )
            for i, inc in enumerate(p for p in plan if p.calendared)
        )
    )
    run_from = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(
        days=warmup_days
    )
    run_to = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=days)
    clean = (run_from, run_from + timedelta(days=clean_days))
    scores = {}
    for seed_rule in (False, True):
        sim = Simulator(history, catalog, calendar, seed_rule=seed_rule)
        alerts = run_agent(sim, run_from, run_to, quiet)
        scores[seed_rule] = (score(alerts, plan, clean), score(alerts, plan, clean, ("default",)))
    return BacktestResult(
        ours=scores[False][0],
        seed_rule=scores[True][0],
        ours_default=scores[False][1],
        seed_rule_default=scores[True][1],
        days=days,
        scale=scale,
    )
