"""A shop that changes its own database: orders, payments, shipments and stock movements.

The CDC demo, tests and benchmarks drive the source database with it. Each :meth:`step` is one
business transaction, chosen with realistic weights from what is possible right now:

- **place** an order (``pending``) with 1-4 lines, reserving stock;
- **pay** a pending order (``paid``, ``paid_at``, a payment method);
- **cancel** a pending order, releasing its reservations;
- **ship** a paid order: a shipment row (``label_created``), stock leaves the warehouse;
- **advance** a shipment (``in_transit`` -> ``out_for_delivery`` -> ``delivered``; the order
  follows);
- **refund** a delivered order;
- **restock** a product (new count, new unit cost, ``last_counted_on``);
- **purge** a cancelled order: DELETE of the order and its lines (CDC deletes).

Money is exact (``Decimal`` with cents), timestamps carry microseconds, names are Korean and
English with emoji in customer notes — everything CDC must carry without loss.

Example (needs a shop database):
    >>> sim = ShopSimulator(dsn, seed=7)               # doctest: +SKIP
    >>> sim.seed_inventory(); sim.run(1000)  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from edp_tools.cdc.shop import connect

WAREHOUSES = ("ICN-1", "PUS-1", "DJN-1")
CARRIERS = ("CJ대한통운", "한진택배", "롯데택배", "우체국택배", "Coupang Rocket")
PAYMENT_METHODS = ("card", "bank_transfer", "kakao_pay", "naver_pay", "toss_pay")
PRODUCTS: tuple[tuple[str, str, Decimal], ...] = (
    ("P-1001", "무선 이어폰 Pro", Decimal("189000.00")),
    ("P-1002", "스마트 워치 S2", Decimal("329000.00")),
    ("P-1003", "USB-C 충전기 65W", Decimal("39900.00")),
    ("P-1004", "Ergonomic Mouse", Decimal("59000.50")),
    ("P-1005", "기계식 키보드 갈축", Decimal("129000.00")),
    ("P-1006", '노트북 파우치 15"', Decimal("24900.99")),
    ("P-1007", "Café Latte Beans 1kg", Decimal("31500.00")),
    ("P-1008", "캠핑 의자 (경량)", Decimal("78000.10")),
    ("P-1009", "Yoga Mat 6mm", Decimal("42000.00")),
    ("P-1010", "에어프라이어 5.5L", Decimal("119000.00")),
    ("P-1011", "Kids Sneakers 👟", Decimal("65000.00")),
    ("P-1012", "손목 보호대", Decimal("9900.01")),
)
NOTES = (
    None,
    None,
    None,
    "문 앞에 놓아주세요",
    "Leave at the door, thanks! 🙏",
    "경비실에 맡겨주세요 📦",
    "Fragile — handle with care",
    "부재 시 연락 주세요 ☎",
)


@dataclass
class _Order:
    order_id: int
    lines: list[tuple[str, str, int]]  # (warehouse_id, product_id, qty)
    status: str


@dataclass
class SimStats:
    """Actions performed, by kind."""

    actions: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str) -> None:
        self.actions[kind] = self.actions.get(kind, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.actions.values())


class ShopSimulator:
    """Drives the shop database (see the module docstring)."""

    def __init__(self, dsn: str, *, seed: int = 0) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        self.conn = connect(dsn)
        self.stats = SimStats()
        self.orders: dict[str, list[_Order]] = {
            "pending": [],
            "paid": [],
            "delivered": [],
            "cancelled": [],
        }
        self.shipments: dict[int, tuple[int, str]] = {}  # shipment_id -> (order_id, status)
        with self.conn.cursor() as cur:
            cur.execute("SELECT coalesce(max(order_id), 0) FROM shop.orders")
            self._next_order = int(cur.fetchone()[0]) + 1  # type: ignore[index]
            cur.execute("SELECT coalesce(max(shipment_id), 0) FROM shop.shipments")
            self._next_shipment = int(cur.fetchone()[0]) + 1  # type: ignore[index]
        self.conn.commit()

    def close(self) -> None:
        self.conn.close()

    def _now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    # --- setup ----------------------------------------------------------------------------------
    def seed_inventory(self) -> int:
        """Stock every product in every warehouse (idempotent); returns rows inserted."""
        rows = 0
        with self.conn.cursor() as cur:
            for wh in WAREHOUSES:
                for product_id, _, price in PRODUCTS:
                    cur.execute(
                        "INSERT INTO shop.inventory (warehouse_id, product_id, on_hand, reserved, "
                        "unit_cost, weight_kg, is_active, last_counted_on, updated_at) "
                        "VALUES (%s, %s, %s, 0, %s, %s, true, %s, %s) ON CONFLICT DO NOTHING",
                        (
                            wh,
                            product_id,
                            self.rng.randint(200, 2000),
                            (price * Decimal("0.6123")).quantize(Decimal("0.0001")),
                            round(self.rng.uniform(0.05, 8.0), 3),
                            dt.date.today() - dt.timedelta(days=self.rng.randint(0, 30)),
                            self._now(),
                        ),
                    )
                    rows += cur.rowcount
        self.conn.commit()
        return rows

    # --- actions --------------------------------------------------------------------------------
    def place_order(self, cur: Any) -> None:
        order_id = self._next_order
        self._next_order += 1
        n_lines = self.rng.choices((1, 2, 3, 4), weights=(50, 30, 15, 5))[0]
        picks = self.rng.sample(PRODUCTS, n_lines)
        wh = self.rng.choice(WAREHOUSES)
        lines: list[tuple[str, str, int]] = []
        subtotal = Decimal("0.00")
        now = self._now()
        items = []
        for line_no, (product_id, name, price) in enumerate(picks, start=1):
            qty = self.rng.choices((1, 2, 3), weights=(80, 15, 5))[0]
            line_total = price * qty
            subtotal += line_total
            items.append((order_id, line_no, product_id, name, qty, price, line_total))
            lines.append((wh, product_id, qty))
        discount = (subtotal * Decimal(self.rng.choice((0, 0, 0, 5, 10))) / 100).quantize(
            Decimal("0.01")
        )
        shipping = Decimal("0.00") if subtotal >= 50000 else Decimal("3000.00")
        cur.execute(
            "INSERT INTO shop.orders (order_id, order_uuid, user_id, status, currency, subtotal, "
            "discount, shipping_fee, total_amount, payment_method, paid_at, note, created_at, "
            "updated_at) VALUES (%s, %s, %s, 'pending', 'KRW', %s, %s, %s, %s, NULL, NULL, %s, "
            "%s, %s)",
            (
                order_id,
                str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
                self.rng.randint(1, 50_000),
                subtotal,
                discount,
                shipping,
                subtotal - discount + shipping,
                self.rng.choice(NOTES),
                now,
                now,
            ),
        )
        cur.executemany(
            "INSERT INTO shop.order_items (order_id, line_no, product_id, product_name, quantity, "
            "unit_price, line_total) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            items,
        )
        for wh_id, product_id, qty in lines:
            cur.execute(
                "UPDATE shop.inventory SET reserved = reserved + %s, updated_at = %s "
                "WHERE warehouse_id = %s AND product_id = %s",
                (qty, now, wh_id, product_id),
            )
        self.orders["pending"].append(_Order(order_id, lines, "pending"))

    def pay_order(self, cur: Any) -> None:
        order = self._take("pending")
        now = self._now()
        cur.execute(
            "UPDATE shop.orders SET status = 'paid', paid_at = %s, payment_method = %s, "
            "updated_at = %s WHERE order_id = %s",
            (now, self.rng.choice(PAYMENT_METHODS), now, order.order_id),
        )
        order.status = "paid"
        self.orders["paid"].append(order)

    def cancel_order(self, cur: Any) -> None:
        order = self._take("pending")
        now = self._now()
        cur.execute(
            "UPDATE shop.orders SET status = 'cancelled', updated_at = %s WHERE order_id = %s",
            (now, order.order_id),
        )
        for wh_id, product_id, qty in order.lines:
            cur.execute(
                "UPDATE shop.inventory SET reserved = greatest(reserved - %s, 0), updated_at = %s "
                "WHERE warehouse_id = %s AND product_id = %s",
                (qty, now, wh_id, product_id),
            )
        order.status = "cancelled"
        self.orders["cancelled"].append(order)

    def ship_order(self, cur: Any) -> None:
        order = self._take("paid")
        now = self._now()
        shipment_id = self._next_shipment
        self._next_shipment += 1
        cur.execute(
            "UPDATE shop.orders SET status = 'shipped', updated_at = %s WHERE order_id = %s",
            (now, order.order_id),
        )
        cur.execute(
            "INSERT INTO shop.shipments (shipment_id, order_id, carrier, tracking_number, status, "
            "is_express, weight_kg, estimated_delivery, label_printed_local, shipped_at, "
            "delivered_at, updated_at) VALUES (%s, %s, %s, %s, 'label_created', %s, %s, %s, %s, "
            "NULL, NULL, %s)",
            (
                shipment_id,
                order.order_id,
                self.rng.choice(CARRIERS),
                f"{self.rng.randint(10**11, 10**12 - 1)}",
                self.rng.random() < 0.2,
                Decimal(self.rng.randint(100, 25_000)) / 1000,
                (now + dt.timedelta(days=self.rng.randint(1, 4))).date(),
                (now + dt.timedelta(hours=9)).replace(tzinfo=None),  # Seoul wall clock
                now,
            ),
        )
        for wh_id, product_id, qty in order.lines:
            cur.execute(
                "UPDATE shop.inventory SET on_hand = on_hand - %s, "
                "reserved = greatest(reserved - %s, 0), updated_at = %s "
                "WHERE warehouse_id = %s AND product_id = %s",
                (qty, qty, now, wh_id, product_id),
            )
        self.shipments[shipment_id] = (order.order_id, "label_created")

    def advance_shipment(self, cur: Any) -> None:
        shipment_id = self.rng.choice(list(self.shipments))
        order_id, status = self.shipments[shipment_id]
        nxt = {
            "label_created": "in_transit",
            "in_transit": "out_for_delivery",
            "out_for_delivery": "delivered",
        }[status]
        now = self._now()
        if nxt == "in_transit":
            cur.execute(
                "UPDATE shop.shipments SET status = %s, shipped_at = %s, updated_at = %s "
                "WHERE shipment_id = %s",
                (nxt, now, now, shipment_id),
            )
        elif nxt == "delivered":
            cur.execute(
                "UPDATE shop.shipments SET status = %s, delivered_at = %s, updated_at = %s "
                "WHERE shipment_id = %s",
                (nxt, now, now, shipment_id),
            )
            cur.execute(
                "UPDATE shop.orders SET status = 'delivered', updated_at = %s WHERE order_id = %s",
                (now, order_id),
            )
            del self.shipments[shipment_id]
            self.orders["delivered"].append(_Order(order_id, [], "delivered"))
            return
        else:
            cur.execute(
                "UPDATE shop.shipments SET status = %s, updated_at = %s WHERE shipment_id = %s",
                (nxt, now, shipment_id),
            )
        self.shipments[shipment_id] = (order_id, nxt)

    def refund_order(self, cur: Any) -> None:
        order = self._take("delivered")
        cur.execute(
            "UPDATE shop.orders SET status = 'refunded', updated_at = %s WHERE order_id = %s",
            (self._now(), order.order_id),
        )

    def restock(self, cur: Any) -> None:
        product_id, _, price = self.rng.choice(PRODUCTS)
        cost = (price * Decimal(str(round(self.rng.uniform(0.5, 0.7), 4)))).quantize(
            Decimal("0.0001")
        )
        cur.execute(
            "UPDATE shop.inventory SET on_hand = on_hand + %s, unit_cost = %s, "
            "last_counted_on = %s, updated_at = %s WHERE warehouse_id = %s AND product_id = %s",
            (
                self.rng.randint(50, 500),
                cost,
                dt.date.today(),
                self._now(),
                self.rng.choice(WAREHOUSES),
                product_id,
            ),
        )

    def purge_cancelled(self, cur: Any) -> None:
        order = self._take("cancelled")
        cur.execute("DELETE FROM shop.order_items WHERE order_id = %s", (order.order_id,))
        cur.execute("DELETE FROM shop.orders WHERE order_id = %s", (order.order_id,))

    def _take(self, status: str) -> _Order:
        bucket = self.orders[status]
        return bucket.pop(self.rng.randrange(len(bucket)))

    # --- driving --------------------------------------------------------------------------------
    def _choices(self) -> list[tuple[str, int]]:
        options = [("place", 30), ("restock", 4)]
        if self.orders["pending"]:
            options += [("pay", 25), ("cancel", 4)]
        if self.orders["paid"]:
            options.append(("ship", 18))
        if self.shipments:
            options.append(("advance", 25))
        if self.orders["delivered"]:
            options.append(("refund", 2))
        if self.orders["cancelled"]:
            options.append(("purge", 3))
        return options

    def step(self) -> str:
        """Perform one business transaction; returns its kind."""
        options = self._choices()
        kind = self.rng.choices([o[0] for o in options], weights=[o[1] for o in options])[0]
        action = {
            "place": self.place_order,
            "pay": self.pay_order,
            "cancel": self.cancel_order,
            "ship": self.ship_order,
            "advance": self.advance_shipment,
            "refund": self.refund_order,
            "restock": self.restock,
            "purge": self.purge_cancelled,
        }[kind]
        with self.conn.cursor() as cur:
            action(cur)
        self.conn.commit()
        self.stats.add(kind)
        return kind

    def run(self, actions: int, *, tps: float | None = None) -> SimStats:
        """Perform ``actions`` transactions, paced at ``tps`` when given."""
        start = time.monotonic()
        for i in range(actions):
            if tps:
                wait = start + i / tps - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            self.step()
        return self.stats
