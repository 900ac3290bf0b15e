"""The backtest's scoring (counted by hand) and its simulator on a small synthetic history."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from edp.contracts.catalog import load_catalog
from edp.quality.calendar import PromotionCalendar
from edp_tools.quality.backtest import (
    MAGNITUDES,
    Alert,
    Simulator,
    default_plan,
    run_agent,
    score,
)
from edp_tools.quality.history import SLOT, History, Injected, Metrics

T0 = datetime(2026, 9, 1, tzinfo=UTC)


def test_score_counted_by_hand() -> None:
    day = timedelta(days=1)
    outage = Injected(
        "outage", 1.0, "default", T0 + 8 * day + timedelta(hours=10), 1.0, ("events",)
    )
    subtle = Injected("outage", 0.4, "subtle", T0 + 9 * day + timedelta(hours=6), 1.0, ("events",))
    promo = Injected("promo", 2.0, "declared", T0 + 10 * day + timedelta(hours=11), 3.0,
                     ("events", "cdc"), calendared=True)  # fmt: skip
    alerts = [
        Alert(T0 + 3 * day + timedelta(hours=3), "events", ("x",)),  # clean week: false
        Alert(outage.start + timedelta(minutes=30), "events", ("v",)),  # true, 30 min
        Alert(outage.start + timedelta(minutes=60), "cdc", ("v",)),  # wrong group: false
        Alert(promo.start + timedelta(minutes=30), "events", ("v",)),  # declared promo: false
    ]
    clean = (T0, T0 + 7 * day)
    s = score(alerts, [outage, subtle, promo], clean)
    # 4 alerts, 1 true -> precision 0.25; 2 real incidents, 1 found -> recall 0.5
    assert (s.precision, s.recall, s.mttd_minutes) == (0.25, 0.5, 30.0)
    assert s.false_alerts_per_week == 1.0  # one false alert in one clean week
    assert s.missed == ["outage/subtle@09-10 06h"]
    only_default = score(alerts, [outage, subtle, promo], clean, ("default",))
    assert (only_default.incidents, only_default.recall) == (1, 1.0)


def test_the_plan_has_every_kind_at_every_magnitude_and_declared_promotions() -> None:
    plan = default_plan(date(2026, 10, 1))
    pairs = {(i.kind, i.label) for i in plan if not i.calendared}
    assert pairs == {(k, lb) for k in MAGNITUDES for lb in ("subtle", "default", "large")}
    assert sum(i.calendared for i in plan) == 2
    starts = [i.start.date() for i in plan]
    assert len(set(starts)) == len(starts)  # one incident a day


def synthetic(days: int, incidents: list[Injected]) -> History:
    """Flat traffic: 1000 rows a slot, 5 rows per session, a fixed mix; outages zeroed."""
    m = Metrics()
    for i in range(days * 48):
        s = T0 + i * SLOT
        lost = any(x.kind == "outage" and x.start <= s < x.end for x in incidents)
        n = 0.0 if lost else 1000.0
        m.rows[s] = n
        m.session_sq[s] = n * 5
        for c in (
            "event_id",
            "event_type",
            "anonymous_id",
            "session_id",
            "device_type",
            "platform",
        ):
            m.nulls.setdefault(c, {})[s] = 0.0
        m.mix.setdefault("event_type", {})[(s, "page_view")] = 0.6 * n
        m.mix["event_type"][(s, "view_item")] = 0.4 * n
        m.mix.setdefault("device_type", {})[(s, "mobile")] = n
        m.mix.setdefault("platform", {})[(s, "web")] = n
    for i in range(days * 48):
        s = T0 + i * SLOT
        m.distinct_hour[s] = m.rows[s] + m.rows.get(s + SLOT, 0.0)
    cdc = {s: 200.0 for s in m.rows}
    return History(T0.date(), days, 1.0, m, cdc, incidents)


@pytest.mark.parametrize("seed_rule", [False, True])
def test_the_simulator_finds_an_outage_and_a_stall_and_nothing_else(seed_rule: bool) -> None:
    day = timedelta(days=1)
    outage = Injected(
        "outage", 1.0, "default", T0 + 33 * day + timedelta(hours=10), 1.0, ("events",)
    )
    stall = Injected("cdc_stall", 2.0, "default", T0 + 34 * day + timedelta(hours=4), 2.0, ("cdc",))
    history = synthetic(36, [outage, stall])
    sim = Simulator(history, load_catalog(), PromotionCalendar(), seed_rule=seed_rule)
    alerts = run_agent(sim, T0 + 32 * day, T0 + 36 * day, timedelta(hours=2))
    s = score(alerts, [outage, stall], (T0 + 32 * day, T0 + 33 * day))
    assert s.recall == 1.0
    assert s.precision == 1.0
    # the outage empties [10:00, 11:00): the 10:30 run sees half its hour missing (-50 %);
    # the CDC stall hides [04:00, 04:30) from the 04:30 run: also -50 % (freshness, 30 minutes
    # old, is not yet past its 30-minute SLA)
    assert sorted(a.at for a in alerts) == [
        outage.start + timedelta(minutes=30),
        stall.start + timedelta(minutes=30),
    ]
