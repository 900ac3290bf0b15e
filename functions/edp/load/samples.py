"""Seeded synthetic events-topic traffic for the loader's tests, fault test and benchmarks.

Produces what ingest publishes (``EnrichedEvent`` NDJSON lines, several per message) with a
known share of duplicates (the same line published again in another message, as a client retry
or a Pub/Sub redelivery would) and of invalid lines (broken JSON, unknown event names, bad
timestamps, missing required fields), plus the ground truth to check a load against.

Example:
    >>> traffic = make_traffic(1000, duplicate_rate=0.02, invalid_rate=0.01, seed=7)
    >>> len(traffic.valid_ids), len(traffic.invalid_ids), traffic.duplicate_lines
    (990, 10, 20)
    >>> sum(len(m.splitlines()) for m in traffic.messages)
    1020
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

_TYPES = ("page_view", "view_item", "add_to_cart", "begin_checkout", "search", "screen_view")
_DEVICES = ("mobile", "desktop", "tablet")
_PLATFORM_OF = {"mobile": "ios", "desktop": "web", "tablet": "android"}
INVALID_KINDS = ("broken_json", "unknown_event_type", "bad_timestamp", "missing_event_timestamp")


@dataclass
class Traffic:
    """Messages to publish and the truth about them."""

    messages: list[bytes] = field(default_factory=list)
    valid_ids: set[str] = field(default_factory=set)
    invalid_ids: set[str] = field(default_factory=set)
    duplicate_lines: int = 0

    @property
    def lines(self) -> int:
        return sum(m.count(b"\n") + 1 for m in self.messages)


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def enriched_event(
    rng: random.Random, event_id: str, now: datetime | None = None
) -> dict[str, object]:
    """One valid ``EnrichedEvent`` as ingest publishes it (timestamps a few ms before now)."""
    moment = now or datetime.now(UTC)
    device = rng.choice(_DEVICES)
    event_type = rng.choice(_TYPES)
    event: dict[str, object] = {
        "event_id": event_id,
        "event_type": event_type,
        "client_timestamp": _iso(moment - timedelta(milliseconds=40)),
        "event_timestamp": _iso(moment - timedelta(milliseconds=30)),
        "received_at": _iso(moment - timedelta(milliseconds=5)),
        "ingested_at": _iso(moment),
        "user_id": f"u{rng.randrange(100_000)}",
        "anonymous_id": f"a{rng.randrange(1_000_000)}",
        "session_id": f"s{rng.randrange(1_000_000)}",
        "device_type": device,
        "platform": _PLATFORM_OF[device],
        "schema_version": "1.0",
        "source": "native",
        "page_location": f"https://shop.example/p/{rng.randrange(5000)}",
        "locale": "ko-KR",
        "params": {"utm_source": rng.choice(("google", "naver", "kakao"))},
    }
    if event_type in ("view_item", "add_to_cart", "begin_checkout"):
        event["currency"] = "KRW"
        event["value"] = float(rng.randrange(1000, 200_000))
        event["items"] = [
            {
                "item_id": f"sku-{rng.randrange(5000)}",
                "item_name": "Thing",
                "item_category": "apparel",
                "price": float(rng.randrange(1000, 100_000)),
                "quantity": rng.randrange(1, 4),
            }
        ]
    return event


def invalid_line(rng: random.Random, event_id: str, kind: str) -> bytes:
    """A line the loader must dead-letter; it always contains ``event_id`` somewhere."""
    event = enriched_event(rng, event_id)
    if kind == "broken_json":
        return orjson.dumps(event)[:-7] + b'"oops'
    if kind == "unknown_event_type":
        event["event_type"] = "teleport"
    elif kind == "bad_timestamp":
        event["event_timestamp"] = "yesterday-ish"
    else:
        del event["event_timestamp"]
    return orjson.dumps(event)


def make_traffic(
    n_events: int,
    *,
    duplicate_rate: float = 0.0,
    invalid_rate: float = 0.0,
    events_per_message: tuple[int, int] = (1, 1),
    seed: int = 0,
) -> Traffic:
    """``n_events`` distinct events (``invalid_rate`` of them invalid) plus duplicate lines.

    Duplicates repeat valid lines in later messages; ``events_per_message`` is a (min, max)
    range drawn per message.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible test traffic, not secrets
    traffic = Traffic()
    now = datetime.now(UTC)
    lines: list[bytes] = []
    n_invalid = round(n_events * invalid_rate)
    invalid_at = set(rng.sample(range(n_events), n_invalid))
    for index in range(n_events):
        event_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if index in invalid_at:
            traffic.invalid_ids.add(event_id)
            lines.append(invalid_line(rng, event_id, INVALID_KINDS[index % len(INVALID_KINDS)]))
        else:
            traffic.valid_ids.add(event_id)
            lines.append(orjson.dumps(enriched_event(rng, event_id, now)))
    valid_positions = [i for i in range(n_events) if i not in invalid_at]
    n_duplicates = round(n_events * duplicate_rate)
    keyed = [(float(i), line) for i, line in enumerate(lines)]
    for position in rng.sample(valid_positions, min(n_duplicates, len(valid_positions))):
        # The repeat arrives somewhere after the original, as a retry or redelivery would.
        keyed.append((rng.uniform(position + 0.5, n_events), lines[position]))
        traffic.duplicate_lines += 1
    keyed.sort(key=lambda pair: pair[0])
    lines = [line for _, line in keyed]
    traffic.messages = list(_pack(lines, events_per_message, rng))
    return traffic


def _pack(lines: list[bytes], sizes: tuple[int, int], rng: random.Random) -> Iterator[bytes]:
    start = 0
    while start < len(lines):
        size = rng.randint(*sizes)
        yield b"\n".join(lines[start : start + size])
        start += size
