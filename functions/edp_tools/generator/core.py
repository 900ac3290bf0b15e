"""One generated day as an Arrow table of ``raw.user_events`` rows, fully vectorised.

The day is built session-first, then expanded to events with ``np.repeat``:

1. **sessions**: new users (their first visit, with ``sign_up``), returning users sampled by
   propensity x retention, and never-identified visitors; each with platform/device, a start
   time drawn from the seasonality profile (x any promo window), an interest category;
2. **funnel counts** per session and slot (browse, view_item, add_to_cart, ..., purchase), drawn
   for more sessions than needed and cut where the cumulative event count reaches the day's
   target, so the volume is exact up to one session;
3. **events**: one row per (session, slot, k) with the event type, time (session start +
   lognormal think times, all gaps < 30 min so ``session_id`` has GA4's 30-minute semantics),
   items (viewed products; the cart for view_cart..purchase), value, transaction_id, page and
   JSON params taken from small dictionaries;
4. **client realism**: device clock skew (a few clocks hours off), SDK batching delay,
   network latency; the server fields are filled the way ingest fills them
   (``event_timestamp = received_at - (sent_at - client_timestamp)``);
5. **incidents** of that day (outage, null burst, duplicate storm; the promo acted in step 1).

Same (config, day) -> the same table, byte for byte.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from edp.contracts.events import SCHEMA_VERSION
from edp_tools.generator.catalog import (
    DEVICE_PROFILES,
    LOCALE_MIX,
    LOCALES,
    PAGE,
    PAYMENT_TYPES,
    REFERRERS,
    SEARCH_TERMS,
    Catalogue,
    Props,
)
from edp_tools.generator.incidents import Incident
from edp_tools.generator.model import (
    DAY_NOISE_SIGMA,
    DEVICE_GIVEN_PLATFORM,
    DEVICE_TYPES,
    PLATFORM_MIX,
    PLATFORMS,
    SESSION_ON_HOME_PLATFORM,
    WEEKLY,
    GeneratorConfig,
    Population,
    day_rng,
    minute_profile,
)
from edp_tools.generator.strings import (
    fixed_width,
    keyed_uuid_chars,
    uuid4_chars,
    zero_padded_chars,
)

Int = npt.NDArray[np.int64]
Float = npt.NDArray[np.float64]
Bool = npt.NDArray[np.bool_]

US = 1_000_000
MINUTE_US = 60 * US
THIRTY_MIN_S = 1_800.0
USER_ID_BASE = 10_000_000  # user ids are 8-digit numbers (like a shop database's)

EVENT_TYPES = (
    "session_start", "page_view", "login", "sign_up", "view_item_list", "search",
    "select_item", "view_item", "add_to_cart", "remove_from_cart", "view_cart",
    "begin_checkout", "add_shipping_info", "add_payment_info", "purchase", "refund",
)  # fmt: skip
ET = {name: i for i, name in enumerate(EVENT_TYPES)}
# Slots in session order; slot BROWSE holds a mix of list/search/page_view/select_item.
SLOTS = (
    "session_start", "landing", "identity", "browse", "view_item", "add_to_cart",
    "remove_from_cart", "view_cart", "begin_checkout", "add_shipping_info",
    "add_payment_info", "purchase", "refund",
)  # fmt: skip
SL = {name: i for i, name in enumerate(SLOTS)}
BROWSE_TYPES = np.array([ET["view_item_list"], ET["search"], ET["page_view"], ET["select_item"]])
BROWSE_MIX = np.array([0.45, 0.15, 0.30, 0.10])
CART_SLOTS = ("view_cart", "begin_checkout", "add_shipping_info", "add_payment_info",
              "purchase", "refund")  # fmt: skip
VALUE_TYPES = np.array(
    [ET[t] for t in ("view_item", "add_to_cart", "remove_from_cart", *CART_SLOTS)]
)
LIST_ITEMS = 4  # items shown with a view_item_list
NEW, RETURNING, VISITOR = 0, 1, 2

COLUMNS = (
    "event_id", "event_type", "event_timestamp", "client_timestamp", "sent_at", "received_at",
    "ingested_at", "user_id", "anonymous_id", "session_id", "device_type", "platform", "source",
    "schema_version", "page_location", "page_referrer", "screen_name", "screen_resolution",
    "user_agent", "os_name", "os_version", "app_version", "locale", "items", "currency",
    "value", "transaction_id", "tax", "shipping", "coupon", "params",
)  # fmt: skip
CLIENT_COLUMNS = tuple(
    c for c in COLUMNS
    if c not in ("event_timestamp", "received_at", "ingested_at", "device_type", "source")
)  # fmt: skip
ITEM_TYPE = pa.struct(
    [
        ("item_id", pa.string()),
        ("item_name", pa.string()),
        ("item_brand", pa.string()),
        ("item_category", pa.string()),
        ("item_list_id", pa.string()),
        ("item_list_name", pa.string()),
        ("index", pa.int64()),
        ("price", pa.float64()),
        ("quantity", pa.int64()),
    ]
)
TS = pa.timestamp("us", tz="UTC")


@dataclass(frozen=True)
class DayResult:
    """A generated day: its rows (built on demand, whole or in chunks) and what the
    incidents did to them."""

    day: int
    num_rows: int
    affected: dict[Incident, int]
    build: Callable[[int, int], pa.Table] = field(repr=False)  # rows [lo, hi) -> Arrow

    @cached_property
    def table(self) -> pa.Table:
        """All rows of the day, in arrival order."""
        return self.build(0, self.num_rows)

    def chunks(self, rows: int = 500_000) -> Iterator[pa.Table]:
        """The rows in consecutive chunks, each built only when asked for (bounded memory)."""
        for lo in range(0, self.num_rows, rows):
            yield self.build(lo, min(lo + rows, self.num_rows))


@dataclass
class _Sessions:
    kind: npt.NDArray[np.int8]
    user: Int  # population index, -1 for visitors
    platform: Int
    device: Int
    start_us: Int  # microseconds after the day's 00:00 UTC
    category: Int
    promo: Bool
    logs_in: Bool  # returning session that starts logged out


def _segment_arange(lengths: Int) -> Int:
    """For lengths [2, 3] -> [0, 1, 0, 1, 2]: position inside each segment."""
    total = int(lengths.sum())
    starts = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)


def _arrivals(
    config: GeneratorConfig, incidents: list[Incident]
) -> tuple[Float, list[tuple[int, int]]]:
    """Arrival weight per minute (promo windows multiplied) and the promo minute ranges."""
    density = minute_profile().copy()
    promo_windows = []
    for inc in incidents:
        if inc.type == "promo":
            lo = inc.start_hour * 60
            hi = min(1440, lo + round(inc.hours * 60))
            density[lo:hi] *= inc.magnitude
            promo_windows.append((lo, hi))
    return density, promo_windows


def _draw_sessions(
    rng: np.random.Generator,
    *,
    config: GeneratorConfig,
    population: Population,
    catalogue: Catalogue,
    day: int,
    n_other: int,
    density: Float,
    promo_windows: list[tuple[int, int]],
) -> _Sessions:
    """New users' first sessions followed by ``n_other`` returning/visitor sessions."""
    funnel = config.funnel
    new_users = population.new_users(day)
    n_new = new_users.size
    n = n_new + n_other
    kind = np.full(n, NEW, dtype=np.int8)
    is_visitor = rng.random(n_other) < funnel.anonymous_share
    kind[n_new:] = np.where(is_visitor, VISITOR, RETURNING)

    user = np.full(n, -1, dtype=np.int64)
    user[:n_new] = new_users
    returning = np.flatnonzero(kind == RETURNING)
    weights = population.returning_weights(day)
    if weights.size and returning.size:
        cum = np.cumsum(weights)
        picks = np.searchsorted(cum, rng.random(returning.size) * cum[-1], side="right")
        user[returning] = np.minimum(picks, weights.size - 1)

    home = np.where(user >= 0, population.platform[np.maximum(user, 0)], 0).astype(np.int64)
    other = rng.choice(len(PLATFORMS), size=n, p=PLATFORM_MIX)
    stay = (user >= 0) & (rng.random(n) < SESSION_ON_HOME_PLATFORM)
    platform = np.where(stay, home, other).astype(np.int64)
    u = rng.random(n)
    cum_dev = np.cumsum(DEVICE_GIVEN_PLATFORM, axis=1)[platform]
    device = (u[:, None] > cum_dev).sum(axis=1).astype(np.int64)
    device = np.minimum(device, len(DEVICE_TYPES) - 1)

    minute = rng.choice(1440, size=n, p=density / density.sum())
    start_us = minute.astype(np.int64) * MINUTE_US + rng.integers(0, MINUTE_US, n)
    promo = np.zeros(n, dtype=bool)
    for lo, hi in promo_windows:
        promo |= (minute >= lo) & (minute < hi)
    category = rng.choice(len(catalogue.category_names), size=n, p=catalogue.category_weights)
    logs_in = (kind == RETURNING) & (rng.random(n) < funnel.p_login_returning)
    return _Sessions(kind, user, platform, device, start_us, category.astype(np.int64), promo,
                     logs_in)  # fmt: skip


