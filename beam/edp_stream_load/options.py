"""Pipeline options of the stream-load job, and the runner flag sets we support.

Runners:

- **Dataflow** (``--runner=DataflowRunner``): the Python ``ReadFromPubSub`` is native there
  (Dataflow substitutes its own Pub/Sub source); Streaming Engine on. The BigQuery Storage Write
  sink is a Java transform in every runner: it is expanded at submission by the expansion
  service jar baked into the image (``--bigquery_expansion_service``), never fetched from Maven.
- **Flink on GKE** (``--runner=FlinkRunner --flink_master=...``, uber jar): Python SDK harness
  as a TaskManager sidecar (``--environment_type=EXTERNAL --environment_config=localhost:50000``).
  The Python ``ReadFromPubSub`` does **not** run on Flink (apache/beam#27443: it is only a
  placeholder that Dataflow and the Python direct runner replace), so on Flink the job reads
  through the cross-language Java Pub/Sub read, expanded by the baked jar
  (``--pubsub_expansion_service``). The Java transforms run in the TaskManager itself
  (``--java_environment=process:<boot>``: the Flink image carries Beam's Java SDK harness) -
  Beam's default Docker environment cannot start on GKE nodes. Pub/Sub acks ride on Flink
  checkpoints, so checkpointing must be on.
- **Local** (tests, ``edp`` never uses it for real traffic): ``BundleBasedDirectRunner`` for
  streaming and TestStream, ``FnApiRunner`` for batch. The runner is always pinned: the default
  ``DirectRunner`` of Beam 2.77 first tries to download the Prism runner binary.

The **replay horizon** is the allowed lateness: a Pub/Sub seek or snapshot replay redelivers
messages with their original publish times, far behind the watermark; the job loads them (once)
as long as they are younger than the horizon. It defaults to the events topic's retention
(``var.pubsub.message_retention``, 7 days): no replay can reach further back than that.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

LOCAL_STREAMING_RUNNER = "BundleBasedDirectRunner"
LOCAL_BATCH_RUNNER = "FnApiRunner"
FLINK_RUNNERS = frozenset({"FlinkRunner", "PortableRunner"})
# Runners that would try to fetch the Prism binary (no network here, and no timeout on it).
PRISM_RUNNERS = frozenset({"DirectRunner", "SwitchingDirectRunner", "PrismRunner"})
# The events topic keeps 7 days of messages (terraform var.pubsub.message_retention): a seek or
# snapshot replay cannot redeliver anything older, so nothing older can ever arrive.
REPLAY_HORIZON_S = 7 * 24 * 3600
JOB_NAME = "edp-stream-load"


class StreamLoadOptions(PipelineOptions):
    """Flags of the job (``python -m edp_stream_load --help`` lists them)."""

    @classmethod
    def _add_argparse_args(cls, parser):  # type: ignore[no-untyped-def]
        parser.add_argument(
            "--subscription",
            default=None,
            help="projects/<p>/subscriptions/<s> of the events topic (events-loader); required.",
        )
        parser.add_argument(
            "--sink",
            choices=("bigquery", "warehouse"),
            default="bigquery",
            help="bigquery: Storage Write API; warehouse: edp.warehouse port (local DuckDB).",
        )
        parser.add_argument("--output_table", default="raw.user_events", help="Logical raw table.")
        parser.add_argument(
            "--errors_table", default="raw.user_events_errors", help="Logical dead-letter table."
        )
        parser.add_argument(
            "--window_seconds", type=int, default=60, help="Fixed window size (publish time)."
        )
        parser.add_argument(
            "--allowed_lateness_seconds",
            type=int,
            default=REPLAY_HORIZON_S,
            help="Replay horizon: how far behind the watermark (by publish time) a message may "
            "be and still be loaded, exactly once. Default: the topic's 7-day retention.",
        )
        parser.add_argument(
            "--early_firing_seconds",
            type=int,
            default=5,
            help="Micro-batch cadence of the warehouse sink: early panes every N s.",
        )
        parser.add_argument(
            "--dedup_shards",
            type=int,
            default=64,
            help="Dedup state is keyed by hash(event_id) %% N, one id index per shard and window.",
        )
        parser.add_argument(
            "--pubsub_read",
            choices=("auto", "native", "xlang"),
            default="auto",
            help="auto: cross-language Java read on Flink/Portable runners, native elsewhere.",
        )
        parser.add_argument(
            "--pubsub_expansion_service",
            default=None,
            help="Expansion service of the cross-language Pub/Sub read: host:port or a jar.",
        )
        parser.add_argument(
            "--bigquery_expansion_service",
            default=None,
            help="Expansion service of the Storage Write sink: host:port or a jar (default: "
            "Beam downloads its GCP expansion-service jar from Maven at submission).",
        )
        parser.add_argument(
            "--java_environment",
            default=None,
            help="Where the Java transforms run, for jar expansion services: "
            "'process:<java boot command>' or 'external:<host:port>' (default: Beam's Docker).",
        )
        parser.add_argument(
            "--bq_exactly_once",
            action="store_true",
            default=False,
            help="Storage Write API exactly-once streams (auto-sharded) instead of "
            "at-least-once (see sinks.py).",
        )
        parser.add_argument(
            "--detach",
            action="store_true",
            default=False,
            help="Return once the job is submitted instead of waiting for it (submit Job).",
        )
        parser.add_argument(
            "--submit_once",
            action="store_true",
            default=False,
            help="Flink: exit 0 without submitting when a job of this --job_name is already "
            "running on --flink_master (a retried submit pod never starts a second copy).",
        )


def runner_name(options: PipelineOptions) -> str:
    """The runner's class name as given (None and the Prism-downloading runners refused)."""
    runner = options.view_as(StandardOptions).runner
    if runner is None:
        return LOCAL_STREAMING_RUNNER
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.rsplit(".", 1)[-1]


