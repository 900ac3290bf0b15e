"""Pipeline options of the stream-load job, and the runner flag sets we support.

Runners:

- **Dataflow** (``--runner=DataflowRunner``): the Python ``ReadFromPubSub`` is native there
  (Dataflow substitutes its own Pub/Sub source); Streaming Engine on.
- **Flink on GKE** (``--runner=PortableRunner`` against the session cluster's Beam job server,
  or ``--runner=FlinkRunner --flink_master=...``): Python SDK harness as a TaskManager sidecar
  (``apache/beam_python3.11_sdk --worker_pool``), hence ``--environment_type=EXTERNAL
  --environment_config=localhost:50000``. The Python ``ReadFromPubSub`` does **not** run on Flink
  (apache/beam#27443: it is only a placeholder that Dataflow and the Python direct runner
  replace), so on Flink the job reads through the cross-language Java Pub/Sub read
  (``apache_beam.io.external.gcp.pubsub.ReadFromPubSub``), expanded by a Java expansion service.
  The job-server and expansion-service jars must be baked into the image (``--expansion_service``
  points at the jar or a running service) because otherwise Beam fetches them from Maven at run
  time. Pub/Sub acks ride on Flink checkpoints, so checkpointing must be on.
- **Local** (tests, ``edp`` never uses it for real traffic): ``BundleBasedDirectRunner`` for
  streaming and TestStream, ``FnApiRunner`` for batch. The runner is always pinned: the default
  ``DirectRunner`` of Beam 2.77 first tries to download the Prism runner binary.
"""

from __future__ import annotations

from collections.abc import Sequence

from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

LOCAL_STREAMING_RUNNER = "BundleBasedDirectRunner"
LOCAL_BATCH_RUNNER = "FnApiRunner"
FLINK_RUNNERS = frozenset({"FlinkRunner", "PortableRunner"})
# Runners that would try to fetch the Prism binary (no network here, and no timeout on it).
PRISM_RUNNERS = frozenset({"DirectRunner", "SwitchingDirectRunner", "PrismRunner"})


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
            default=600,
            help="How late (behind the watermark) a message may be and still be loaded.",
        )
        parser.add_argument(
            "--early_firing_seconds",
            type=int,
            default=5,
            help="Micro-batch cadence: early panes every N s of processing time.",
        )
        parser.add_argument(
            "--dedup_shards",
            type=int,
            default=64,
            help="Dedup state is keyed by hash(event_id) %% N (see DESIGN.md).",
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
            help="Expansion service (host:port or jar) for the cross-language Pub/Sub read.",
        )
        parser.add_argument(
            "--bq_exactly_once",
            action="store_true",
            default=False,
            help="Storage Write API exactly-once streams instead of at-least-once (see README).",
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


def dataflow_argv(
    *, project: str, region: str, subscription: str, temp_location: str, image: str
) -> list[str]:
    """The flags of a Dataflow submission (Streaming Engine, our SDK image).

    Example:
        >>> "--enable_streaming_engine" in dataflow_argv(project="p", region="r",
        ...     subscription="s", temp_location="gs://b/t", image="img")
        True
    """
    return [
        "--runner=DataflowRunner",
        f"--project={project}",
        f"--region={region}",
        f"--subscription={subscription}",
        f"--temp_location={temp_location}",
        f"--sdk_container_image={image}",
        "--streaming",
        "--enable_streaming_engine",
        "--experiments=use_runner_v2",
        "--sink=bigquery",
    ]


def flink_argv(
    *,
    job_endpoint: str,
    subscription: str,
    expansion_service: str,
    worker_pool: str = "localhost:50000",
    parallelism: int = 2,
    checkpoint_ms: int = 30_000,
) -> list[str]:
    """The flags of a submission to the Flink session cluster on GKE (Beam job server).

    Example:
        >>> argv = flink_argv(job_endpoint="flink-jobserver:8099", subscription="s",
        ...     expansion_service="localhost:8097")
        >>> "--environment_type=EXTERNAL" in argv, "--pubsub_read=xlang" in argv
        (True, True)
    """
    return [
        "--runner=PortableRunner",
        f"--job_endpoint={job_endpoint}",
        "--environment_type=EXTERNAL",
        f"--environment_config={worker_pool}",
        f"--subscription={subscription}",
        "--streaming",
        f"--parallelism={parallelism}",
        f"--checkpointing_interval={checkpoint_ms}",
        "--pubsub_read=xlang",
        f"--pubsub_expansion_service={expansion_service}",
        "--sink=bigquery",
    ]


def parse(argv: Sequence[str] | None) -> PipelineOptions:
    """Options from argv (unknown flags pass through to the runner); runner pinned.

    Raises:
        ValueError: no ``--subscription``, or a runner that would download Prism.
    """
    options = PipelineOptions(list(argv) if argv is not None else None)
    if not options.view_as(StreamLoadOptions).subscription:
        raise ValueError("--subscription=projects/<p>/subscriptions/<s> is required")
    return pin_runner(options)