def _funnel_counts(rng: np.random.Generator, config: GeneratorConfig, s: _Sessions) -> Int:
    """Events per (session, slot): an (n_sessions, len(SLOTS)) matrix."""
    f = config.funnel
    n = s.kind.size
    counts = np.zeros((n, len(SLOTS)), dtype=np.int64)
    counts[:, SL["session_start"]] = 1
    counts[:, SL["landing"]] = 1
    counts[:, SL["identity"]] = ((s.kind == NEW) | s.logs_in).astype(np.int64)
    counts[:, SL["browse"]] = rng.poisson(f.browse_mean, n)
    visitor = s.kind == VISITOR
    p_view = np.where(visitor, f.anonymous_p_view, f.p_view)
    viewed = rng.random(n) < p_view
    n_view = viewed * (1 + rng.poisson(f.views_extra_mean, n))
    p_cart = np.where(s.promo, f.p_cart * f.promo_cart_boost, f.p_cart)
    carted = viewed & (rng.random(n) < p_cart)
    n_cart = carted * np.minimum(n_view, 1 + rng.poisson(f.cart_extra_mean, n))
    removed = (n_cart >= 2) & (rng.random(n) < f.p_remove)
    view_cart = carted & (rng.random(n) < f.p_view_cart)
    checkout = view_cart & ~visitor & (rng.random(n) < f.p_checkout)
    shipping = checkout & (rng.random(n) < f.p_shipping)
    payment = shipping & (rng.random(n) < f.p_payment)
    purchase = payment & (rng.random(n) < f.p_purchase)
    refund = purchase & (rng.random(n) < f.p_refund)
    counts[:, SL["view_item"]] = n_view
    counts[:, SL["add_to_cart"]] = n_cart
    counts[:, SL["remove_from_cart"]] = removed
    counts[:, SL["view_cart"]] = view_cart
    counts[:, SL["begin_checkout"]] = checkout
    counts[:, SL["add_shipping_info"]] = shipping
    counts[:, SL["add_payment_info"]] = payment
    counts[:, SL["purchase"]] = purchase
    counts[:, SL["refund"]] = refund
    return counts


