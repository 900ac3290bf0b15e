"""Simulated history for the backtest: per-slot metrics of generated days, with incidents.

``raw.user_events`` comes from the real traffic generator (:mod:`edp_tools.generator`, small
``scale``) aggregated per 30-minute slot with DuckDB: rows, NULLs per key column, distinct
event ids per hour window, event_type/device_type/platform counts. ``raw.cdc_orders`` change
rows are drawn per slot from the generated purchase share at production volume (two changes per
order: created, paid), so CDC checks see production-like counts even at a small scale.

Incidents the generator cannot make (freshness stall, schema drift, category-mix shift, CDC
stall) are applied to these metrics by :class:`History` at read time: what a run at ``now``
would see (a stalled loader hides the rows of its window until it recovers).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pyarrow as pa

from edp_tools.generator import Generator, GeneratorConfig, Incident
from edp_tools.generator.model import DAY_NOISE_SIGMA, EVENTS_PER_DAY, WEEKLY, minute_profile

SLOT = timedelta(minutes=30)
NULL_COLUMNS = ("event_id", "event_type", "anonymous_id", "session_id", "device_type", "platform")
MIX_COLUMNS = ("event_type", "device_type", "platform")
CDC_CHANGES_PER_ORDER = 2.0


@dataclass(frozen=True)
class Injected:
    """One injected incident of the backtest (ground truth)."""

    kind: str
    magnitude: float
    label: str  # subtle, default, large
    start: datetime
    hours: float
    groups: tuple[str, ...]  # incident groups whose checks it fails (events, cdc)
    calendared: bool = False  # a declared promotion: alerting on it is a false alert

    @property
    def end(self) -> datetime:
        return self.start + timedelta(hours=self.hours)


@dataclass
class Metrics:
    """Per-slot metrics of one simulated table."""

    rows: dict[datetime, float] = field(default_factory=dict)
    nulls: dict[str, dict[datetime, float]] = field(default_factory=dict)
    distinct_hour: dict[datetime, float] = field(default_factory=dict)  # window start -> ids
    session_sq: dict[datetime, float] = field(default_factory=dict)  # sum of (rows/session)^2
    mix: dict[str, dict[tuple[datetime, str], float]] = field(default_factory=dict)


def aggregate_day(table: pa.Table, metrics: Metrics) -> float:
    """Add one generated day's slot metrics to ``metrics``; returns its purchase share."""
    con = duckdb.connect()
    con.register("t", table.select(["event_id", "event_timestamp", *NULL_COLUMNS[1:]]))
    nulls = ", ".join(f"COUNT(*) FILTER (WHERE {c} IS NULL)" for c in NULL_COLUMNS)
    epoch = "CAST(FLOOR(epoch(event_timestamp) / 1800) AS BIGINT)"

    def at(s: int) -> datetime:
        return datetime.fromtimestamp(s * 1800, tz=UTC)

    for row in con.execute(f"SELECT {epoch} AS s, COUNT(*), {nulls} FROM t GROUP BY s").fetchall():
        slot = at(int(row[0]))
        metrics.rows[slot] = metrics.rows.get(slot, 0.0) + row[1]
        for c, n in zip(NULL_COLUMNS, row[2:], strict=True):
            metrics.nulls.setdefault(c, {})[slot] = n
    for offset in (0, 1800):  # hour windows starting at :00 and at :30
        sql = (
            f"SELECT CAST(FLOOR((epoch(event_timestamp) - {offset}) / 3600) AS BIGINT) AS h, "
            "COUNT(DISTINCT event_id) FROM t GROUP BY h"
        )
        for h, d in con.execute(sql).fetchall():
            key = datetime.fromtimestamp(h * 3600 + offset, tz=UTC)
            # a window across midnight gets a part from each day (event ids are unique per day)
            metrics.distinct_hour[key] = metrics.distinct_hour.get(key, 0.0) + d
    sql = (
        "SELECT s, SUM(m * m) FROM (SELECT "
        f"{epoch} AS s, session_id, COUNT(*) AS m FROM t WHERE session_id IS NOT NULL "
        "GROUP BY s, session_id) GROUP BY s"
    )
    for s, sq in con.execute(sql).fetchall():
        metrics.session_sq[at(int(s))] = float(sq)
    for c in MIX_COLUMNS:
        sql = f"SELECT {epoch} AS s, {c}, COUNT(*) FROM t GROUP BY s, {c}"
        target = metrics.mix.setdefault(c, {})
        for s, v, n in con.execute(sql).fetchall():
            target[(at(int(s)), str(v))] = n
    total, purchases = con.execute(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE event_type = 'purchase') FROM t"
    ).fetchone() or (0, 0)
    con.close()
    return purchases / total if total else 0.0


