"""What every check gets: the warehouse, the run time, the catalogue, calendar and history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from edp.contracts.catalog import Catalog, TableSpec
from edp.quality.calendar import PromotionCalendar
from edp.warehouse.port import Warehouse


@dataclass(frozen=True)
class CheckContext:
    """The inputs of one run's checks."""

    warehouse: Warehouse
    now: datetime
    catalog: Catalog
    calendar: PromotionCalendar = field(default_factory=PromotionCalendar)
    #: table ref -> slot starts of windows earlier runs flagged (left out of volume training)
    flagged: Mapping[str, frozenset[datetime]] = field(default_factory=dict)
    #: ``mean14`` runs every volume check with the moving-average rule instead (comparisons)
    volume_method: str | None = None

    def window(self, spec: TableSpec) -> tuple[datetime, datetime]:
        """The recent window ``[now - window_minutes, now)`` the row checks look at."""
        assert spec.checks is not None
        return self.now - timedelta(minutes=spec.checks.window_minutes), self.now