def _take_sessions(s: _Sessions, keep: slice) -> _Sessions:
    return _Sessions(*(getattr(s, name)[keep] for name in s.__dataclass_fields__))


def generate_day(
    config: GeneratorConfig, population: Population, catalogue: Catalogue, day: int
) -> DayResult:
    """The rows of generated day ``day`` (0-based), ready for ``raw.user_events``."""
    rng = day_rng(config.seed, day)
    day_start: datetime = config.day_start(day)
    incidents = [inc for inc in config.incidents if inc.day == day]
    density, promo_windows = _arrivals(config, incidents)

    target = (
        config.nominal_events()
        * WEEKLY[day_start.weekday()]
        * float(np.exp(rng.normal(0.0, DAY_NOISE_SIGMA)))
        * float(density.mean())  # a promo adds its extra arrivals on top
    )
    # Draw funnels for more sessions than needed, then cut at the target volume.
    n_new = population.new_users(day).size
    n_draw = int(target / 7.0) + 1_000
    sessions = _draw_sessions(
        rng,
        config=config,
        population=population,
        catalogue=catalogue,
        day=day,
        n_other=n_draw,
        density=density,
        promo_windows=promo_windows,
    )
    counts = _funnel_counts(rng, config, sessions)
    per_session = counts.sum(axis=1)
    cut = int(np.searchsorted(np.cumsum(per_session), target)) + 1
    cut = max(cut, n_new)
    if cut > per_session.size:
        raise AssertionError("session overdraw too small")  # events/session averages ~9.5
    sessions = _take_sessions(sessions, slice(0, cut))
    counts = counts[:cut]
    return _expand(
        rng,
        config=config,
        catalogue=catalogue,
        sessions=sessions,
        counts=counts,
        day=day,
        incidents=incidents,
    )


