"""The synthetic shop: categories, brands, products (KRW prices, Zipf popularity), pages.

Everything is drawn from the seed, so the same seed gives the same shop. Products are stored
grouped by category, with one global cumulative popularity array, so "a product of category c,
by popularity" is one vectorised ``searchsorted`` (see :meth:`Catalogue.sample_products`).

Example:
    >>> import numpy as np
    >>> shop = build_catalogue(seed=7, n_products=200)
    >>> shop.product_ids[0].as_py()
    'P000001'
    >>> bool((shop.prices % 100 == 0).all())
    True
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from edp_tools.generator.strings import zero_padded_ids

SHOP_URL = "https://shop.example.com"

# name, share of traffic, median price (KRW), products share
CATEGORIES: tuple[tuple[str, float, int], ...] = (
    ("fashion", 0.22, 39_000),
    ("beauty", 0.14, 25_000),
    ("food", 0.12, 15_000),
    ("electronics", 0.10, 189_000),
    ("home_living", 0.09, 45_000),
    ("sports", 0.07, 59_000),
    ("kids", 0.06, 29_000),
    ("digital_accessories", 0.06, 19_000),
    ("books", 0.05, 16_000),
    ("pet", 0.04, 22_000),
    ("health", 0.03, 33_000),
    ("furniture", 0.02, 249_000),
)
_ADJECTIVES = (
    "Classic", "Everyday", "Premium", "Light", "Soft", "Slim", "Organic", "Smart", "Compact",
    "Daily", "Signature", "Essential", "Air", "Pro", "Mini", "Max", "Eco", "Urban",
)  # fmt: skip
_NOUNS: dict[str, tuple[str, ...]] = {
    "fashion": ("Knit Sweater", "Denim Jacket", "Wide Slacks", "Hoodie", "Sneakers", "Coat"),
    "beauty": ("Cushion Foundation", "Sun Cream", "Toner Pad", "Lip Tint", "Serum", "Mask Pack"),
    "food": ("Kimchi 1kg", "Instant Rice 12p", "Coffee Beans", "Mandu", "Gim Snack", "Tteok"),
    "electronics": ("Earbuds", "Tablet", "Robot Vacuum", "Monitor", "Air Purifier", "Speaker"),
    "home_living": ("Towel Set", "Storage Box", "Bedding Set", "Diffuser", "Mug Set", "Rug"),
    "sports": ("Yoga Mat", "Running Shoes", "Dumbbell Set", "Golf Balls", "Tent", "Leggings"),
    "kids": ("Block Set", "Kids Backpack", "Picture Book", "Diapers", "Stroller Fan", "Puzzle"),
    "digital_accessories": ("USB-C Cable", "Phone Case", "Charger", "Keyboard", "Mouse", "Hub"),
    "books": ("Novel", "Cookbook", "Workbook", "Comic Vol.1", "Essay", "Travel Guide"),
    "pet": ("Cat Litter", "Dog Food 2kg", "Pet Bed", "Cat Tower", "Chew Toy", "Pet Shampoo"),
    "health": ("Vitamin C", "Omega-3", "Probiotics", "Massage Gun", "Protein Bar", "Mask 50p"),
    "furniture": ("Desk", "Office Chair", "Sofa", "Bookshelf", "Dining Table", "Bed Frame"),
}
_BRANDS = (
    "Hanbit", "Moa", "Daon", "Saebom", "Nuri", "Gaon", "Haneul", "Byeol", "Dasom", "Arum",
    "Jinju", "Mirae", "Sora", "Ieum", "Bada", "Sarang", "Hana", "Onda", "Yeoreum", "Gyeoul",
    "Purum", "Noeul", "Sseal", "Maru", "Doran", "Chorok", "Areum", "Seum", "Dal", "Haru",
)  # fmt: skip
SEARCH_TERMS = (
    "padding jacket", "sun cream", "air fryer", "earbuds", "kimchi", "running shoes",
    "phone case", "humidifier", "protein", "dog food", "yoga mat", "lip tint", "laptop",
    "coffee", "diapers", "gift set", "winter coat", "vitamin", "cat litter", "desk",
    "black friday", "free shipping", "dawn delivery", "slippers", "bedding",
)  # fmt: skip
LOGIN_METHODS = ("kakao", "naver", "email", "apple")
SHIPPING_TIERS = ("standard", "dawn", "same_day")
PAYMENT_TYPES = ("card", "kakaopay", "naverpay", "tosspay", "bank_transfer")
REFUND_REASONS = ("changed_mind", "defective", "wrong_size", "late_delivery")
# fixed pages, in page-table order; then one page per category, product and search term
FIXED_PAGES = (
    "/", "/cart", "/checkout", "/checkout/shipping", "/checkout/payment",
    "/checkout/complete", "/login", "/signup", "/events/sale", "/my/orders",
)  # fmt: skip
PAGE = {path: i for i, path in enumerate(FIXED_PAGES)}


@dataclass(frozen=True)
class Catalogue:
    """The shop's products (grouped by category) and its page and property dictionaries."""

    product_ids: pa.StringArray
    names: pa.StringArray
    categories: pa.StringArray  # per product
    brands: pa.StringArray  # per product
    prices: npt.NDArray[np.int64]  # KRW, multiples of 100
    category_of: npt.NDArray[np.int64]  # per product
    category_names: tuple[str, ...]
    category_weights: npt.NDArray[np.float64]  # traffic share per category, sums to 1
    cum_popularity: npt.NDArray[np.float64]  # cumulative popularity over all products, ends at 1
    category_start: npt.NDArray[np.float64]  # cum_popularity mass before each category
    category_mass: npt.NDArray[np.float64]  # popularity mass of each category
    pages: pa.StringArray  # page_location dictionary (shop pages, then external referrers)
    properties: pa.StringArray  # JSON params dictionary
    screens: pa.StringArray  # app screen names
    screen_of_page: npt.NDArray[np.int64]  # screen index of each shop page
    list_ids: pa.StringArray  # item_list_id per category
    list_names: pa.StringArray  # item_list_name per category

    @property
    def n_products(self) -> int:
        return int(self.prices.size)

    # page-table offsets
    @property
    def category_page0(self) -> int:
        return len(FIXED_PAGES)

    @property
    def product_page0(self) -> int:
        return self.category_page0 + len(self.category_names)

    @property
    def search_page0(self) -> int:
        return self.product_page0 + self.n_products

    @property
    def referrer_page0(self) -> int:
        return self.search_page0 + len(SEARCH_TERMS)

    def sample_products(
        self, rng: np.random.Generator, categories: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.int64]:
        """One product per entry of ``categories``, by popularity within that category."""
        u = rng.random(categories.size)
        target = self.category_start[categories] + u * self.category_mass[categories]
        idx = np.searchsorted(self.cum_popularity, target, side="right")
        return np.minimum(idx, self.n_products - 1).astype(np.int64)


