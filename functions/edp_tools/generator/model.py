"""Behaviour model of the synthetic shop: knobs, seasonality and the user population.

All the numbers that shape the data live here, each with the reason for its value:

- **Volume**: 2.84 M events on an average day (the reference shop's figure) times ``scale``, times a
  weekday factor, times a small day-to-day noise (so volume z-scores are not degenerate).
- **Daily seasonality** (KST): hourly arrival weights whose quietest hour (04-06 KST) is
  1/17.35 of the busiest (21 KST) — the reference night ~68 RPS vs peak ~1,180 RPS swing.
  The reference *absolute* RPS figures cannot hold at 2.84 M events/day (68 events/s for 24 h
  alone is 5.9 M); at the default volume the hourly rates run from 4.4 events/s (04 KST) to
  75.6 events/s (21 KST), mean 32.9; the swing is kept and the absolute rates scale with
  ``scale`` (``--scale 15.6`` gives the reference 68 and 1,180 events/s, i.e. 44 M events/day).
- **Weekly seasonality**: Sunday/Monday busiest, Friday quietest (Korean shopping pattern).
- **Users**: a population that signs up at a steady rate (``NEW_USERS_PER_M_EVENTS`` per day
  per million events) for ``HISTORY_DAYS`` before the first generated day and every generated
  day; each has a fixed heavy-tailed propensity and a home platform; the chance of returning
  decays with account age as ``age ** -RETENTION_DECAY`` — this gives real retention cohorts.
- **Funnel**: step probabilities calibrated so the user-level 7-day CVR (purchasers / users
  seen) is ~12 % (the reference figure); see ``tests/generator``.

Example:
    >>> profile = minute_profile()
    >>> round(float(profile.reshape(24, 60).mean(axis=1).max()
    ...            / profile.reshape(24, 60).mean(axis=1).min()), 2)
    17.35
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from edp.errors import ConfigError
from edp_tools.generator.incidents import Incident, resolve_days

EVENTS_PER_DAY = 2_840_000
KST_OFFSET_H = 9

# Relative arrival rate per KST hour 0..23: min 0.08 (04-05 KST), max 1.388 (21 KST) = 17.35x.
HOURLY_KST = np.array(
    [0.62, 0.40, 0.24, 0.13, 0.08, 0.08, 0.12, 0.22, 0.36, 0.50, 0.60, 0.68,
     0.80, 0.74, 0.66, 0.64, 0.66, 0.70, 0.76, 0.88, 1.12, 1.388, 1.20, 0.90],
    dtype=np.float64,
)  # fmt: skip
# Monday..Sunday, mean 1.0
WEEKLY = np.array([1.04, 1.00, 0.98, 0.97, 0.95, 0.98, 1.08], dtype=np.float64)
DAY_NOISE_SIGMA = 0.025

HISTORY_DAYS = 56
NEW_USERS_PER_M_EVENTS = 6_500
RETENTION_DECAY = 0.6
PROPENSITY_SHAPE = 0.6  # gamma shape: small = a few heavy shoppers, many occasional ones
PLATFORMS = ("web", "ios", "android")
PLATFORM_MIX = np.array([0.40, 0.25, 0.35])
DEVICE_TYPES = ("mobile", "desktop", "tablet")
# P(device | platform): rows web, ios, android
DEVICE_GIVEN_PLATFORM = np.array([[0.37, 0.58, 0.05], [0.88, 0.0, 0.12], [0.95, 0.0, 0.05]])
SESSION_ON_HOME_PLATFORM = 0.85


@dataclass(frozen=True)
class Funnel:
    """Per-session step probabilities (each conditional on the previous step)."""

    browse_mean: float = 4.0  # list / search / page_view / select_item events per session
    p_view: float = 0.62  # views at least one product
    views_extra_mean: float = 1.3  # further product views
    p_cart: float = 0.27  # adds to cart | viewed
    cart_extra_mean: float = 0.35
    p_remove: float = 0.15  # removes one | 2+ in cart
    p_view_cart: float = 0.72
    p_checkout: float = 0.55
    p_shipping: float = 0.86
    p_payment: float = 0.88
    p_purchase: float = 0.79
    p_refund: float = 0.03
    p_login_returning: float = 0.15  # returning session starts logged out, then logs in
    anonymous_share: float = 0.04  # sessions of never-identified visitors
    anonymous_p_view: float = 0.5
    promo_cart_boost: float = 1.3


@dataclass(frozen=True)
class GeneratorConfig:
    """What to generate."""

    start: date
    days: int = 1
    seed: int = 42
    scale: float = 1.0
    incidents: tuple[Incident, ...] = ()
    events_per_day: int = EVENTS_PER_DAY
    n_products: int = 5_000
    funnel: Funnel = field(default_factory=Funnel)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise ConfigError("days must be >= 1")
        if not 0 < self.scale <= 100:
            raise ConfigError("scale must be in (0, 100]")
        object.__setattr__(self, "incidents", resolve_days(self.incidents, self.days))

    def day_start(self, day: int) -> datetime:
        """00:00 UTC of generated day ``day`` (0-based)."""
        d = self.start + timedelta(days=day)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)

    def nominal_events(self) -> float:
        return self.events_per_day * self.scale


def minute_profile() -> npt.NDArray[np.float64]:
    """Arrival weight of each UTC minute of a day (1440 values, mean 1)."""
    hourly_utc = np.roll(HOURLY_KST, -KST_OFFSET_H)  # UTC hour h is KST hour h+9
    per_minute = np.repeat(hourly_utc, 60)
    return np.asarray(per_minute / per_minute.mean(), dtype=np.float64)


def day_rng(seed: int, day: int, stream: int = 0) -> np.random.Generator:
    """The random stream of one generated day (independent of the other days)."""
    return np.random.default_rng([seed, 0xDA7, day, stream])


@dataclass(frozen=True)
class Population:
    """Every user that exists by the last generated day, indexed 0..n-1 in signup order."""

    signup_day: npt.NDArray[np.int64]  # relative to the first generated day (negative = before)
    propensity: npt.NDArray[np.float64]
    platform: npt.NDArray[np.int8]
    day_offsets: npt.NDArray[np.int64]  # index of the first user signing up on each day

    @property
    def size(self) -> int:
        return int(self.signup_day.size)

    def new_users(self, day: int) -> npt.NDArray[np.int64]:
        """Indices of the users who sign up on generated day ``day``."""
        i = day + HISTORY_DAYS
        return np.arange(self.day_offsets[i], self.day_offsets[i + 1], dtype=np.int64)

    def returning_weights(self, day: int) -> npt.NDArray[np.float64]:
        """Chance weight of each user signed up before ``day`` to come back on ``day``."""
        end = int(self.day_offsets[day + HISTORY_DAYS])
        age = (day - self.signup_day[:end]).astype(np.float64)
        weights = self.propensity[:end] * age**-RETENTION_DECAY
        return np.asarray(weights, dtype=np.float64)


def build_population(config: GeneratorConfig) -> Population:
    """The users for ``config`` (depends on seed, scale and number of days only)."""
    rng = np.random.default_rng([config.seed, 0x05E5])
    per_day_nominal = NEW_USERS_PER_M_EVENTS * config.nominal_events() / 1e6
    n_days = HISTORY_DAYS + config.days
    counts = rng.poisson(per_day_nominal, n_days).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    n = int(offsets[-1])
    signup = np.repeat(np.arange(-HISTORY_DAYS, config.days, dtype=np.int64), counts)
    propensity = rng.gamma(PROPENSITY_SHAPE, 1.0 / PROPENSITY_SHAPE, n)
    platform = rng.choice(len(PLATFORMS), size=n, p=PLATFORM_MIX).astype(np.int8)
    return Population(
        signup_day=signup, propensity=propensity, platform=platform, day_offsets=offsets
    )
