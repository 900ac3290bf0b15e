# syntax=docker/dockerfile:1.7
# Beam stream-load images for Flink on GKE. Two targets from one file:
#   worker: the Beam Python SDK worker pool (TaskManager sidecar) with the edp package installed;
#   job:    the submitter (Kubernetes Job) with Java for the Flink job server and the Pub/Sub
#           expansion service, whose jars are baked in here because fetching them from Maven at
#           run time fails on a private cluster.
# Build from the repository root:
#   docker build -f gke/images/beam.Dockerfile --target worker -t $REGISTRY/beam-worker:$TAG .
#   docker build -f gke/images/beam.Dockerfile --target job    -t $REGISTRY/beam-job:$TAG .

ARG BEAM_VERSION=2.77.0
ARG FLINK_MINOR=1.19

FROM python:3.11.11-slim-bookworm AS wheels
ARG BEAM_VERSION
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY functions ./functions
COPY beam ./beam
RUN pip wheel --wheel-dir /wheels . "apache-beam[gcp]==${BEAM_VERSION}"

FROM eclipse-temurin:17.0.13_11-jre-jammy AS jars
ARG BEAM_VERSION
ARG FLINK_MINOR
RUN mkdir -p /opt/beam/jars \
 && curl -fsSL -o /opt/beam/jars/beam-runners-flink-job-server.jar \
      "https://repo1.maven.org/maven2/org/apache/beam/beam-runners-flink-${FLINK_MINOR}-job-server/${BEAM_VERSION}/beam-runners-flink-${FLINK_MINOR}-job-server-${BEAM_VERSION}.jar" \
 && curl -fsSL -o /opt/beam/jars/beam-sdks-java-io-google-cloud-platform-expansion-service.jar \
      "https://repo1.maven.org/maven2/org/apache/beam/beam-sdks-java-io-google-cloud-platform-expansion-service/${BEAM_VERSION}/beam-sdks-java-io-google-cloud-platform-expansion-service-${BEAM_VERSION}.jar"

FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS worker
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels edp && rm -rf /wheels
USER 9999:9999
# Liveness is the TaskManager pod's tcpSocket probe on the worker-pool port.
HEALTHCHECK NONE
ENTRYPOINT ["/opt/apache/beam/boot"]

FROM python:3.11.11-slim-bookworm AS job
COPY --from=jars /opt/java/openjdk /opt/java/openjdk
COPY --from=jars /opt/beam/jars /opt/beam/jars
COPY --from=wheels /wheels /wheels
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir --no-index --find-links=/wheels edp apache-beam \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 edp && useradd --system --uid 10001 --gid edp --no-create-home edp
COPY beam /app/beam
ENV PATH=/venv/bin:/opt/java/openjdk/bin:$PATH JAVA_HOME=/opt/java/openjdk PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /app
# A run-to-completion submitter: the Kubernetes Job's backoffLimit supervises it.
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "beam.stream_load"]
