"""What a demo run does: its size, its timeline and where it writes.

Sizes trade depth for time on a 2-core laptop. ``scale`` is the generator's (1.0 = the
reference shop's ~2.84 M events a day); every day, history and live, uses the same scale and
the same user population, so DAU, retention and funnels run on continuously through the
replayed day.

Example:
    >>> cfg = DemoConfig.for_size("small", today=date(2026, 11, 27))
    >>> cfg.live_day, cfg.history_start
    (datetime.date(2026, 11, 26), datetime.date(2026, 11, 23))
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Literal

from edp.errors import ConfigError

SizeName = Literal["small", "default", "large"]
EtlMode = Literal["auto", "workflow", "calls"]


@dataclass(frozen=True)
class DemoSize:
    """One preset of :data:`SIZES`.

    Attributes:
        scale: Generator scale of every day (events per day = 2.84 M x scale).
        history_days: Days loaded on the fast path before the replayed day.
        replay_seconds: Wall time the replayed day's 24 hours are compressed into.
        shop_tps: Shop transactions per second written to PostgreSQL during the replay.
        bad_fraction: Share of the replayed events deliberately malformed (refusal path).
    """

    scale: float
    history_days: int
    replay_seconds: float
    shop_tps: float
    bad_fraction: float = 0.002


SIZES: dict[str, DemoSize] = {
    # The test size: seconds of work, every stage and chart still exercised.
    "small": DemoSize(scale=0.002, history_days=3, replay_seconds=12.0, shop_tps=15.0),
    # The README's main command. Measured on this 2-core machine with scale 0.02 / 75 s:
    # 151-181 s (fresh clone, install included: 163 s) while other work ran, but 244-263 s under
    # load averages of 20-30; sized down to keep the 5-minute bar with room on a busy laptop.
    "default": DemoSize(scale=0.015, history_days=14, replay_seconds=60.0, shop_tps=25.0),
    "large": DemoSize(scale=0.1, history_days=14, replay_seconds=240.0, shop_tps=40.0),
}


@dataclass(frozen=True)
class DemoConfig:
    """A demo run.

    Attributes:
        size_name: The preset's name (shown in the report).
        size: The preset (possibly with ``history_days`` overridden).
        live_day: The UTC day replayed live over HTTP (yesterday by default, a complete day).
        out_dir: Where ``index.html`` and ``summary.md`` go.
        state_dir: Scratch folder of this run (PostgreSQL, DuckDB file, logs); wiped first.
        seed: Generator and shop-simulator seed.
        batch_size: Events per ingest request (SDKs flush small batches).
        concurrency: Concurrent ingest requests of the replay.
        catch_up_timeout_s: Longest wait for the stream load / CDC to catch up.
        etl_mode: ``workflow``: run workflows/daily_etl.yaml in the workflows-emulator (its
            venv is built in the background); ``calls``: the workflow's HTTP calls, in its
            order, from the demo; ``auto``: the workflow when its venv can be built, else calls.
    """

    size_name: str
    size: DemoSize
    live_day: date
    out_dir: Path
    state_dir: Path
    seed: int = 7
    batch_size: int = 100
    concurrency: int = 8
    catch_up_timeout_s: float = 180.0
    etl_mode: EtlMode = "auto"

    @classmethod
    def for_size(
        cls,
        name: str,
        *,
        today: date | None = None,
        out_dir: Path = Path("docs/demo"),
        state_dir: Path = Path(".edp/demo"),
        history_days: int | None = None,
        seed: int = 7,
        etl_mode: EtlMode = "auto",
    ) -> DemoConfig:
        """The config of preset ``name`` (``history_days`` overrides the preset's).

        Raises:
            ConfigError: Unknown size, or history_days out of range.
        """
        if name not in SIZES:
            raise ConfigError(f"unknown demo size {name!r}; choose one of {', '.join(SIZES)}")
        size = SIZES[name]
        if history_days is not None:
            if not 1 <= history_days <= 28:
                raise ConfigError("history_days must be between 1 and 28")
            size = replace(size, history_days=history_days)
        today = today or datetime.now(UTC).date()
        return cls(
            size_name=name,
            size=size,
            live_day=today - timedelta(days=1),
            out_dir=out_dir,
            state_dir=state_dir,
            seed=seed,
            etl_mode=etl_mode,
        )

    @property
    def history_start(self) -> date:
        """First generated day (UTC)."""
        return self.live_day - timedelta(days=self.size.history_days)

    @property
    def live_day_start(self) -> datetime:
        """00:00 UTC of the replayed day."""
        return datetime.combine(self.live_day, datetime.min.time(), UTC)

    @property
    def days(self) -> int:
        """Generated days in all (history + the replayed day)."""
        return self.size.history_days + 1
