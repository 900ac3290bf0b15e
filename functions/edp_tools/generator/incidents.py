"""Injected incidents and the ground-truth file that lets quality checks be scored.

Four kinds, each over a time window of one generated day:

==========  =====================================================  ==========================
type        what happens to ``raw.user_events``                    magnitude
==========  =====================================================  ==========================
promo       session arrivals multiplied (a flash sale, coupon)      arrival multiplier (2.0)
outage      events of the window never arrive (SDK/tracking bug)   fraction lost (1.0)
nulls       a key column is null for a share of the window         null fraction (0.4)
dupes       clients re-send events (retry storm): same event_id    fraction re-sent (0.3)
==========  =====================================================  ==========================

A spec on the command line is ``type`` or ``type@DAY`` or ``type@DAYTHOUR`` (DAY = index of the
generated day, HOUR = UTC start hour), optionally followed by ``xMAGNITUDE``, e.g.
``promo@6T11x2.5``. Defaults put each incident on the last generated day.

Example:
    >>> parse_incident("outage@0T03").start_hour
    3
    >>> parse_incident("promo x2").magnitude
    2.0
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from edp.errors import ConfigError

IncidentType = Literal["promo", "outage", "nulls", "dupes"]

# type -> (start hour UTC, hours, magnitude, column)
DEFAULTS: dict[str, tuple[int, float, float, str | None]] = {
    "promo": (11, 3.0, 2.0, None),  # 20:00-23:00 KST, the evening peak
    "outage": (3, 1.0, 1.0, None),  # 12:00-13:00 KST
    "nulls": (6, 1.0, 0.4, "session_id"),  # 15:00-16:00 KST
    "dupes": (8, 0.5, 0.3, None),  # 17:00-17:30 KST
}
_SPEC = re.compile(
    r"^(?P<type>[a-z]+)(?:@(?P<day>\d+)(?:T(?P<hour>\d{1,2}))?)?\s*(?:x(?P<mag>[0-9.]+))?$"
)


@dataclass(frozen=True)
class Incident:
    """One incident to inject (``day`` None = the last generated day)."""

    type: IncidentType
    day: int | None = None
    start_hour: int = 0
    hours: float = 1.0
    magnitude: float = 1.0
    column: str | None = None
    table: str = "raw.user_events"

    def window(self, day_start: datetime) -> tuple[datetime, datetime]:
        """Start and end (UTC) of the incident on the day starting at ``day_start``."""
        start = day_start + timedelta(hours=self.start_hour)
        return start, start + timedelta(hours=self.hours)


def parse_incident(spec: str) -> Incident:
    """An :class:`Incident` from ``type[@DAY[THOUR]][xMAGNITUDE]``.

    Raises:
        ConfigError: unknown type or malformed spec.
    """
    match = _SPEC.match(spec.strip().replace(" ", ""))
    if not match or match["type"] not in DEFAULTS:
        raise ConfigError(
            f"bad incident {spec!r}; expected one of {sorted(DEFAULTS)} "
            "optionally as type@DAY[THOUR][xMAGNITUDE], e.g. promo@6T11x2.5"
        )
    kind = match["type"]
    hour, hours, magnitude, column = DEFAULTS[kind]
    if match["hour"] is not None:
        hour = int(match["hour"])
        if not 0 <= hour <= 23:
            raise ConfigError(f"bad incident hour in {spec!r}")
    if match["mag"] is not None:
        magnitude = float(match["mag"])
    incident = Incident(
        type=kind,  # type: ignore[arg-type]
        day=None if match["day"] is None else int(match["day"]),
        start_hour=hour,
        hours=hours,
        magnitude=magnitude,
        column=column,
    )
    validate(incident)
    return incident


def parse_incidents(specs: str | list[str] | tuple[str, ...] | None) -> tuple[Incident, ...]:
    """Comma-separated specs (or a list of them) -> incidents; empty or None -> none."""
    if not specs:
        return ()
    items = specs.split(",") if isinstance(specs, str) else list(specs)
    return tuple(parse_incident(s) for s in items if s.strip())


def validate(incident: Incident) -> None:
    """Raises ConfigError when the magnitude makes no sense for the type."""
    if incident.type == "promo" and incident.magnitude <= 1.0:
        raise ConfigError("a promo multiplies arrivals: magnitude must be > 1")
    if incident.type in ("outage", "nulls", "dupes") and not 0 < incident.magnitude <= 1:
        raise ConfigError(f"{incident.type} magnitude is a fraction in (0, 1]")


def resolve_days(incidents: tuple[Incident, ...], days: int) -> tuple[Incident, ...]:
    """Pin each incident to a day index (default: the last day); checks it is in range."""
    out = []
    for inc in incidents:
        day = days - 1 if inc.day is None else inc.day
        if not 0 <= day < days:
            raise ConfigError(f"{inc.type} incident on day {day} but only {days} day(s) generated")
        out.append(replace(inc, day=day))
    return tuple(out)


@dataclass
class GroundTruth:
    """What was generated and which incidents were injected where (written as JSON)."""

    seed: int
    start: date
    days: int
    scale: float
    daily_events: dict[str, int] = field(default_factory=dict)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def record(self, incident: Incident, day_start: datetime, affected_events: int) -> None:
        """Add one injected incident with the number of events it touched."""
        start, end = incident.window(day_start)
        entry = asdict(incident)
        entry.pop("day")
        entry.pop("start_hour")
        entry.pop("hours")
        entry.update(
            start=start.astimezone(UTC).isoformat(),
            end=end.astimezone(UTC).isoformat(),
            affected_events=int(affected_events),
            description=_DESCRIPTIONS[incident.type],
        )
        # generating a day again replaces its record instead of listing the incident twice
        self.incidents = [
            i for i in self.incidents if (i["type"], i["start"]) != (entry["type"], entry["start"])
        ]
        self.incidents.append(entry)

    def to_json(self) -> str:
        doc = {
            "seed": self.seed,
            "start": self.start.isoformat(),
            "days": self.days,
            "scale": self.scale,
            "daily_events": self.daily_events,
            "incidents": sorted(self.incidents, key=lambda i: (i["start"], i["type"])),
        }
        return json.dumps(doc, indent=2) + "\n"

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")


_DESCRIPTIONS = {
    "promo": "promotion spike: session arrivals multiplied by magnitude (volume up, z-score)",
    "outage": "tracking outage: this share of the window's events never arrived (volume down)",
    "nulls": "null-rate burst: this share of the window's events has the column null",
    "dupes": "duplicate storm: this share of the window's events re-sent with the same event_id",
}
