"""WSGI entry of the ingest app for gunicorn (the GKE collector deployment).

Run::

    gunicorn -c python:edp.ingest.gunicorn_conf edp.ingest.wsgi:app

The app object is built at import (cheap: no network); its Pub/Sub client is created lazily in
each worker after the fork. On SIGTERM gunicorn stops accepting, lets in-flight requests finish
(their publishes are synchronous) and then the ``worker_exit`` hook in
:mod:`edp.ingest.gunicorn_conf` calls :func:`shutdown`, which closes the publisher.
"""

from __future__ import annotations

from edp.http.dispatch import BodyGuard
from edp.ingest.app import create_app, service_of

app = create_app()
# An unread body (refusal, stalled upload) must not hold a gunicorn thread: see BodyGuard.
app.wsgi_app = BodyGuard(app.wsgi_app)  # type: ignore[method-assign]


def shutdown() -> None:
    """Flush and close this worker's publisher (graceful shutdown)."""
    service_of(app).publisher.close()
