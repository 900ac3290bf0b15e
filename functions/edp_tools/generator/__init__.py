"""Realistic synthetic e-commerce traffic (``edp generate``), seeded and vectorised.

A day is ~2.84 M GA4-named events (``scale`` 1) from a user population with returning users,
sessions, a product catalogue and a checkout funnel (7-day CVR ~12 %), with daily (17x night to
peak, KST) and weekly seasonality, client clock skew, and optional injected incidents recorded
in a ground-truth file. See :mod:`edp_tools.generator.model` for the numbers and why.

Two sinks: :func:`edp_tools.generator.sinks.write_warehouse` (Arrow batches straight into
``raw.user_events``, server fields filled as ingest would) and
:class:`edp_tools.generator.sinks.HttpSender` (JSON request bodies POSTed to ``/v1/events``).

Example:
    >>> from datetime import date
    >>> gen = Generator(GeneratorConfig(start=date(2026, 11, 23), scale=0.002, seed=1))
    >>> day = next(gen.days())
    >>> 4_000 < day.table.num_rows < 7_500
    True
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property

from edp_tools.generator.catalog import Catalogue, build_catalogue
from edp_tools.generator.core import COLUMNS, DayResult, generate_day
from edp_tools.generator.incidents import GroundTruth, Incident, parse_incidents
from edp_tools.generator.model import GeneratorConfig, Population, build_population


class Generator:
    """Generates the configured days one at a time and keeps the ground truth."""

    def __init__(self, config: GeneratorConfig) -> None:
        self.config = config
        self.ground_truth = GroundTruth(
            seed=config.seed, start=config.start, days=config.days, scale=config.scale
        )

    @cached_property
    def catalogue(self) -> Catalogue:
        return build_catalogue(self.config.seed, self.config.n_products)

    @cached_property
    def population(self) -> Population:
        return build_population(self.config)

    def day(self, day: int) -> DayResult:
        """Generated day ``day`` (0-based); records it in the ground truth."""
        result = generate_day(self.config, self.population, self.catalogue, day)
        day_start = self.config.day_start(day)
        self.ground_truth.daily_events[day_start.date().isoformat()] = result.num_rows
        for incident, count in result.affected.items():
            self.ground_truth.record(incident, day_start, count)
        return result

    def days(self) -> Iterator[DayResult]:
        """Every configured day, in order."""
        for day in range(self.config.days):
            yield self.day(day)


__all__ = [
    "COLUMNS",
    "DayResult",
    "Generator",
    "GeneratorConfig",
    "GroundTruth",
    "Incident",
    "parse_incidents",
]