def pin_runner(options: PipelineOptions) -> PipelineOptions:
    """Make the runner explicit; refuse the ones that would download Prism.

    No ``--runner`` means the local streaming runner (``BundleBasedDirectRunner``).
    """
    name = runner_name(options)
    if name in PRISM_RUNNERS:
        raise ValueError(
            f"--runner={name} tries to download the Prism runner; use "
            f"{LOCAL_STREAMING_RUNNER} (streaming) or {LOCAL_BATCH_RUNNER} (batch)"
        )
    options.view_as(StandardOptions).runner = name
    return options


def use_xlang_pubsub(options: PipelineOptions) -> bool:
    """Whether the job must read Pub/Sub through the Java cross-language transform."""
    choice = options.view_as(StreamLoadOptions).pubsub_read
    if choice != "auto":
        return bool(choice == "xlang")
    return runner_name(options) in FLINK_RUNNERS


def java_environment_args(spec: str | None) -> list[str]:
    """Expansion-service flags that make its Java transforms run in ``spec``'s environment.

    ``process:<command>`` runs Beam's Java SDK harness as a child process of the Flink
    TaskManager (the image carries it); ``external:<host:port>`` uses a Java worker pool.

    Example:
        >>> java_environment_args("process:/opt/apache/beam/boot")
        ['--defaultEnvironmentType=PROCESS', '--defaultEnvironmentConfig={"command": "/opt/apache/beam/boot"}']
        >>> java_environment_args(None)
        []
    """  # noqa: E501 - a doctest output line
    if not spec:
        return []
    kind, _, config = spec.partition(":")
    if kind == "process" and config:
        return [
            "--defaultEnvironmentType=PROCESS",
            f"--defaultEnvironmentConfig={json.dumps({'command': config})}",
        ]
    if kind == "external" and config:
        return ["--defaultEnvironmentType=EXTERNAL", f"--defaultEnvironmentConfig={config}"]
    raise ValueError(f"--java_environment={spec!r}: expected process:<command> or external:<addr>")


def expansion_service(address_or_jar: str | None, java_environment: str | None) -> Any:
    """What a cross-language transform is given: None (Beam's default), a running service's
    address, or a local jar started with ``java -jar`` (and the Java environment flags)."""
    if not address_or_jar:
        return None
    if address_or_jar.endswith(".jar"):
        from apache_beam.transforms.external import JavaJarExpansionService

        return JavaJarExpansionService(
            address_or_jar, append_args=java_environment_args(java_environment)
        )
    return address_or_jar


def dataflow_argv(
    *, project: str, region: str, subscription: str, temp_location: str, image: str
) -> list[str]:
    """The flags of a Dataflow submission (Streaming Engine, our SDK image, baked jar).

    Example:
        >>> "--enable_streaming_engine" in dataflow_argv(project="p", region="r",
        ...     subscription="s", temp_location="gs://b/t", image="img")
        True
    """
    return [
        "--runner=DataflowRunner",
        f"--project={project}",
        f"--region={region}",
        f"--job_name={JOB_NAME}",
        f"--subscription={subscription}",
        f"--temp_location={temp_location}",
        f"--sdk_container_image={image}",
        "--streaming",
        "--enable_streaming_engine",
        "--sink=bigquery",
        "--bigquery_expansion_service=/opt/beam/jars/beam-sdks-java-io-google-cloud-platform-"
        "expansion-service.jar",
    ]


def parse(argv: Sequence[str] | None) -> PipelineOptions:
    """Options from argv (unknown flags pass through to the runner); runner pinned.

    Raises:
        ValueError: no ``--subscription``, or a runner that would download Prism.
    """
    options = PipelineOptions(list(argv) if argv is not None else None)
    ours = options.view_as(StreamLoadOptions)
    if not ours.subscription:
        raise ValueError("--subscription=projects/<p>/subscriptions/<s> is required")
    if ours.allowed_lateness_seconds < 0 or ours.window_seconds <= 0 or ours.dedup_shards <= 0:
        raise ValueError("window, lateness and dedup shards must be positive")
    java_environment_args(ours.java_environment)  # fail now on a malformed spec
    return pin_runner(options)
