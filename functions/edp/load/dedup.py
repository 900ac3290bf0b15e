"""Dropping repeats of an ``event_id``: within one batch, or over a bounded time horizon.

Pub/Sub delivers at least once and clients retry, so the stream load keeps the first row of
each event id (:func:`dedup_by_event_id` in a batch, :class:`EventIdDeduper` across batches).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def dedup_by_event_id(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The first row of each event_id, in input order.

    Example:
        >>> [r["n"] for r in dedup_by_event_id([
        ...     {"event_id": "a", "n": 1}, {"event_id": "b", "n": 2}, {"event_id": "a", "n": 3}])]
        [1, 2]
    """
    seen: set[str] = set()
    kept: list[Mapping[str, Any]] = []
    for row in rows:
        event_id = row["event_id"]
        if event_id not in seen:
            seen.add(event_id)
            kept.append(row)
    return kept


class EventIdDeduper:
    """Remembers event ids for a bounded horizon and filters repeats (not thread-safe).

    Ids are forgotten ``horizon_s`` seconds after they were first seen (insertion order is
    time order, so expiry pops from the front of an ordered dict); ``max_ids`` bounds memory
    whatever the traffic.

    Example:
        >>> deduper = EventIdDeduper(horizon_s=60)
        >>> [r["event_id"] for r in deduper.filter([{"event_id": "a"}, {"event_id": "a"}], now=0)]
        ['a']
        >>> deduper.filter([{"event_id": "a"}], now=30)
        []
        >>> len(deduper.filter([{"event_id": "a"}], now=61))
        1
    """

    def __init__(self, horizon_s: float, max_ids: int = 5_000_000) -> None:
        self.horizon_s = horizon_s
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._seen

    def remember(self, event_ids: Iterable[str], now: float | None = None) -> None:
        """Mark ids as already loaded (e.g. warm-up from the warehouse after a restart)."""
        moment = time.monotonic() if now is None else now
        for event_id in event_ids:
            if event_id not in self._seen:
                self._seen[event_id] = moment
        self._expire(moment)

    def filter(
        self, rows: Iterable[dict[str, Any]], now: float | None = None
    ) -> list[dict[str, Any]]:
        """Rows whose event_id was not seen within the horizon; remembers the kept ones."""
        moment = time.monotonic() if now is None else now
        self._expire(moment)
        seen = self._seen
        kept: list[dict[str, Any]] = []
        for row in rows:
            event_id = row["event_id"]
            if event_id not in seen:
                seen[event_id] = moment
                kept.append(row)
        return kept

    def keep_mask(self, event_ids: Sequence[str], now: float | None = None) -> list[bool]:
        """Per id, whether it is new (first within the horizon); remembers the new ones.

        Example:
            >>> EventIdDeduper(horizon_s=60).keep_mask(["a", "b", "a"], now=0)
            [True, True, False]
        """
        moment = time.monotonic() if now is None else now
        self._expire(moment)
        seen = self._seen
        mask: list[bool] = []
        for event_id in event_ids:
            new = event_id not in seen
            if new:
                seen[event_id] = moment
            mask.append(new)
        return mask

    def forget(self, event_ids: Iterable[str]) -> None:
        """Un-remember ids whose write failed, so their redelivery is loaded."""
        for event_id in event_ids:
            self._seen.pop(event_id, None)

    def _expire(self, now: float) -> None:
        seen = self._seen
        cutoff = now - self.horizon_s
        while seen:
            first_seen = next(iter(seen.values()))
            if first_seen > cutoff and len(seen) <= self.max_ids:
                break
            seen.popitem(last=False)