class _DayBuilder:
    """Expands one day's sessions into events, step by step (each method one concern).

    Arrays prefixed ``ev_`` have one value per generated event (in session/slot order); the
    final columns are built once, in arrival order, after the incidents (:meth:`table`).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        *,
        config: GeneratorConfig,
        catalogue: Catalogue,
        sessions: _Sessions,
        counts: Int,
        day: int,
    ) -> None:
        self.rng, self.config, self.catalogue = rng, config, catalogue
        self.s, self.counts, self.day = sessions, counts, day
        self.day_start = config.day_start(day)
        self.day_start_us = int(self.day_start.timestamp()) * US
        self.n_sessions = sessions.kind.size
        flat = counts.ravel()
        self.n = int(flat.sum())
        sessions_idx = np.repeat(np.arange(self.n_sessions, dtype=np.int64), len(SLOTS))
        self.sess = np.repeat(sessions_idx, flat)
        self.slot = np.repeat(np.tile(np.arange(len(SLOTS), dtype=np.int64), self.n_sessions), flat)
        self.k = _segment_arange(flat)  # index of the event within its (session, slot) group
        self.per_session = counts.sum(axis=1)
        self.first = np.cumsum(self.per_session) - self.per_session  # first event of a session
        self.etype = self._event_types()
        self.is_refund = self.etype == ET["refund"]

    def _event_types(self) -> Int:
        slot_type = np.array(
            [ET["session_start"], ET["page_view"], -1, -1, ET["view_item"], ET["add_to_cart"],
             ET["remove_from_cart"], ET["view_cart"], ET["begin_checkout"],
             ET["add_shipping_info"], ET["add_payment_info"], ET["purchase"], ET["refund"]]
        )  # fmt: skip
        etype = slot_type[self.slot]
        ident = self.slot == SL["identity"]
        new = self.s.kind[self.sess[ident]] == NEW
        etype[ident] = np.where(new, ET["sign_up"], ET["login"])
        browse = self.slot == SL["browse"]
        picks = self.rng.choice(BROWSE_TYPES.size, int(browse.sum()), p=BROWSE_MIX)
        etype[browse] = BROWSE_TYPES[picks]
        return etype

    def true_times(self) -> Int:
        """Session start + lognormal think times (all < 30 min); refunds hours later."""
        rng, n = self.rng, self.n
        gaps = np.minimum(rng.lognormal(np.log(12.0), 0.9, n), THIRTY_MIN_S - 60)
        landing = self.slot == SL["landing"]
        gaps[landing] = rng.uniform(0.02, 0.3, int(landing.sum()))
        gaps[self.first] = 0.0
        gaps[self.is_refund] = rng.uniform(3_600, 30 * 3_600, int(self.is_refund.sum()))
        csum = np.cumsum((gaps * US).astype(np.int64))
        since_start = csum - np.repeat(csum[self.first], self.per_session)
        last = self.first + self.per_session - 1 - self.counts[:, SL["refund"]]
        start = self._separate_device_sessions(since_start[last])
        true_us: Int = self.day_start_us + start[self.sess] + since_start
        return true_us

    def _separate_device_sessions(self, duration: Int) -> Int:
        """Session starts, moved so that one device's sessions never overlap and follow each
        other after 30+ minutes of inactivity (else they would be one GA4 session).

        Within a device (sessions in start order) the new start is the recurrence
        ``s'[i] = max(s[i], s'[i-1] + duration[i-1] + pause[i])``, solved in one vectorised
        pass as ``s'[i] = C[i] + max_{j<=i}(s[j] - C[j])`` with ``C`` the running sum of
        ``duration + pause`` (a segmented cumulative max; groups kept apart by an offset).
        """
        s, ns = self.s, self.n_sessions
        device = np.where(s.user >= 0, s.user * 3 + s.platform, -1 - np.arange(ns))
        pause = int(THIRTY_MIN_S * US) + self.rng.integers(MINUTE_US, 20 * MINUTE_US, ns)
        order = np.lexsort((s.start_us, device))
        dev, st = device[order], s.start_us[order]
        new_group = np.concatenate([[True], dev[1:] != dev[:-1]])
        group = np.cumsum(new_group) - 1
        step = np.concatenate([[0], duration[order][:-1] + pause[order][1:]])
        step[new_group] = 0
        csum = np.cumsum(step)
        within = csum - csum[np.flatnonzero(new_group)][group]
        base = st - within
        spread = int(base.max() - base.min()) + 1 if base.size else 1
        apart = group * spread  # every group above all of the previous ones: no carry-over
        moved = np.maximum.accumulate(base + apart) - apart + within
        start = np.empty_like(s.start_us)
        start[order] = moved
        return start

    def items(self) -> None:
        """Products of every event: viewed ones (the cart is the first of them), list items."""
        rng, cat, s = self.rng, self.catalogue, self.s
        n_cats = len(cat.category_names)
        n_view = self.counts[:, SL["view_item"]]
        n_cart = self.counts[:, SL["add_to_cart"]]
        n_eff = n_cart - self.counts[:, SL["remove_from_cart"]]
        view_off = np.cumsum(n_view) - n_view
        n_v = int(n_view.sum())
        view_cat = np.where(
            rng.random(n_v) < 0.8,
            s.category[np.repeat(np.arange(self.n_sessions), n_view)],
            rng.choice(n_cats, n_v, p=cat.category_weights),
        )
        view_prod = cat.sample_products(rng, view_cat)
        r = rng.random(n_v)
        view_qty = 1 + (r > 0.85).astype(np.int64) + (r > 0.97).astype(np.int64)

        self.is_list = self.etype == ET["view_item_list"]
        self.is_select = self.etype == ET["select_item"]
        n_list, n_select = int(self.is_list.sum()), int(self.is_select.sum())
        self.list_cat = np.where(
            rng.random(n_list) < 0.7,
            s.category[self.sess[self.is_list]],
            rng.choice(n_cats, n_list, p=cat.category_weights),
        )
        list_prod = cat.sample_products(rng, np.repeat(self.list_cat, LIST_ITEMS))
        self.select_cat = s.category[self.sess[self.is_select]]
        select_prod = cat.sample_products(rng, self.select_cat)
        self.all_prod = np.concatenate([view_prod, list_prod, select_prod])
        n_other = list_prod.size + select_prod.size
        self.all_qty = np.concatenate([view_qty, np.ones(n_other, np.int64)])
        # list context of each item: category shown (-1 = none) and position in the list
        self.all_list = np.concatenate(
            [np.full(n_v, -1), np.repeat(self.list_cat, LIST_ITEMS), self.select_cat]
        )
        self.all_index = np.concatenate(
            [np.full(n_v, -1), np.tile(np.arange(LIST_ITEMS), n_list),
             rng.integers(0, 20, n_select)]
        )  # fmt: skip

        start = np.zeros(self.n, dtype=np.int64)
        length = np.zeros(self.n, dtype=np.int64)
        use_qty = np.zeros(self.n, dtype=bool)
        sess, etype, k = self.sess, self.etype, self.k
        m = etype == ET["view_item"]
        start[m], length[m] = view_off[sess[m]] + k[m], 1
        m = etype == ET["add_to_cart"]
        start[m], length[m], use_qty[m] = view_off[sess[m]] + k[m], 1, True
        m = etype == ET["remove_from_cart"]
        start[m], length[m], use_qty[m] = view_off[sess[m]] + n_cart[sess[m]] - 1, 1, True
        m = np.isin(self.slot, [SL[c] for c in CART_SLOTS])
        start[m], length[m], use_qty[m] = view_off[sess[m]], n_eff[sess[m]], True
        start[self.is_list] = n_v + LIST_ITEMS * np.arange(n_list)
        length[self.is_list] = LIST_ITEMS
        start[self.is_select] = n_v + list_prod.size + np.arange(n_select)
        length[self.is_select] = 1
        self.item_start, self.item_len, self.use_qty = start, length, use_qty

        src = np.repeat(start, length) + _segment_arange(length)
        line = cat.prices[self.all_prod[src]] * np.where(
            np.repeat(use_qty, length), self.all_qty[src], 1
        )
        self.value = np.bincount(
            np.repeat(np.arange(self.n), length), weights=line.astype(np.float64), minlength=self.n
        )
        self.has_value = np.isin(etype, VALUE_TYPES)

    def pages(self) -> None:
        """Page of every event (shop page index, -1 = none) and its referrer."""
        rng, cat, s, sess, etype = self.rng, self.catalogue, self.s, self.sess, self.etype
        page = np.full(self.n, PAGE["/"], dtype=np.int64)
        roll = rng.random(self.n_sessions)
        landing_page = np.select(
            [roll < 0.5, roll < 0.8],
            [PAGE["/"], cat.category_page0 + s.category],
            cat.product_page0 + cat.sample_products(rng, s.category),
        )
        m = self.slot <= SL["landing"]
        page[m] = landing_page[sess[m]]
        page[etype == ET["login"]] = PAGE["/login"]
        page[etype == ET["sign_up"]] = PAGE["/signup"]
        page[self.is_list] = cat.category_page0 + self.list_cat
        page[self.is_select] = cat.category_page0 + self.select_cat
        self.is_search = etype == ET["search"]
        term_w = 1.0 / np.arange(1, len(SEARCH_TERMS) + 1)
        self.term = rng.choice(
            len(SEARCH_TERMS), int(self.is_search.sum()), p=term_w / term_w.sum()
        )
        page[self.is_search] = cat.search_page0 + self.term
        m = (etype == ET["page_view"]) & (self.slot == SL["browse"])
        roll = rng.random(int(m.sum()))
        sale = np.where(s.promo[sess[m]], 0.8, 0.15)
        page[m] = np.select(
            [roll < sale, roll < sale + 0.1],
            [PAGE["/events/sale"], PAGE["/my/orders"]],
            cat.category_page0 + s.category[sess[m]],
        )
        m = (etype == ET["view_item"]) | (etype == ET["add_to_cart"])
        page[m] = cat.product_page0 + self.all_prod[self.item_start[m]]
        for name, path in (("remove_from_cart", "/cart"), ("view_cart", "/cart"),
                           ("begin_checkout", "/checkout"),
                           ("add_shipping_info", "/checkout/shipping"),
                           ("add_payment_info", "/checkout/payment"),
                           ("purchase", "/checkout/complete")):  # fmt: skip
            page[etype == ET[name]] = PAGE[path]
        page[self.is_refund] = -1  # refunds are server-side: no page
        # referrer: the previous page of the session; landing pages get an external one or none
        referrer = np.concatenate([[-1], page[:-1]])
        ext = rng.integers(-2, len(REFERRERS), self.n_sessions)  # -2, -1: direct
        ext = np.where(ext < 0, -1, cat.referrer_page0 + ext)
        m = self.slot <= SL["landing"]
        referrer[m] = ext[sess[m]]
        self.page, self.referrer = page, referrer

    def params(self) -> None:
        """Index of every event's JSON params in the catalogue's dictionary (-1 = none)."""
        rng, s, sess, etype = self.rng, self.s, self.sess, self.etype
        self.pay = rng.choice(len(PAYMENT_TYPES), self.n_sessions, p=[0.45, 0.2, 0.15, 0.12, 0.08])
        self.ship = rng.choice(3, self.n_sessions, p=[0.6, 0.3, 0.1])
        method = rng.choice(4, self.n_sessions, p=[0.5, 0.25, 0.2, 0.05])
        prop = np.full(self.n, -1, dtype=np.int64)
        prop[self.is_search] = Props.SEARCH + self.term
        m = (etype == ET["login"]) | (etype == ET["sign_up"])
        prop[m] = Props.LOGIN + method[sess[m]]
        m = etype == ET["add_shipping_info"]
        prop[m] = Props.SHIPPING + self.ship[sess[m]]
        m = etype == ET["add_payment_info"]
        prop[m] = Props.PAYMENT + self.pay[sess[m]]
        m = etype == ET["purchase"]
        combo = (self.pay[sess[m]] * 3 + self.ship[sess[m]]) * 2 + s.promo[sess[m]]
        prop[m] = Props.PURCHASE + combo
        prop[self.is_refund] = Props.REFUND + rng.integers(0, 4, int(self.is_refund.sum()))
        self.prop = prop

    def identity(self) -> None:
        """user_id (from login/sign-up on), device ids and profiles, session and order ids."""
        rng, s, sess = self.rng, self.s, self.sess
        known = ((s.kind[sess] == RETURNING) & ~s.logs_in[sess]) | (self.slot >= SL["identity"])
        self.user_known = known & (s.user[sess] >= 0)
        self.user_chars = zero_padded_chars("", USER_ID_BASE + np.maximum(s.user, 0), 8)
        device_key = np.where(s.user >= 0, s.user, rng.integers(0, 1 << 30, self.n_sessions))
        self.profile = _device_profiles(s.platform, s.device, device_key)
        self.locale = np.searchsorted(
            np.cumsum(LOCALE_MIX), (device_key % 1000) / 1000.0, side="right"
        )
        # anonymous_id: one per (user, platform) device, stable across days; fresh per visitor
        visitor_keys = (1 << 40) + self.day * 10_000_000 + np.arange(self.n_sessions)
        anon_keys = np.where(s.user >= 0, s.user * 3 + s.platform, visitor_keys)
        self.anon_chars = keyed_uuid_chars(anon_keys.astype(np.uint64), salt=self.config.seed)
        self.session_chars = uuid4_chars(rng, self.n_sessions)
        purchase_sess = self.counts[:, SL["purchase"]] > 0
        self.tx_chars = zero_padded_chars(f"T{self.day_start:%Y%m%d}-", np.cumsum(purchase_sess), 7)
        self.has_tx = (self.etype == ET["purchase"]) | self.is_refund

    def clocks(self, true_us: Int) -> None:
        """Client clock skew, SDK batching delay, network latency -> the four timestamps."""
        rng, n, ns = self.rng, self.n, self.n_sessions
        roll = rng.random(ns)
        skew_s = np.select(
            [roll < 0.94, roll < 0.995],
            [rng.normal(0, 1.5, ns), rng.normal(0, 120, ns)],
            rng.choice([-9 * 3_600, 9 * 3_600, -3_600, 86_400], ns),  # wrong time zone / date
        )
        skew_us = (skew_s * US).astype(np.int64)[self.sess]
        web = self.s.platform[self.sess] == 0
        delay_s = np.where(web, rng.exponential(0.25, n), rng.uniform(0.0, 20.0, n))
        offline = rng.random(n) < 0.003
        delay_s[offline] = rng.uniform(60, 3_600, int(offline.sum()))
        delay_us = (delay_s * US).astype(np.int64)
        latency_us = (rng.lognormal(np.log(0.06), 0.5, n) * US).astype(np.int64)
        self.client_ts = true_us + skew_us
        self.sent_at = true_us + delay_us + skew_us
        self.received_at = true_us + delay_us + latency_us
        self.ingested_at = self.received_at + rng.integers(2_000, 40_000, n)
        # what ingest computes: received_at - (sent_at - client_timestamp)
        self.event_ts = self.received_at - (self.sent_at - self.client_ts)
        self.event_chars = uuid4_chars(rng, n)

    def result(self, incidents: list[Incident]) -> DayResult:
        """Apply the incidents, order rows by arrival and build the Arrow table."""
        rows, shift, blanks, affected = _incident_rows(
            self.rng, self.event_ts, incidents, self.day_start_us
        )
        received = self.received_at[rows] + shift
        order = np.argsort(received, kind="stable")
        rows, shift, received = rows[order], shift[order], received[order]
        blanks = {column: mask[order] for column, mask in blanks.items()}

        def build(lo: int, hi: int) -> pa.Table:
            columns = self._columns(rows[lo:hi], shift[lo:hi], received[lo:hi])
            for column, mask in blanks.items():
                columns[column] = _blank(columns[column], mask[lo:hi])
            return pa.table(columns)

        return DayResult(day=self.day, num_rows=int(rows.size), affected=affected, build=build)

    def _items_column(self, rows: Int) -> pa.Array:
        cat = self.catalogue
        length = self.item_len[rows]
        src = np.repeat(self.item_start[rows], length) + _segment_arange(length)
        prod = self.all_prod[src]
        in_list = self.all_list[src]
        no_list = in_list < 0
        qty = np.where(np.repeat(self.use_qty[rows], length), self.all_qty[src], 1)
        prod_idx = pa.array(prod)
        struct = pa.StructArray.from_arrays(
            [
                cat.product_ids.take(prod_idx),
                cat.names.take(prod_idx),
                cat.brands.take(prod_idx),
                cat.categories.take(prod_idx),
                cat.list_ids.take(pa.array(in_list, mask=no_list)),
                cat.list_names.take(pa.array(in_list, mask=no_list)),
                pa.array(self.all_index[src], pa.int64(), mask=no_list),
                pa.array(cat.prices[prod].astype(np.float64)),
                pa.array(qty),
            ],
            fields=list(ITEM_TYPE),
        )
        offsets = np.concatenate([[0], np.cumsum(length)]).astype(np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), struct)

    def _columns(self, rows: Int, shift: Int, received: Int) -> dict[str, pa.Array]:
        cat, s = self.catalogue, self.s
        r_sess = self.sess[rows]
        prof = self.profile[r_sess]
        app = s.platform[r_sess] != 0
        page = self.page[rows]
        web_page = np.where(app, -1, page)
        ref = np.where(app, -1, self.referrer[rows])
        screen = np.where(app & (page >= 0), cat.screen_of_page[np.maximum(page, 0)], -1)
        etype = self.etype[rows]
        order_event = (etype == ET["purchase"]) | (etype == ET["refund"])
        has_value = self.has_value[rows]
        value = self.value[rows]
        ship = self.ship[r_sess]
        fee = np.select(
            [ship == 0, ship == 1], [np.where(value >= 30_000, 0.0, 3_000.0), 3_500.0], 5_000.0
        )
        prop = self.prop[rows]
        return {
            "event_id": fixed_width(self.event_chars[rows]),
            "event_type": _labels(EVENT_TYPES, etype),
            "event_timestamp": pa.array(self.event_ts[rows], TS),
            "client_timestamp": pa.array(self.client_ts[rows], TS),
            "sent_at": pa.array(self.sent_at[rows] + shift, TS),
            "received_at": pa.array(received, TS),
            "ingested_at": pa.array(self.ingested_at[rows] + shift, TS),
            "user_id": fixed_width(self.user_chars[r_sess], self.user_known[rows]),
            "anonymous_id": fixed_width(self.anon_chars[r_sess]),
            "session_id": fixed_width(self.session_chars[r_sess], ~self.is_refund[rows]),
            "device_type": _labels(DEVICE_TYPES, s.device[r_sess]),
            "platform": _labels(PLATFORMS, s.platform[r_sess]),
            "source": _labels(("native",), np.zeros(rows.size, np.int64)),
            "schema_version": _labels((SCHEMA_VERSION,), np.zeros(rows.size, np.int64)),
            "page_location": _labels(cat.pages, web_page),
            "page_referrer": _labels(cat.pages, ref),
            "screen_name": _labels(cat.screens, screen),
            "screen_resolution": _profile_column(5, prof),
            "user_agent": _profile_column(2, prof),
            "os_name": _profile_column(3, prof),
            "os_version": _profile_column(4, prof),
            "app_version": _profile_column(6, prof),
            "locale": _labels(LOCALES, self.locale[r_sess]),
            "transaction_id": fixed_width(self.tx_chars[r_sess], self.has_tx[rows]),
            "value": pa.array(value, pa.float64(), mask=~has_value),
            "currency": _labels(("KRW",), np.zeros(rows.size, np.int64), valid=has_value),
            "tax": pa.array(np.round(value / 11.0), pa.float64(), mask=~order_event),
            "shipping": pa.array(fee, pa.float64(), mask=~order_event),
            "coupon": _labels(
                ("BLACKFRIDAY",),
                np.zeros(rows.size, np.int64),
                valid=order_event & s.promo[r_sess],
            ),
            "items": self._items_column(rows),
            "params": _labels(cat.properties, prop),
        }


def _expand(
    rng: np.random.Generator,
    *,
    config: GeneratorConfig,
    catalogue: Catalogue,
    sessions: _Sessions,
    counts: Int,
    day: int,
    incidents: list[Incident],
) -> DayResult:
    builder = _DayBuilder(
        rng, config=config, catalogue=catalogue, sessions=sessions, counts=counts, day=day
    )
    true_us = builder.true_times()
    builder.items()
    builder.pages()
    builder.params()
    builder.identity()
    builder.clocks(true_us)
    return builder.result(incidents)


def _device_profiles(platform: Int, device: Int, key: Int) -> Int:
    """A device profile matching (platform, device_type), stable for the same key."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, prof in enumerate(DEVICE_PROFILES):
        groups.setdefault((PLATFORMS.index(prof[0]), DEVICE_TYPES.index(prof[1])), []).append(i)
    width = max(len(g) for g in groups.values())
    table = np.zeros((len(PLATFORMS), len(DEVICE_TYPES), width), dtype=np.int64)
    sizes = np.ones((len(PLATFORMS), len(DEVICE_TYPES)), dtype=np.int64)
    for (p, d), members in groups.items():
        table[p, d, : len(members)] = members
        sizes[p, d] = len(members)
    # a combination without a profile (none by construction) falls back to profile 0
    picked: Int = table[platform, device, key % sizes[platform, device]]
    return picked


