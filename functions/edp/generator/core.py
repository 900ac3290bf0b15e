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
   JSON properties taken from small dictionaries;
4. **client realism**: device clock skew (a few clocks hours off), SDK batching delay,
   network latency; the server fields are filled the way ingest fills them
   (``event_timestamp = received_at - (sent_at - client_timestamp)``);
5. **incidents** of that day (outage, null burst, duplicate storm; the promo acted in step 1).

Same (config, day) -> the same table, byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from edp.contracts.events import SCHEMA_VERSION
from edp.generator.catalog import (
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
from edp.generator.incidents import Incident
from edp.generator.model import (
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
from edp.generator.strings import (
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
    """A generated day: the rows plus what incidents did to them."""

    day: int
    table: pa.Table
    affected: dict[Incident, int]


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
    day_start_us = int(day_start.timestamp()) * US
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
        s=sessions,
        counts=counts,
        day=day,
        day_start=day_start,
        day_start_us=day_start_us,
        incidents=incidents,
    )


def _expand(  # noqa: PLR0915 - one straight pipeline of array steps, read top to bottom
    rng: np.random.Generator,
    *,
    config: GeneratorConfig,
    catalogue: Catalogue,
    s: _Sessions,
    counts: Int,
    day: int,
    day_start: datetime,
    day_start_us: int,
    incidents: list[Incident],
) -> DayResult:
    n_sessions = s.kind.size
    flat = counts.ravel()
    n = int(flat.sum())
    sess = np.repeat(np.repeat(np.arange(n_sessions, dtype=np.int64), len(SLOTS)), flat)
    slot = np.repeat(np.tile(np.arange(len(SLOTS), dtype=np.int64), n_sessions), flat)
    k = _segment_arange(flat)  # index of the event within its (session, slot) group

    # --- event types --------------------------------------------------------------------
    etype = np.empty(n, dtype=np.int64)
    slot_type = np.array(
        [ET["session_start"], ET["page_view"], -1, -1, ET["view_item"], ET["add_to_cart"],
         ET["remove_from_cart"], ET["view_cart"], ET["begin_checkout"],
         ET["add_shipping_info"], ET["add_payment_info"], ET["purchase"], ET["refund"]]
    )  # fmt: skip
    etype[:] = slot_type[slot]
    is_ident = slot == SL["identity"]
    etype[is_ident] = np.where(s.kind[sess[is_ident]] == NEW, ET["sign_up"], ET["login"])
    is_browse = slot == SL["browse"]
    n_browse = int(is_browse.sum())
    etype[is_browse] = BROWSE_TYPES[rng.choice(BROWSE_TYPES.size, n_browse, p=BROWSE_MIX)]

    # --- times: session start + think times (all < 30 min), refunds hours later ------------
    gaps = np.minimum(rng.lognormal(np.log(12.0), 0.9, n), THIRTY_MIN_S - 60)
    gaps[slot == SL["landing"]] = rng.uniform(0.02, 0.3, int((slot == SL["landing"]).sum()))
    first = np.cumsum(per := counts.sum(axis=1)) - per  # index of each session's first event
    gaps[first] = 0.0
    is_refund = etype == ET["refund"]
    gaps[is_refund] = rng.uniform(3_600, 30 * 3_600, int(is_refund.sum()))
    gaps_us = (gaps * US).astype(np.int64)
    csum = np.cumsum(gaps_us)
    true_us = day_start_us + s.start_us[sess] + csum - np.repeat(csum[first], per)

    # --- items -----------------------------------------------------------------------------
    n_cart = counts[:, SL["add_to_cart"]]
    n_eff = n_cart - counts[:, SL["remove_from_cart"]]
    n_view = counts[:, SL["view_item"]]
    view_off = np.cumsum(n_view) - n_view
    n_v = int(n_view.sum())
    view_sess = np.repeat(np.arange(n_sessions), n_view)
    own_cat = rng.random(n_v) < 0.8
    view_cat = np.where(
        own_cat,
        s.category[view_sess],
        rng.choice(len(catalogue.category_names), n_v, p=catalogue.category_weights),
    )
    view_prod = catalogue.sample_products(rng, view_cat)
    r = rng.random(n_v)
    view_qty = 1 + (r > 0.85).astype(np.int64) + (r > 0.97).astype(np.int64)

    is_list = etype == ET["view_item_list"]
    is_select = etype == ET["select_item"]
    n_list, n_select = int(is_list.sum()), int(is_select.sum())
    list_cat = np.where(
        rng.random(n_list) < 0.7,
        s.category[sess[is_list]],
        rng.choice(len(catalogue.category_names), n_list, p=catalogue.category_weights),
    )
    list_prod = catalogue.sample_products(rng, np.repeat(list_cat, LIST_ITEMS))
    select_cat = s.category[sess[is_select]]
    select_prod = catalogue.sample_products(rng, select_cat)
    all_prod = np.concatenate([view_prod, list_prod, select_prod])
    # list context of each item: category shown (-1 = none) and position in the list
    all_list = np.concatenate([np.full(n_v, -1), np.repeat(list_cat, LIST_ITEMS), select_cat])
    all_index = np.concatenate(
        [np.full(n_v, -1), np.tile(np.arange(LIST_ITEMS), n_list), rng.integers(0, 20, n_select)]
    )
    all_qty = np.concatenate([view_qty, np.ones(list_prod.size + select_prod.size, np.int64)])

    item_start = np.zeros(n, dtype=np.int64)
    item_len = np.zeros(n, dtype=np.int64)
    use_qty = np.zeros(n, dtype=bool)
    m = etype == ET["view_item"]
    item_start[m], item_len[m] = view_off[sess[m]] + k[m], 1
    m = etype == ET["add_to_cart"]
    item_start[m], item_len[m], use_qty[m] = view_off[sess[m]] + k[m], 1, True
    m = etype == ET["remove_from_cart"]
    item_start[m], item_len[m], use_qty[m] = view_off[sess[m]] + n_cart[sess[m]] - 1, 1, True
    m = np.isin(slot, [SL[c] for c in CART_SLOTS])
    item_start[m], item_len[m], use_qty[m] = view_off[sess[m]], n_eff[sess[m]], True
    item_start[is_list] = n_v + LIST_ITEMS * np.arange(n_list)
    item_len[is_list] = LIST_ITEMS
    item_start[is_select] = n_v + list_prod.size + np.arange(n_select)
    item_len[is_select] = 1

    src = np.repeat(item_start, item_len) + _segment_arange(item_len)
    item_price = catalogue.prices[all_prod[src]].astype(np.float64)
    item_qty = np.where(np.repeat(use_qty, item_len), all_qty[src], 1)
    line_value = item_price * item_qty
    value = np.bincount(np.repeat(np.arange(n), item_len), weights=line_value, minlength=n)
    has_value = np.isin(etype, VALUE_TYPES)

    # --- pages -----------------------------------------------------------------------------
    page = np.full(n, PAGE["/"], dtype=np.int64)
    landing_roll = rng.random(n_sessions)
    landing_prod = catalogue.sample_products(rng, s.category)
    landing_page = np.where(
        landing_roll < 0.5,
        PAGE["/"],
        np.where(
            landing_roll < 0.8,
            catalogue.category_page0 + s.category,
            catalogue.product_page0 + landing_prod,
        ),
    )
    m = (slot == SL["session_start"]) | (slot == SL["landing"])
    page[m] = landing_page[sess[m]]
    page[etype == ET["login"]] = PAGE["/login"]
    page[etype == ET["sign_up"]] = PAGE["/signup"]
    page[is_list] = catalogue.category_page0 + list_cat
    page[is_select] = catalogue.category_page0 + select_cat
    is_search = etype == ET["search"]
    n_search = int(is_search.sum())
    term_w = 1.0 / np.arange(1, len(SEARCH_TERMS) + 1)
    term = rng.choice(len(SEARCH_TERMS), n_search, p=term_w / term_w.sum())
    page[is_search] = catalogue.search_page0 + term
    m = (etype == ET["page_view"]) & is_browse
    roll = rng.random(int(m.sum()))
    sale = np.where(s.promo[sess[m]], 0.8, 0.15)
    page[m] = np.where(
        roll < sale,
        PAGE["/events/sale"],
        np.where(
            roll < sale + 0.1, PAGE["/my/orders"], catalogue.category_page0 + s.category[sess[m]]
        ),
    )
    m = (etype == ET["view_item"]) | (etype == ET["add_to_cart"])
    page[m] = catalogue.product_page0 + all_prod[item_start[m]]
    page[(etype == ET["remove_from_cart"]) | (etype == ET["view_cart"])] = PAGE["/cart"]
    page[etype == ET["begin_checkout"]] = PAGE["/checkout"]
    page[etype == ET["add_shipping_info"]] = PAGE["/checkout/shipping"]
    page[etype == ET["add_payment_info"]] = PAGE["/checkout/payment"]
    page[etype == ET["purchase"]] = PAGE["/checkout/complete"]
    page[is_refund] = -1  # refunds are server-side: no page
    # referrer: the previous page of the session; landing pages get an external one (or none)
    referrer = np.concatenate([[-1], page[:-1]])
    ext = rng.integers(-2, len(REFERRERS), n_sessions)  # -2, -1: direct
    ext = np.where(ext < 0, -1, catalogue.referrer_page0 + ext)
    m = slot <= SL["landing"]
    referrer[m] = ext[sess[m]]

    # --- properties ------------------------------------------------------------------------
    pay = rng.choice(len(PAYMENT_TYPES), n_sessions, p=[0.45, 0.2, 0.15, 0.12, 0.08])
    ship = rng.choice(3, n_sessions, p=[0.6, 0.3, 0.1])
    method = rng.choice(4, n_sessions, p=[0.5, 0.25, 0.2, 0.05])
    prop = np.full(n, -1, dtype=np.int64)
    prop[is_search] = Props.SEARCH + term
    m = (etype == ET["login"]) | (etype == ET["sign_up"])
    prop[m] = Props.LOGIN + method[sess[m]]
    m = etype == ET["add_shipping_info"]
    prop[m] = Props.SHIPPING + ship[sess[m]]
    m = etype == ET["add_payment_info"]
    prop[m] = Props.PAYMENT + pay[sess[m]]
    m = etype == ET["purchase"]
    prop[m] = Props.PURCHASE + (pay[sess[m]] * 3 + ship[sess[m]]) * 2 + s.promo[sess[m]]
    prop[is_refund] = Props.REFUND + rng.integers(0, 4, int(is_refund.sum()))

    # --- identity ----------------------------------------------------------------------------
    # user_id from the login/sign-up event on (or from the start for logged-in sessions)
    user_known = ((s.kind[sess] == RETURNING) & ~s.logs_in[sess]) | (slot >= SL["identity"])
    user_known &= s.user[sess] >= 0
    user_chars = zero_padded_chars("", USER_ID_BASE + np.maximum(s.user, 0), 8)
    device_key = np.where(s.user >= 0, s.user, rng.integers(0, 1 << 30, n_sessions))
    profile = _device_profiles(s.platform, s.device, device_key)
    locale = np.searchsorted(np.cumsum(LOCALE_MIX), (device_key % 1000) / 1000.0, side="right")
    # anonymous_id: one per (user, platform) device, stable across days; fresh per visitor
    anon_keys = np.where(
        s.user >= 0, s.user * 3 + s.platform, (1 << 40) + day * 10_000_000 + np.arange(n_sessions)
    ).astype(np.uint64)
    anon_chars = keyed_uuid_chars(anon_keys, salt=config.seed)
    session_chars = uuid4_chars(rng, n_sessions)
    purchase_sess = counts[:, SL["purchase"]] > 0
    tx_chars = zero_padded_chars(f"T{day_start:%Y%m%d}-", np.cumsum(purchase_sess), 7)
    has_tx = (etype == ET["purchase"]) | is_refund

    # --- client clocks and server times -------------------------------------------------------
    skew_roll = rng.random(n_sessions)
    skew_s = np.where(
        skew_roll < 0.94,
        rng.normal(0, 1.5, n_sessions),
        np.where(
            skew_roll < 0.995,
            rng.normal(0, 120, n_sessions),
            rng.choice([-9 * 3_600, 9 * 3_600, -3_600, 86_400], n_sessions),
        ),
    )
    skew_us = (skew_s * US).astype(np.int64)[sess]
    web = s.platform[sess] == 0
    delay_s = np.where(web, rng.exponential(0.25, n), rng.uniform(0.0, 20.0, n))
    offline = rng.random(n) < 0.003
    delay_s[offline] = rng.uniform(60, 3_600, int(offline.sum()))
    delay_us = (delay_s * US).astype(np.int64)
    latency_us = (rng.lognormal(np.log(0.06), 0.5, n) * US).astype(np.int64)
    times = {
        "client_timestamp": true_us + skew_us,
        "sent_at": true_us + delay_us + skew_us,
        "received_at": true_us + delay_us + latency_us,
        "ingested_at": true_us + delay_us + latency_us + rng.integers(2_000, 40_000, n),
    }
    # what ingest computes: received_at - (sent_at - client_timestamp)
    event_ts = times["received_at"] - (times["sent_at"] - times["client_timestamp"])
    event_chars = uuid4_chars(rng, n)

    # --- incidents, then arrival order ----------------------------------------------------------
    rows, shift_us, blanks, affected = _incident_rows(rng, event_ts, incidents, day_start_us)
    received = times["received_at"][rows] + shift_us
    order = np.argsort(received, kind="stable")
    rows, shift_us = rows[order], shift_us[order]
    blanks = {column: mask[order] for column, mask in blanks.items()}
    r_sess = sess[rows]

    # --- columns, built once in final order ------------------------------------------------------
    r_len = item_len[rows]
    src = np.repeat(item_start[rows], r_len) + _segment_arange(r_len)
    item_prod = all_prod[src]
    item_list = all_list[src]
    item_qty = np.where(np.repeat(use_qty[rows], r_len), all_qty[src], 1)
    offsets = np.concatenate([[0], np.cumsum(r_len)]).astype(np.int32)
    prod_idx = pa.array(item_prod)
    items = pa.ListArray.from_arrays(
        pa.array(offsets),
        pa.StructArray.from_arrays(
            [
                catalogue.product_ids.take(prod_idx),
                catalogue.names.take(prod_idx),
                catalogue.brands.take(prod_idx),
                catalogue.categories.take(prod_idx),
                catalogue.list_ids.take(pa.array(item_list, mask=item_list < 0)),
                catalogue.list_names.take(pa.array(item_list, mask=item_list < 0)),
                pa.array(all_index[src], pa.int64(), mask=item_list < 0),
                pa.array(catalogue.prices[item_prod].astype(np.float64)),
                pa.array(item_qty),
            ],
            fields=list(ITEM_TYPE),
        ),
    )
    r_has_value = has_value[rows]
    r_prop, r_prof = prop[rows], profile[r_sess]
    r_app = s.platform[r_sess] != 0
    r_page = page[rows]
    r_web_page = np.where(r_app, -1, r_page)
    r_ref = np.where(r_app, -1, referrer[rows])
    r_screen = np.where(r_app & (r_page >= 0), catalogue.screen_of_page[np.maximum(r_page, 0)], -1)
    r_etype = etype[rows]
    r_order = (r_etype == ET["purchase"]) | (r_etype == ET["refund"])
    r_value = value[rows]
    r_ship = ship[r_sess]
    fee = np.select(
        [r_ship == 0, r_ship == 1], [np.where(r_value >= 30_000, 0.0, 3_000.0), 3_500.0], 5_000.0
    )
    r_coupon = r_order & s.promo[r_sess]
    columns: dict[str, pa.Array] = {
        "event_id": fixed_width(event_chars[rows]),
        "event_type": _labels(EVENT_TYPES, etype[rows]),
        "event_timestamp": pa.array(event_ts[rows], TS),
        "client_timestamp": pa.array(times["client_timestamp"][rows], TS),
        "sent_at": pa.array(times["sent_at"][rows] + shift_us, TS),
        "received_at": pa.array(received[order], TS),
        "ingested_at": pa.array(times["ingested_at"][rows] + shift_us, TS),
        "user_id": fixed_width(user_chars[r_sess], user_known[rows]),
        "anonymous_id": fixed_width(anon_chars[r_sess]),
        "session_id": fixed_width(session_chars[r_sess], ~is_refund[rows]),
        "device_type": _labels(DEVICE_TYPES, s.device[r_sess]),
        "platform": _labels(PLATFORMS, s.platform[r_sess]),
        "source": _labels(("native",), np.zeros(rows.size, np.int64)),
        "schema_version": _labels((SCHEMA_VERSION,), np.zeros(rows.size, np.int64)),
        "page_location": catalogue.pages.take(pa.array(r_web_page, mask=r_web_page < 0)),
        "page_referrer": catalogue.pages.take(pa.array(r_ref, mask=r_ref < 0)),
        "screen_name": catalogue.screens.take(pa.array(r_screen, mask=r_screen < 0)),
        "screen_resolution": _profile_column(5, r_prof),
        "user_agent": _profile_column(2, r_prof),
        "os_name": _profile_column(3, r_prof),
        "os_version": _profile_column(4, r_prof),
        "app_version": _profile_column(6, r_prof),
        "locale": _labels(LOCALES, locale[r_sess]),
        "transaction_id": fixed_width(tx_chars[r_sess], has_tx[rows]),
        "value": pa.array(r_value, pa.float64(), mask=~r_has_value),
        "currency": pc.if_else(pa.array(r_has_value), "KRW", pa.scalar(None, pa.string())),
        "tax": pa.array(np.round(r_value / 11.0), pa.float64(), mask=~r_order),
        "shipping": pa.array(fee, pa.float64(), mask=~r_order),
        "coupon": pc.if_else(pa.array(r_coupon), "BLACKFRIDAY", pa.scalar(None, pa.string())),
        "items": items,
        "params": catalogue.properties.take(pa.array(r_prop, mask=r_prop < 0)),
    }
    for column, mask in blanks.items():
        col = columns[column]
        columns[column] = pc.if_else(pa.array(mask), pa.nulls(len(col), col.type), col)
    return DayResult(day=day, table=pa.table(columns), affected=affected)


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


def _profile_column(field: int, profile: Int) -> pa.Array:
    values = pa.array([p[field] for p in DEVICE_PROFILES], pa.string())
    return values.take(pa.array(profile))


def _labels(names: tuple[str, ...], codes: Int) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), pa.array(names)).cast(
        pa.string()
    )


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