class Props:
    """Offsets of the JSON property dictionary (search terms, methods, tiers, payments...)."""

    SEARCH = 0
    LOGIN = SEARCH + len(SEARCH_TERMS)
    SHIPPING = LOGIN + len(LOGIN_METHODS)
    PAYMENT = SHIPPING + len(SHIPPING_TIERS)
    PURCHASE = PAYMENT + len(PAYMENT_TYPES)  # payment x shipping x promo(0/1)
    REFUND = PURCHASE + len(PAYMENT_TYPES) * len(SHIPPING_TIERS) * 2
    SIZE = REFUND + len(REFUND_REASONS)


def _property_dictionary() -> list[str]:
    def dump(obj: dict[str, object]) -> str:
        return json.dumps(obj, separators=(",", ":"), sort_keys=True)

    props = [dump({"search_term": term}) for term in SEARCH_TERMS]
    props += [dump({"method": method}) for method in LOGIN_METHODS]
    props += [dump({"shipping_tier": tier}) for tier in SHIPPING_TIERS]
    props += [dump({"payment_type": pay}) for pay in PAYMENT_TYPES]
    for pay in PAYMENT_TYPES:
        for tier in SHIPPING_TIERS:
            for promo in (False, True):
                obj: dict[str, object] = {"payment_type": pay, "shipping_tier": tier}
                if promo:
                    obj["coupon"] = "BLACKFRIDAY"
                props.append(dump(obj))
    props += [dump({"reason": reason}) for reason in REFUND_REASONS]
    assert len(props) == Props.SIZE
    return props


