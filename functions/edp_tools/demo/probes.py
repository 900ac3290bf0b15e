"""Probes ``edp demo`` uses to know when the pipelines have caught up."""

from __future__ import annotations

import time
from typing import Any


def pg_lsn(dsn: str, sql: str, *args: Any) -> Any:
    import psycopg2

    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def drain_count(subscription: str) -> int:
    """Pull (and ack) everything on ``subscription``; returns how many messages there were."""
    from edp.bus.messages import ack, pull

    total = 0
    empty = 0
    while empty < 3:
        got = pull(subscription, max_messages=100)
        if not got:
            empty += 1
            time.sleep(0.2)
            continue
        empty = 0
        total += len(got)
        ack(subscription, got)
    return total
