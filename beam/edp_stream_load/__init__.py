"""The stream-load Beam job: Pub/Sub ``events`` -> BigQuery ``raw.user_events``.

Read (subscription, with attributes, message id and publish time) -> ParseEvents (typed dead
letters as a TaggedOutput, Beam counters) -> fixed windows on publish time, allowed lateness =
the replay horizon -> DedupByEventId (rows batched per shard and window, a chunked id state and
an in-memory index per shard, cleared at window end + lateness) -> Storage Write API into
raw.user_events; dead letters and the rows BigQuery refused into raw.user_events_errors.

The package ships in the ``edp`` wheel (``pip install "edp[beam]"``): Beam pickles the DoFns by
reference, so workers import them from there.

Local (tests only; the laptop's real loader is ``edp load run``), against the Pub/Sub emulator,
writing through the warehouse port (DuckDB)::

    PUBSUB_EMULATOR_HOST=127.0.0.1:8085 .nox/beam/bin/python -m edp_stream_load \\
        --runner=BundleBasedDirectRunner --streaming --sink=warehouse \\
        --subscription=projects/edp-local/subscriptions/events-loader

Dataflow (normally a Flex Template launched by terraform/10-dataflow.tf; by hand, from the
beam-dataflow image, which bakes the expansion-service jar)::

    python -m edp_stream_load --runner=DataflowRunner --project=$PROJECT \\
        --region=asia-northeast3 --streaming --enable_streaming_engine \\
        --temp_location=gs://$BUCKET/tmp --sdk_container_image=$IMAGE \\
        --subscription=projects/$PROJECT/subscriptions/events-loader \\
        --bigquery_expansion_service=/opt/beam/jars/beam-sdks-java-io-google-cloud-platform-expansion-service.jar

Flink on GKE: the exact command line is the submit Job's args (gke/base/flink/submit-job.yaml):
FlinkRunner with an uber jar, the Python worker-pool sidecar (EXTERNAL, localhost:50000), the
cross-language Pub/Sub read and the Storage Write sink expanded by the baked jar, their Java
code run as a PROCESS environment in the TaskManagers, submitted once and detached.

The runner is always explicit (no flag = BundleBasedDirectRunner); ``DirectRunner`` and Prism are
refused because Beam 2.77 would try to download the Prism binary.
"""

from edp_stream_load.pipeline import build, run

__all__ = ["build", "run"]