def build_catalogue(seed: int, n_products: int = 5_000) -> Catalogue:
    """The shop for ``seed``: ``n_products`` products over the fixed categories."""
    rng = np.random.default_rng([seed, 0xCA7])
    names = tuple(c[0] for c in CATEGORIES)
    weights = np.array([c[1] for c in CATEGORIES], dtype=np.float64)
    weights /= weights.sum()
    # products per category in proportion to traffic, at least 5 each
    per_cat = np.maximum(5, np.floor(weights * n_products)).astype(np.int64)
    per_cat[0] += n_products - per_cat.sum()
    category_of = np.repeat(np.arange(len(names)), per_cat)
    n = int(category_of.size)

    median = np.array([c[2] for c in CATEGORIES], dtype=np.float64)[category_of]
    prices = np.round(median * rng.lognormal(0.0, 0.55, n) / 100).astype(np.int64) * 100
    prices = np.maximum(prices, 1_000)
    brand_idx = rng.integers(0, len(_BRANDS), n)
    adj_idx = rng.integers(0, len(_ADJECTIVES), n)
    noun_idx = rng.integers(0, 6, n)
    product_names = [
        f"{_BRANDS[b]} {_ADJECTIVES[a]} {_NOUNS[names[c]][k]}"
        for b, a, k, c in zip(brand_idx, adj_idx, noun_idx, category_of, strict=True)
    ]

    # Zipf-like popularity within each category (rank by a random permutation), scaled so each
    # category carries its traffic share.
    popularity = np.empty(n, dtype=np.float64)
    starts = np.concatenate([[0], np.cumsum(per_cat)])
    for c in range(len(names)):
        k = int(per_cat[c])
        ranks = rng.permutation(k) + 1
        zipf = 1.0 / ranks**1.07
        popularity[starts[c] : starts[c + 1]] = weights[c] * zipf / zipf.sum()
    cum = np.cumsum(popularity)
    cum /= cum[-1]
    category_mass = np.array(
        [popularity[starts[c] : starts[c + 1]].sum() for c in range(len(names))]
    )
    category_mass /= category_mass.sum()
    category_start = np.concatenate([[0.0], np.cumsum(category_mass)[:-1]])

    product_ids = zero_padded_ids("P", np.arange(1, n + 1), 6)
    pages = (
        [SHOP_URL + p for p in FIXED_PAGES]
        + [f"{SHOP_URL}/category/{c}" for c in names]
        + [f"{SHOP_URL}/products/{pid}" for pid in product_ids.to_pylist()]
        + [f"{SHOP_URL}/search?q={t.replace(' ', '+')}" for t in SEARCH_TERMS]
        + list(REFERRERS)
    )
    screen_names = list(SCREEN_NAMES.values())
    fixed_kinds = ("home", "cart", "checkout", "shipping", "payment", "complete", "login",
                   "signup", "sale", "orders")  # fmt: skip
    screen_of_page = np.array(
        [screen_names.index(SCREEN_NAMES[k]) for k in fixed_kinds]
        + [screen_names.index("Category")] * len(names)
        + [screen_names.index("ProductDetail")] * n
        + [screen_names.index("SearchResults")] * len(SEARCH_TERMS),
        dtype=np.int64,
    )
    return Catalogue(
        product_ids=product_ids,
        names=pa.array(product_names, pa.string()),
        categories=pa.array([names[c] for c in category_of], pa.string()),
        brands=pa.array([_BRANDS[b] for b in brand_idx], pa.string()),
        prices=prices,
        category_of=category_of.astype(np.int64),
        category_names=names,
        category_weights=weights,
        cum_popularity=cum,
        category_start=category_start,
        category_mass=category_mass,
        pages=pa.array(pages, pa.string()),
        properties=pa.array(_property_dictionary(), pa.string()),
        screens=pa.array(screen_names, pa.string()),
        screen_of_page=screen_of_page,
        list_ids=pa.array([f"category_{c}" for c in names], pa.string()),
        list_names=pa.array([c.replace("_", " ").title() for c in names], pa.string()),
    )


