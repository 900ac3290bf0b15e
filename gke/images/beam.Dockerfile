# syntax=docker/dockerfile:1.7
# Beam stream-load images for Flink on GKE. Targets from one file (build from the repo root):
#   worker: the Beam Python SDK worker pool (TaskManager sidecar) with the job installed - the
#           edp wheel carries edp_stream_load, whose DoFns Beam pickles by reference;
#   flink:  the Flink JobManager/TaskManager image plus Beam's Java SDK harness, so the Java
#           transforms (Pub/Sub read, Storage Write) run as a PROCESS environment inside the
#           TaskManager (Beam's default Docker environment cannot start on GKE nodes);
#   job:    the submitter (Kubernetes Job): the job, a JRE and the baked jars (Flink job server
#           for the uber jar, GCP expansion service), which Beam would otherwise fetch from Maven.
#   docker build -f gke/images/beam.Dockerfile --target worker -t $REGISTRY/beam-worker:$TAG .
#   docker build -f gke/images/beam.Dockerfile --target flink  -t $REGISTRY/beam-flink:$TAG .
#   docker build -f gke/images/beam.Dockerfile --target job    -t $REGISTRY/beam-job:$TAG .
# The Dataflow image (SDK container + Flex Template launcher) is beam/dataflow.Dockerfile.

ARG BEAM_VERSION=2.77.0

FROM python:3.11.11-slim-bookworm AS wheels
ARG BEAM_VERSION
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY functions ./functions
COPY beam ./beam
# The edp wheel (edp + edp_stream_load) and every wheel `edp[beam]` needs, for offline installs.
RUN pip wheel --wheel-dir /wheels ".[beam]"

FROM eclipse-temurin:17.0.13_11-jre-jammy AS jars
ARG BEAM_VERSION
RUN mkdir -p /opt/beam/jars \
 && curl -fsSL -o /opt/beam/jars/beam-runners-flink-job-server.jar \
      "https://repo1.maven.org/maven2/org/apache/beam/beam-runners-flink-1.19-job-server/${BEAM_VERSION}/beam-runners-flink-1.19-job-server-${BEAM_VERSION}.jar" \
 && curl -fsSL -o /opt/beam/jars/beam-sdks-java-io-google-cloud-platform-expansion-service.jar \
      "https://repo1.maven.org/maven2/org/apache/beam/beam-sdks-java-io-google-cloud-platform-expansion-service/${BEAM_VERSION}/beam-sdks-java-io-google-cloud-platform-expansion-service-${BEAM_VERSION}.jar"

FROM apache/beam_java17_sdk:${BEAM_VERSION} AS javasdk

FROM flink:1.19.2-java17 AS flink
# Beam's Java SDK harness (boot + jars) for --defaultEnvironmentType=PROCESS, command
# /opt/apache/beam/boot: the TaskManager starts it as a child process.
COPY --from=javasdk /opt/apache/beam /opt/apache/beam
USER flink
HEALTHCHECK NONE

FROM apache/beam_python3.11_sdk:${BEAM_VERSION} AS worker
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "edp[beam]" && rm -rf /wheels
USER 9999:9999
# Liveness is the TaskManager pod's tcpSocket probe on the worker-pool port.
HEALTHCHECK NONE
ENTRYPOINT ["/opt/apache/beam/boot"]

FROM python:3.11.11-slim-bookworm AS job
COPY --from=jars /opt/java/openjdk /opt/java/openjdk
COPY --from=jars /opt/beam/jars /opt/beam/jars
COPY --from=wheels /wheels /wheels
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir --no-index --find-links=/wheels "edp[beam]" \
 && rm -rf /wheels \
 && groupadd --system --gid 10001 edp && useradd --system --uid 10001 --gid edp --no-create-home edp
ENV PATH=/venv/bin:/opt/java/openjdk/bin:$PATH JAVA_HOME=/opt/java/openjdk PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /tmp
# A run-to-completion submitter: it submits (detached) and exits; the Kubernetes Job supervises.
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "edp_stream_load"]