def _blank(column: pa.Array, hit: Bool) -> pa.Array:
    """``column`` with NULL where ``hit`` (dictionary columns: on their indices)."""
    if isinstance(column, pa.DictionaryArray):
        indices = column.indices
        blanked = pc.if_else(pa.array(hit), pa.nulls(len(indices), indices.type), indices)
        return pa.DictionaryArray.from_arrays(blanked, column.dictionary)
    return pc.if_else(pa.array(hit), pa.nulls(len(column), column.type), column)


def _profile_column(field: int, profile: Int) -> pa.Array:
    return _labels(tuple(p[field] for p in DEVICE_PROFILES), profile)


def _labels(
    names: tuple[str | None, ...] | pa.StringArray, codes: Int, valid: Bool | None = None
) -> pa.DictionaryArray:
    """A dictionary-encoded string column: ``codes`` index ``names`` (``valid`` False or a
    negative code -> NULL). Zero-copy: a day has ~20 low-cardinality string columns, and
    materialising them (user agents alone are ~430 MB) cost seconds; both warehouses read
    dictionary arrays natively."""
    mask = codes < 0 if valid is None else ~valid | (codes < 0)
    dictionary = names if isinstance(names, pa.Array) else pa.array(names, pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32(), mask=mask), dictionary)


def _incident_rows(
    rng: np.random.Generator,
    event_ts: Int,
    incidents: list[Incident],
    day_start_us: int,
) -> tuple[Int, Int, dict[str, Bool], dict[Incident, int]]:
    """Which generated events become rows, after the day's incidents.

    Returns the row -> event index (outages drop events; duplicate storms repeat them), the
    time shift of each row (re-sends arrive later), the null masks per column (null bursts)
    and the number of events each incident touched.
    """
    n = event_ts.size
    keep = np.ones(n, dtype=bool)
    windows = {}
    for inc in incidents:
        lo = day_start_us + inc.start_hour * 3_600 * US
        windows[inc] = (event_ts >= lo) & (event_ts < lo + int(inc.hours * 3_600 * US))
    affected: dict[Incident, int] = {}
    for inc in incidents:
        if inc.type == "promo":
            affected[inc] = int(windows[inc].sum())
        elif inc.type == "outage":
            lost = windows[inc] & (rng.random(n) < inc.magnitude)
            keep &= ~lost
            affected[inc] = int(lost.sum())
    rows = np.flatnonzero(keep)
    shift = np.zeros(rows.size, dtype=np.int64)
    for inc in incidents:
        if inc.type == "dupes":
            again = np.flatnonzero(windows[inc] & keep & (rng.random(n) < inc.magnitude))
            rows = np.concatenate([rows, again])
            shift = np.concatenate([shift, (rng.uniform(1, 300, again.size) * US).astype(np.int64)])
            affected[inc] = int(again.size)
    blanks: dict[str, Bool] = {}
    for inc in incidents:
        if inc.type == "nulls":
            column = inc.column or "session_id"
            mask = windows[inc][rows] & (rng.random(rows.size) < inc.magnitude)
            blanks[column] = blanks.get(column, np.zeros(rows.size, dtype=bool)) | mask
            affected[inc] = int(mask.sum())
    return rows, shift, blanks, affected