# Device profiles: platform, device_type, user agent, os, os version, screen, app version
# (None = web). Ingest derives device_type from the user agent, so each agent is a real one.
DEVICE_PROFILES: tuple[tuple[str, str, str, str, str, str, str | None], ...] = (
    ("web", "desktop", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
     "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Windows", "10", "1920x1080", None),
    ("web", "desktop", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/18.1 Safari/605.1.15", "macOS", "15.1", "1512x982", None),
    ("web", "mobile", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
     "iOS", "18.1", "393x852", None),
    ("web", "mobile", "Mozilla/5.0 (Linux; Android 14; SM-S928N) AppleWebKit/537.36 "
     "(KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
     "Android", "14", "412x915", None),
    ("web", "tablet", "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1", "iPadOS", "17.6",
     "820x1180", None),
    ("ios", "mobile", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 ShopApp/5.12.0", "iOS", "18.1",
     "1179x2556", "5.12.0"),
    ("ios", "mobile", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) "
     "AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 ShopApp/5.11.2", "iOS", "17.6",
     "1170x2532", "5.11.2"),
    ("ios", "tablet", "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
     "(KHTML, like Gecko) Mobile/15E148 ShopApp/5.12.0", "iPadOS", "18.1", "1640x2360",
     "5.12.0"),
    ("android", "mobile", "Mozilla/5.0 (Linux; Android 14; SM-S921N Build/UP1A.231005.007; wv) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.0.0 Mobile Safari/537.36 "
     "ShopApp/5.12.0", "Android", "14", "1080x2340", "5.12.0"),
    ("android", "mobile", "Mozilla/5.0 (Linux; Android 13; SM-A536N Build/TP1A.220624.014; wv) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/130.0.0.0 Mobile Safari/537.36 "
     "ShopApp/5.11.2", "Android", "13", "1080x2400", "5.11.2"),
    ("android", "tablet", "Mozilla/5.0 (Linux; Android 14; SM-X710N Build/UP1A.231005.007; wv) "
     "AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/131.0.0.0 Safari/537.36 "
     "ShopApp/5.12.0", "Android", "14", "1600x2560", "5.12.0"),
)  # fmt: skip
# External referrers of landing pages (web); None = direct
REFERRERS = (
    "https://search.naver.com/", "https://www.google.com/", "https://m.search.naver.com/",
    "https://www.instagram.com/", "https://www.youtube.com/", "https://m.kakao.com/",
)  # fmt: skip
LOCALES = ("ko-KR", "en-US", "ja-JP", "zh-CN")
LOCALE_MIX = (0.93, 0.04, 0.02, 0.01)
SCREEN_NAMES = {  # app screen per page kind
    "home": "Home", "cart": "Cart", "checkout": "Checkout", "shipping": "CheckoutShipping",
    "payment": "CheckoutPayment", "complete": "OrderComplete", "login": "Login",
    "signup": "SignUp", "sale": "Promotion", "orders": "MyOrders", "category": "Category",
    "product": "ProductDetail", "search": "SearchResults",
}  # fmt: skip
