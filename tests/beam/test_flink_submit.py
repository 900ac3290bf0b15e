"""The Flink submit path: the manifest's exact command line through the job's own parser, the
expansion services it names, and submit-once against a local stand-in of Flink's REST API."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import apache_beam as beam
import pytest
import yaml
from apache_beam.io.external.gcp.pubsub import ReadFromPubSub as XlangRead
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PortableOptions,
    StandardOptions,
)
from apache_beam.transforms.external import JavaJarExpansionService
from edp_stream_load.options import StreamLoadOptions, parse, use_xlang_pubsub
from edp_stream_load.pipeline import read_events, run
from expansion_standin import expansion_standin

REPO = Path(__file__).resolve().parents[2]
SUBMIT_JOB = REPO / "gke" / "base" / "flink" / "submit-job.yaml"
DOCKERFILE = (REPO / "gke" / "images" / "beam.Dockerfile").read_text(encoding="utf-8")
GCP_JAR = "/opt/beam/jars/beam-sdks-java-io-google-cloud-platform-expansion-service.jar"


def _manifest_args() -> list[str]:
    job = yaml.safe_load(SUBMIT_JOB.read_text(encoding="utf-8"))
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "command" not in container  # the image's ENTRYPOINT: python -m edp_stream_load
    return [str(a) for a in container["args"]]


def test_the_manifest_command_line_parses_with_the_jobs_own_parser() -> None:
    options = parse(_manifest_args())
    ours = options.view_as(StreamLoadOptions)
    flink = options.view_as(FlinkRunnerOptions)
    portable = options.view_as(PortableOptions)
    assert options.view_as(StandardOptions).runner == "FlinkRunner"
    assert options.view_as(StandardOptions).streaming
    assert flink.flink_master == "edp-stream-load-rest:8081"
    assert flink.flink_submit_uber_jar  # artifacts travel in the jar, not via the pod's /tmp
    assert flink.parallelism == 2
    assert portable.environment_type == "EXTERNAL"
    assert portable.environment_config == "localhost:50000"
    assert options.view_as(GoogleCloudOptions).job_name == "edp-stream-load"
    assert ours.submit_once and ours.detach
    assert ours.subscription == "projects/PROJECT_ID/subscriptions/events-loader"
    assert ours.sink == "bigquery"
    # Not a Python option: passed on to Flink's pipeline options as is.
    unknown = options.get_all_options(retain_unknown_options=True)
    assert str(unknown["checkpointing_interval"]) == "30000"
    assert use_xlang_pubsub(options)


def test_the_jars_and_the_java_harness_it_names_are_baked_into_the_images() -> None:
    options = parse(_manifest_args())
    ours = options.view_as(StreamLoadOptions)
    job_server = options.view_as(FlinkRunnerOptions).flink_job_server_jar
    for jar in (job_server, ours.pubsub_expansion_service, ours.bigquery_expansion_service):
        assert f"-o {jar} " in DOCKERFILE.replace("\\\n", " "), jar
    # PROCESS environment command = the Java SDK harness copied into the Flink image.
    assert ours.java_environment == "process:/opt/apache/beam/boot"
    assert "COPY --from=javasdk /opt/apache/beam /opt/apache/beam" in DOCKERFILE


def test_the_pubsub_read_uses_the_baked_jar_with_the_process_environment() -> None:
    read = read_events(parse(_manifest_args()))
    assert isinstance(read, XlangRead)
    service = read.expansion_service
    assert isinstance(service, JavaJarExpansionService)
    assert service.path_to_jar == GCP_JAR
    assert service._append_args == [
        "--defaultEnvironmentType=PROCESS",
        '--defaultEnvironmentConfig={"command": "/opt/apache/beam/boot"}',
    ]
    assert read.params.with_attributes
    assert read.params.subscription == "projects/PROJECT_ID/subscriptions/events-loader"


def test_the_xlang_read_reaches_the_expansion_service_it_is_given() -> None:
    # The manifest's flags with the jar swapped for a stand-in at the same point: Beam sends
    # the Pub/Sub read there (not to localhost:8097, not to Maven).
    with expansion_standin() as (address, standin):
        args = [
            a.replace(GCP_JAR, address) if a.startswith("--pubsub_expansion_service") else a
            for a in _manifest_args()
        ]
        args = [a.replace("PROJECT_ID", "edp-proj") for a in args]
        options = parse(args)
        with pytest.raises(RuntimeError, match="expansion stand-in"):
            beam.Pipeline(options=options) | read_events(options)
    (request,) = standin.expand_requests
    assert request.transform.spec.urn == "beam:transform:org.apache.beam:pubsub_read:v1"
    assert b"projects/edp-proj/subscriptions/events-loader" in request.transform.spec.payload


class _FlinkRest(BaseHTTPRequestHandler):
    jobs: ClassVar[list[dict[str, Any]]] = []
    paths: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        body = json.dumps({"jobs": type(self).jobs}).encode()
        self.send_response(200 if self.path == "/jobs/overview" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flink_rest() -> Iterator[tuple[str, type[_FlinkRest]]]:
    handler = type("Rest", (_FlinkRest,), {"jobs": [], "paths": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _with_master(master: str) -> list[str]:
    return [
        f"--flink_master={master}" if a.startswith("--flink_master=") else a
        for a in _manifest_args()
    ]


@pytest.mark.parametrize("state", ["RUNNING", "RESTARTING", "SUSPENDED", "CREATED"])
def test_a_retried_submit_pod_does_not_start_a_second_copy(
    flink_rest: tuple[str, type[_FlinkRest]], state: str
) -> None:
    # Shape of GET /jobs/overview from Flink's REST API docs (JobIdsWithStatusOverview).
    master, rest = flink_rest
    rest.jobs = [
        {"jid": "0f3c", "name": "edp-stream-load", "state": "FAILED"},
        {"jid": "9a1b", "name": "edp-stream-load", "state": state},
    ]
    assert run(_with_master(master)) is None  # returned before building or submitting
    assert rest.paths == ["/jobs/overview"]


def test_submit_goes_ahead_only_past_a_terminal_copy(
    flink_rest: tuple[str, type[_FlinkRest]],
) -> None:
    from edp_stream_load.flink import already_running

    master, rest = flink_rest
    rest.jobs = [
        {"jid": "1", "name": "edp-stream-load", "state": "CANCELED"},
        {"jid": "2", "name": "another-job", "state": "RUNNING"},
    ]
    assert already_running(parse(_with_master(master))) is None


def test_an_unreachable_flink_fails_the_submit_instead_of_submitting_blind() -> None:
    from edp_stream_load.flink import already_running

    with pytest.raises(OSError):
        already_running(parse(_with_master("127.0.0.1:9")))
