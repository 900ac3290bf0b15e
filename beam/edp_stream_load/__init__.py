"""The stream-load Beam job: Pub/Sub ``events`` -> BigQuery ``raw.user_events``.

Read (subscription, with attributes, message id and publish time) -> ParseEvents (typed dead
letters as a TaggedOutput, Beam counters) -> fixed windows on publish time with allowed lateness
and early panes -> DedupByEventId (stateful, sharded by hash(event_id) % N, state cleared by a
timer at window end + lateness) -> Storage Write API (at-least-once: see ``sinks.py`` for why)
into raw.user_events; dead letters into raw.user_events_errors.

Local (tests only; the laptop's real loader is ``edp load run``), against the Pub/Sub emulator,
writing through the warehouse port (DuckDB)::

    PUBSUB_EMULATOR_HOST=127.0.0.1:8085 PYTHONPATH=beam .nox/beam/bin/python -m edp_stream_load \\
        --runner=BundleBasedDirectRunner --streaming --sink=warehouse \\
        --subscription=projects/edp-local/subscriptions/events-loader

Dataflow::

    python -m edp_stream_load --runner=DataflowRunner --project=$PROJECT \\
        --region=asia-northeast3 --streaming --enable_streaming_engine \\
        --temp_location=gs://$BUCKET/tmp --sdk_container_image=$IMAGE \\
        --subscription=projects/$PROJECT/subscriptions/events-loader

Flink on GKE (session FlinkDeployment; Python SDK worker pool sidecar on port 50000; Beam job
server and the Java expansion service jars baked into the image - the Python ReadFromPubSub does
not run on Flink, apache/beam#27443, so the job switches to the cross-language read)::

    python -m edp_stream_load --runner=PortableRunner --job_endpoint=flink-jobserver:8099 \\
        --environment_type=EXTERNAL --environment_config=localhost:50000 --streaming \\
        --checkpointing_interval=30000 --parallelism=2 \\
        --pubsub_read=xlang --pubsub_expansion_service=localhost:8097 \\
        --subscription=projects/$PROJECT/subscriptions/events-loader

The runner is always explicit (no flag = BundleBasedDirectRunner); ``DirectRunner`` and Prism are
refused because Beam 2.77 would try to download the Prism binary.
"""

from edp_stream_load.pipeline import build, run

__all__ = ["build", "run"]
