"""Event ingest: the HTTPS front door apps call (native API + Segment/RudderStack-compatible API).

- :mod:`edp.ingest.core` — the pure core (validate, enrich, publish; per-event results);
- :mod:`edp.ingest.app` — the flask app (``create_app(settings, publisher)``): routes, CORS
  preflight, probes; each ingest route calls :mod:`edp.ingest.service` (authenticate with
  :mod:`edp.ingest.auth`, read, parse, shape, ingest, answer);
- :mod:`edp.ingest.asgi` — the app as served: the flask app on one event loop per worker, its
  Publish RPC awaited (:mod:`edp.ingest.publisher_aio`); the GKE entry is
  ``edp.ingest.asgi:app`` (config in ``edp.ingest.gunicorn_conf``), the Cloud Run entry point
  ``ingest`` in ``functions/main.py``.
"""
