"""Known calendar events (promotions, sales), declared as data in ``schemas/calendar/``.

A volume change inside a declared promotion is reported as ``expected``, not as an incident.
The calendar is ``schemas/calendar/promotions.yaml``; ``edp schemas build`` validates it and
packages it as ``edp/contracts/generated/promotions.json`` (a deployed function has no
``schemas/`` folder)::

    promotions:
      - name: Black Friday
        start: 2026-11-27T00:00:00+09:00
        end: 2026-11-28T00:00:00+09:00
        tables: [raw.user_events, raw.cdc_orders]   # empty: every table

Example:
    >>> from datetime import UTC, datetime
    >>> cal = PromotionCalendar(promotions=[Promotion(name="sale",
    ...     start=datetime(2026, 12, 1, tzinfo=UTC), end=datetime(2026, 12, 2, tzinfo=UTC))])
    >>> cal.active("raw.user_events", datetime(2026, 12, 1, 12, tzinfo=UTC))[0].name
    'sale'
    >>> cal.active("raw.user_events", datetime(2026, 12, 3, tzinfo=UTC))
    []
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from pathlib import Path

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

PACKAGED_PROMOTIONS = Path(__file__).parents[1] / "contracts" / "generated" / "promotions.json"


class Promotion(BaseModel):
    """One promotion window: volume changes of its tables inside it are expected."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1)
    start: AwareDatetime
    end: AwareDatetime
    tables: tuple[str, ...] = ()
    description: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Promotion:
        if self.end <= self.start:
            raise ValueError(f"promotion {self.name!r}: end must be after start")
        return self

    def covers(self, table: str, at: datetime) -> bool:
        """Whether ``table`` is in this promotion at ``at``."""
        return (not self.tables or table in self.tables) and self.start <= at < self.end


class PromotionCalendar(BaseModel):
    """The whole calendar."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    promotions: tuple[Promotion, ...] = ()

    def active(self, table: str, at: datetime) -> list[Promotion]:
        """Promotions covering ``table`` at ``at``."""
        return [p for p in self.promotions if p.covers(table, at)]

    def overlapping(self, table: str, start: datetime, end: datetime) -> list[Promotion]:
        """Promotions covering ``table`` at any time of ``[start, end)``."""
        return [
            p
            for p in self.promotions
            if (not p.tables or table in p.tables) and p.start < end and start < p.end
        ]


@lru_cache(maxsize=1)
def load_calendar() -> PromotionCalendar:
    """The packaged calendar (compiled from ``schemas/calendar/promotions.yaml``)."""
    return PromotionCalendar.model_validate_json(PACKAGED_PROMOTIONS.read_text(encoding="utf-8"))
