"""The publish floor the ingest benchmark compares against: receive, publish, answer 200.

What any ingest that answers only once its events are on the bus must do, and nothing else: no
app, no validation, no telemetry. The body is published as one message with the asyncio
publisher ingest uses (:class:`~edp.ingest.publisher_aio.AioPubSubPublisher`, the same group
commit and linger), on the same server (gunicorn, 2 uvicorn workers), to its own topic
(``EDP_BENCH_FLOOR_TOPIC``) so the events subscription counts ingest's messages only.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

from edp.ingest.publisher import OutboundMessage, PublishError
from edp.ingest.publisher_aio import AioPubSubPublisher
from edp.settings import get_settings

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
_OK = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"0")]}

_publisher: AioPubSubPublisher | None = None


def _get_publisher() -> AioPubSubPublisher:
    """Built in the worker on its first request (after gunicorn's fork), like ingest's."""
    global _publisher  # noqa: PLW0603 - one per worker process
    if _publisher is None:
        settings = get_settings()
        _publisher = AioPubSubPublisher(
            settings.project, emulator_host=settings.pubsub_emulator_host
        )
    return _publisher


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """ASGI: a POST's body as one message on the floor topic, then 200 (503 if the bus refused)."""
    if scope["type"] == "lifespan":
        await receive()  # lifespan.startup
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        if _publisher is not None:
            await _publisher.close()
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["method"] != "POST":  # a readiness probe: nothing to publish
        await send(_OK)
        await send({"type": "http.response.body", "body": b""})
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    topic = os.environ.get("EDP_BENCH_FLOOR_TOPIC", "events-floor")
    status = 200
    try:
        await _get_publisher().publish(topic, [OutboundMessage(body, {"event_count": "1"})])
    except PublishError:  # counted as an error by the benchmark
        status = 503
    await send({**_OK, "status": status})
    await send({"type": "http.response.body", "body": b""})
