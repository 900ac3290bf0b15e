"""Small generated data sets shared by the generator tests (built once per module/session)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest

from edp_tools.generator import Generator, GeneratorConfig, parse_incidents

WEEK_START = date(2026, 11, 16)  # a Monday
WEEK_SCALE = 0.02  # ~57 k events/day: enough for stable ratios, ~1 s per day
INCIDENT_DAY = date(2026, 11, 24)  # a Tuesday


@pytest.fixture(scope="session")
def week() -> pa.Table:
    """Seven days (Mon..Sun) at 2 % volume, no incidents, with a ``day`` column."""
    gen = Generator(GeneratorConfig(start=WEEK_START, days=7, scale=WEEK_SCALE, seed=11))
    tables = []
    for result in gen.days():
        n = result.table.num_rows
        tables.append(result.table.append_column("day", pa.array([result.day] * n, pa.int32())))
    return pa.concat_tables(tables)


@pytest.fixture(scope="session")
def incident_run() -> Generator:
    """One day with every incident kind, generated (the Generator keeps the ground truth)."""
    gen = Generator(
        GeneratorConfig(
            start=INCIDENT_DAY,
            days=1,
            scale=WEEK_SCALE,
            seed=5,
            incidents=parse_incidents("promo,outage,nulls,dupes"),
        )
    )
    gen.result = gen.day(0)  # type: ignore[attr-defined]
    return gen
