"""The ingest app as deployed: one event loop per worker, the Publish RPC awaited, no threads.

The flask app of :mod:`edp.ingest.app` (routes, authentication, validation, answers) runs
unchanged inside :class:`~edp.http.asgi.GreenletWSGI`; its publisher is a
:class:`BridgedPublisher` over :class:`~edp.ingest.publisher_aio.AioPubSubPublisher`, so a
request's publish is a coroutine on the worker's loop while other requests go on.

Served two ways from this module:

* GKE collector: ``gunicorn -c python:edp.ingest.gunicorn_conf edp.ingest.asgi:app``
  (uvicorn workers, httptools + uvloop);
* Cloud Run function ``ingest`` (``functions/main.py``, ``functions_framework.aio``): the
  framework's own gunicorn + uvicorn worker calls :func:`cached_app`'s ``respond``.

Why (measured on the 2-core bench machine at 1,180 single-event requests/s): the threaded
server spent ~1,100 µs of CPU per request, most of it in thread hand-offs (request thread, the
gRPC threads, the group-commit followers); a prototype of this model spent 330-480 µs and its
p99 fell from 100+ ms to 10-11 ms.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
from collections.abc import Sequence
from functools import cache

from edp.http.asgi import GreenletWSGI
from edp.http.bridge import await_only
from edp.ingest.app import create_app, service_of
from edp.ingest.publisher import OutboundMessage
from edp.ingest.publisher_aio import AioPubSubPublisher
from edp.observability import multiprocess, tracing
from edp.settings import Settings, get_settings

# The server's own log: the uvicorn worker routes it to gunicorn's error log, and plain uvicorn
# prints it (this package configures no logging of its own).
server_log = logging.getLogger("uvicorn.error")


class BridgedPublisher:
    """The synchronous :class:`~edp.ingest.publisher.Publisher` protocol over the asyncio
    publisher, for the flask app running under :func:`~edp.http.bridge.run_sync`."""

    def __init__(self, inner: AioPubSubPublisher) -> None:
        self.inner = inner

    def publish(self, topic: str, messages: Sequence[OutboundMessage]) -> None:
        await_only(self.inner.publish(topic, messages))

    def check(self, topic: str) -> None:
        await_only(self.inner.check(topic))

    def close(self) -> None:
        await_only(self.inner.close())


def create_asgi_app(settings: Settings | None = None) -> GreenletWSGI:
    """The ingest ASGI app for ``settings`` (default: the environment's)."""
    settings = settings or get_settings()
    publisher = AioPubSubPublisher(settings.project, emulator_host=settings.pubsub_emulator_host)
    flask_app = create_app(settings, BridgedPublisher(publisher))
    service = service_of(flask_app)

    def close_publisher() -> None:
        service.publisher.close()
        server_log.info("ingest worker %s: publisher flushed and closed", os.getpid())

    def ship_spans() -> None:
        # before the loop stops: the Cloud Trace writes finish on it, not redone blocking
        await_only(tracing.drain_traces())

    return GreenletWSGI(
        flask_app.wsgi_app,
        body_limit=settings.max_request_bytes,
        body_timeout_s=settings.body_read_timeout_sec,
        max_uploads=settings.max_concurrent_uploads,
        # the worker's last spans and last second of metrics, kept on its loop
        on_shutdown=[close_publisher, ship_spans, multiprocess.flush],
    )


#: Seconds after the app is built when what the first requests built (the Pub/Sub channel,
#: validators' and exporters' lazy state) is frozen too.
REFREEZE_AFTER_S = 10.0


def _freeze_heap() -> None:
    """Move every object alive now out of the collector's reach (``gc.freeze``).

    The app's modules, validators and clients live as long as the worker, yet every full
    collection walked them all: on the 2-core bench machine at the peak rate a full collection
    stopped the worker's event loop for 45-130 ms several times a minute, which was the
    single-event p99. Frozen objects are still freed by reference counting; only a reference
    cycle among them that becomes garbage later is never collected (the 10-minute soak at
    11,800 events/s measured no worker memory growth). Garbage already there is collected
    first.
    """
    gc.collect()
    gc.freeze()


@cache
def cached_app() -> GreenletWSGI:
    """The process-wide app built from the environment's settings (built on first request).

    The heap is frozen once the app is built and again :data:`REFREEZE_AFTER_S` later, after
    the first requests have built the rest of the worker's long-lived state.
    """
    app = create_asgi_app()
    _freeze_heap()
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # built outside an event loop (tools, tests): the first freeze only
        return app
    loop.call_later(REFREEZE_AFTER_S, _freeze_heap)
    return app


class _LazyApp:
    """``edp.ingest.asgi:app``: built on the first ASGI event, in the worker (after the fork)."""

    async def __call__(self, scope: dict[str, object], receive: object, send: object) -> None:
        await cached_app()(scope, receive, send)  # type: ignore[arg-type]


app = _LazyApp()

__all__ = ["BridgedPublisher", "app", "cached_app", "create_asgi_app"]
