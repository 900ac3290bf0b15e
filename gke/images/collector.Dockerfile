# syntax=docker/dockerfile:1.7
# Event collector image: the ingest app (edp.ingest) under gunicorn, non-root, read-only root FS.
# Build from the repository root:
#   docker build -f gke/images/collector.Dockerfile -t $REGISTRY/event-collector:$TAG .

FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY functions ./functions
# Runtime dependencies + gunicorn only (no DuckDB/PostgreSQL/dev tools in the image).
RUN python -m venv /venv \
 && /venv/bin/pip install . "gunicorn>=23,<24" "opentelemetry-exporter-prometheus>=0.57b0"

FROM python:3.11.11-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 edp && useradd --system --uid 10001 --gid edp --no-create-home edp
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 EDP_METRICS_EXPORTER=prometheus
USER 10001:10001
EXPOSE 8080
# For plain `docker run`; on GKE the readiness/liveness probes of the Deployment apply.
HEALTHCHECK --interval=10s --timeout=2s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)"]
# gunicorn's graceful shutdown runs the app's worker_exit hook, which flushes the publisher.
CMD ["gunicorn", "--config", "python:edp.ingest.gunicorn_conf", "edp.ingest.asgi:app"]
