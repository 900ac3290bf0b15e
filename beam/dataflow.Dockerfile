# syntax=docker/dockerfile:1.7
# The Dataflow image of the stream-load job: one image is both the SDK worker container
# (--sdk_container_image) and the Flex Template launcher (Dataflow's documented pattern of
# copying the launcher into the SDK image). Build from the repository root:
#   docker build -f beam/dataflow.Dockerfile -t $REGISTRY/beam-dataflow:$TAG .
# It stays on the base image's user (root): Dataflow's worker boot and the template launcher
# expect it, unlike the GKE images (gke/images/beam.Dockerfile), which run as non-root.

ARG BEAM_VERSION=2.77.0
# Google publishes the launcher base under moving tags only: pin it by digest when building
# (--build-arg LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base@sha256:...).
ARG LAUNCHER_IMAGE=gcr.io/dataflow-templates-base/python311-template-launcher-base:latest

FROM python:3.11.11-slim-bookworm AS wheels
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY functions ./functions
COPY beam ./beam
RUN pip wheel --wheel-dir /wheels ".[beam]"

FROM eclipse-temurin:17.0.13_11-jre-jammy AS jars
ARG BEAM_VERSION
# The Storage Write sink is expanded in Java at submission: the launcher starts this jar.
RUN mkdir -p /opt/beam/jars \
 && curl -fsSL -o /opt/beam/jars/beam-sdks-java-io-google-cloud-platform-expansion-service.jar \
      "https://repo1.maven.org/maven2/org/apache/beam/beam-sdks-java-io-google-cloud-platform-expansion-service/${BEAM_VERSION}/beam-sdks-java-io-google-cloud-platform-expansion-service-${BEAM_VERSION}.jar"

FROM ${LAUNCHER_IMAGE} AS launcher

FROM apache/beam_python3.11_sdk:${BEAM_VERSION}
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels "edp[beam]" && rm -rf /wheels
COPY --from=jars /opt/java/openjdk /opt/java/openjdk
COPY --from=jars /opt/beam/jars /opt/beam/jars
COPY --from=launcher /opt/google/dataflow/python_template_launcher /opt/google/dataflow/python_template_launcher
COPY beam/flex_template.py /template/flex_template.py
ENV PATH=/opt/java/openjdk/bin:$PATH JAVA_HOME=/opt/java/openjdk \
    FLEX_TEMPLATE_PYTHON_PY_FILE=/template/flex_template.py
HEALTHCHECK NONE
ENTRYPOINT ["/opt/apache/beam/boot"]