def cdc_changes(
    start: date, days: int, incidents: list[Injected], share: float, rng: np.random.Generator
) -> dict[datetime, float]:
    """``raw.cdc_orders`` change rows per slot at production volume: orders at the generator's
    purchase share of its full-scale event rate (daily and weekly profile, day-to-day noise),
    raised by promotions (a tracking outage or duplicate storm loses or repeats events, not
    orders), Poisson-drawn."""
    profile = minute_profile().reshape(48, 30).mean(axis=1) / 48.0  # share of a day per slot
    out: dict[datetime, float] = {}
    for d in range(days):
        day = datetime(start.year, start.month, start.day, tzinfo=UTC) + timedelta(days=d)
        level = EVENTS_PER_DAY * WEEKLY[day.weekday()] * rng.lognormal(0.0, DAY_NOISE_SIGMA)
        for k in range(48):
            slot = day + k * SLOT
            lam = CDC_CHANGES_PER_ORDER * share * level * profile[k]
            for inc in incidents:
                if inc.kind == "promo" and inc.start <= slot < inc.end:
                    lam *= inc.magnitude
            out[slot] = float(rng.poisson(lam))
    return out


@dataclass
class History:
    """All simulated slot metrics, and the incidents that change what a run sees."""

    start: date
    days: int
    scale: float
    events: Metrics
    cdc_rows: dict[datetime, float]
    incidents: list[Injected]

    def __post_init__(self) -> None:
        self._stalls: dict[str, list[tuple[datetime, datetime]]] = {}
        for inc in self.incidents:
            self._stalls.setdefault(inc.kind, []).append((inc.start, inc.end))

    def active(self, kind: str, now: datetime) -> Iterator[Injected]:
        for inc in self.incidents:
            if inc.kind == kind and inc.start <= now < inc.end:
                yield inc

    def hidden(self, kind: str, slot: datetime, now: datetime) -> bool:
        """A stall of ``kind`` running at ``now`` hides rows of its slots written so far."""
        return any(lo <= slot < now < hi for lo, hi in self._stalls.get(kind, ()))

    def mix_shift(self, slot: datetime) -> float:
        """Share of events relabelled by a category-mix incident covering ``slot``."""
        return sum(
            inc.magnitude
            for inc in self.incidents
            if inc.kind == "category_mix" and inc.start <= slot < inc.end
        )


class VisibleCounts(Mapping[datetime, float]):
    """Slot counts as a run at ``now`` sees them (stalled slots empty, future slots absent)."""

    def __init__(self, base: Mapping[datetime, float], now: datetime, hide: object) -> None:
        self._base, self._now, self._hide = base, now, hide

    def __getitem__(self, slot: datetime) -> float:
        if slot >= self._now or self._hide(slot):  # type: ignore[operator]
            raise KeyError(slot)
        return self._base[slot]

    def __iter__(self) -> Iterator[datetime]:
        return (s for s in self._base if s in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __contains__(self, slot: object) -> bool:
        try:
            self[slot]  # type: ignore[index]
        except KeyError:
            return False
        return True


def simulate(
    start: date,
    days: int,
    incidents: list[Injected],
    *,
    generator_incidents: tuple[Incident, ...],
    scale: float = 0.05,
    seed: int = 7,
) -> History:
    """Generate ``days`` days and aggregate them (the generator injects its own kinds)."""
    gen = Generator(
        GeneratorConfig(
            start=start, days=days, seed=seed, scale=scale, incidents=generator_incidents
        )
    )
    events = Metrics()
    rng = np.random.default_rng(seed)
    shares: list[float] = []
    for day in range(days):
        result = gen.day(day)
        shares.append(aggregate_day(result.table, events))
    cdc = cdc_changes(start, days, incidents, float(np.mean(shares)), rng)
    return History(start, days, scale, events, cdc, incidents)
