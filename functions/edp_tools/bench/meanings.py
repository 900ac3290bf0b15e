# ruff: noqa: E501 - one line per key reads best as a table
"""One line per benchmark key: what the figure measures (rendered into docs/benchmarks.md).

Keys are matched exactly, then by ``fnmatch`` pattern (``etl.model.*.seconds``). A key without a
line is shown as "(not explained)" so a new figure never goes unexplained unnoticed.
"""

from __future__ import annotations

from fnmatch import fnmatchcase

MEANINGS: dict[str, str] = {
    # traffic generator
    "generate.day_seconds": "Wall time to generate one 2.84 M-event day and write it to DuckDB.",
    "generate.day_events": "Events in the generated day.",
    "generate.events_per_s": "Generation + write throughput.",
    "generate.cpu_seconds": "CPU time of the generation (all threads).",
    "generate.rss_mib": "Peak resident memory of the generating process.",
    # ingest
    "ingest.single.p99_ms": "Client-side p99 latency, one event per request at the 1,180 RPS peak rate (open loop).",
    "ingest.single.p50_ms": "Client-side median latency, one event per request at the peak rate.",
    "ingest.single.rps": "Requests per second actually achieved in the single-event phase.",
    "ingest.single.errors": "Requests answered with an error or not answered in the single-event phase.",
    "ingest.single.lost": "Accepted events that never reached the events topic.",
    "ingest.single.bare_p99_ms": "p99 of a bare functions-framework endpoint (an async function, served as ingest is: uvicorn workers) at the same rate, same run.",
    "ingest.single.p99_ratio_to_bare": "ingest.single.p99_ms divided by ingest.single.bare_p99_ms (same run).",
    "ingest.single.bare_cpu_us_per_request": "CPU time of the bare endpoint's server per request, same requests and rate.",
    "ingest.single.floor_p99_ms": "p99 of the publish floor at the same rate, same run: a raw ASGI app on the same server that publishes each body with ingest's asyncio publisher, then answers (the least an ingest that acknowledges only published events can do).",
    "ingest.single.floor_cpu_us_per_request": "CPU time of the publish floor's server per request, same requests and rate.",
    "ingest.single.p99_ratio_to_floor": "ingest.single.p99_ms divided by ingest.single.floor_p99_ms (same run): the app's cost beyond the publish round trip.",
    "ingest.single.cpu_us_per_request": "CPU time of the server processes per single-event request.",
    "ingest.batch.events_per_s": "Accepted events per second with batched requests (closed loop).",
    "ingest.batch.rps": "Batched requests per second.",
    "ingest.batch.errors": "Failed batched requests.",
    "ingest.batch.bare_rps": "Requests per second of the bare endpoint with the same body.",
    "ingest.batch.ratio_to_bare": "Ingest batched request rate divided by the bare endpoint's.",
    "ingest.batch.cpu_us_per_event": "CPU time of the server processes per accepted event (batched).",
    "ingest.telemetry.overhead_ratio": "Ingest p99 with metrics and tracing on, divided by off (same run, requests interleaved).",
    "ingest.telemetry.cpu_ratio": "CPU per request of the telemetry-on app divided by the telemetry-off app's, same interleaved run.",
    "ingest.telemetry.cpu_aa_ratio": "A/A control of cpu_ratio: the second telemetry-off app's CPU per request divided by the first's.",
    "ingest.telemetry.aa_ratio": "A/A control: p99 of a second telemetry-off app divided by the first's (1.0: the estimator resolves any difference).",
    "ingest.*.steal_pct": "Share of the machine's CPU time the hypervisor gave to others during the phase (/proc/stat steal): while it grows, tail latencies are not the code's alone.",
    "ingest.telemetry.cpu_us_*": "CPU time of one arm's server per request over the interleaved run (on: metrics and tracing as deployed; off; control: a second telemetry-off server).",
    "ingest.telemetry.p99_*_ms": "Client-side p99 of one arm's requests in the interleaved run (on, off, control).",
    "ingest.telemetry.spans_exported": "Spans the telemetry-on app wrote to the loopback Cloud Trace stand-in over the interleaved run (its exporter as deployed; about 2 per sampled request).",
    # stream load
    "load.local.events_per_s": "Local loader drain rate, Pub/Sub emulator to DuckDB (batched messages).",
    "load.local.events_per_s_single": "Local loader drain rate with one event per message.",
    "load.freshness.p50_s": "Median time from publish to queryable in raw.user_events.",
    "load.freshness.p99_s": "p99 time from publish to queryable in raw.user_events.",
    "load.freshness.max_s": "Worst time from publish to queryable.",
    "load.freshness.events": "Events timed in the freshness phase.",
    # CDC
    "cdc.lag.p50_s": "Median commit-to-raw lag of CDC changes at a steady transaction rate.",
    "cdc.lag.p90_s": "p90 commit-to-raw lag.",
    "cdc.lag.p99_s": "p99 commit-to-raw lag.",
    "cdc.lag.max_s": "Worst commit-to-raw lag.",
    "cdc.lag.achieved_tps": "Source transactions per second actually achieved.",
    "cdc.burst.rss_mib": "Peak memory of the flusher draining a 200,000-change backlog.",
    "cdc.burst.changes_per_s": "Drain rate of the backlog.",
    "cdc.burst.seconds": "Time to drain the backlog.",
    "cdc.refresh.bytes_per_run_1d": "Bytes one staging refresh reads with 1 day of change history.",
    "cdc.refresh.bytes_per_run_30d": "Bytes one staging refresh reads with 30 days of change history.",
    # daily ETL
    "etl.day.seconds": "Wall time of the daily run (staging and every mart) over a 2.84 M-event day.",
    "etl.day.cpu_seconds": "CPU time of that run (all threads).",
    "etl.day.rss_mib": "Peak resident memory of the ETL process.",
    "etl.day.engine_ratio": "Run time divided by the same SQL run straight in DuckDB (no runner).",
    "etl.day.engine_seconds": "The same statements run straight in DuckDB.",
    "etl.day.engine_cpu_seconds": "CPU time of the engine-only run (all threads).",
    "etl.day.engine_rss_mib": "Peak resident memory of the engine-only run.",
    "etl.day.speedup_vs_seed": "504 s (the reference batch on BigQuery) divided by our run time.",
    "etl.day.events": "Events in the day.",
    "etl.day.staging_rows": "Rows in staging.user_events after the run.",
    "etl.model.*.seconds": "Wall time of one model in the daily run.",
    # demo
    "demo.seconds": "Wall time of `edp demo` at the default size, end to end.",
    "demo.events_sent": "Events the demo replayed over HTTP.",
    "demo.freshness_p99_ms": "p99 publish-to-raw freshness during the demo's replay.",
    "demo.cdc_lag_p99_ms": "p99 CDC commit-to-raw lag during the demo.",
    "demo.ingest_p99_ms": "p99 of the demo replay's ingest requests, measured by the client.",
    "demo.replay_speedup": "Compression the demo's replay really had (24 h / its wall seconds; "
    "nominal 1,440x, lower when backpressure slowed its clock).",
    # warehouse, bus, local stack
    "warehouse.load_arrow.rows_per_s": (
        "Arrow rows per second appended to a DuckDB file, in calls of the bulk loader's size (LOAD_CHUNK_ROWS)."
    ),
    "warehouse.load_arrow.rows_per_s_200k": (
        "The same rows appended 200 k per call (DuckDB merges sub-row-group remainders alone)."
    ),
    "warehouse.load_arrow.engine_rows_per_s": (
        "The same bulk-size calls appended straight in DuckDB (no adapter), same run."
    ),
    "warehouse.load_arrow.engine_ratio": (
        "Adapter load time / straight-DuckDB load time (1.0: the adapter adds nothing)."
    ),
    "warehouse.insert_rows.rows_per_s": "Python dict rows per second through insert_rows.",
    "warehouse.transpile_cached_us": "BigQuery -> DuckDB transpile of a cached statement.",
    "warehouse.cpu_seconds": "CPU time of the warehouse benchmark.",
    "bus.publish.msgs_per_s": "Messages per second published to the Pub/Sub emulator.",
    "bus.pull.msgs_per_s": "Messages per second pulled from the emulator.",
    "local.emulator_start_s": "Time to start the Pub/Sub emulator.",
    "local.postgres_start_s": "Time to initdb and start the throwaway PostgreSQL.",
    # Beam stream load
    "beam.dedup.events_per_s_1k": "Events/s through the linear dedup on FnApiRunner, 1 k ids per shard-window.",
    "beam.dedup.events_per_s_10k": "Events/s through the linear dedup on FnApiRunner, 10 k ids per shard-window.",
    "beam.dedup.speedup_10k": "Linear dedup throughput divided by the previous SetState dedup's, 10 k ids.",
    "beam.dedup.baseline_events_per_s_1k": "Events/s through the replaced dedup (one SetState of seen ids per shard-window), 1 k ids.",
    "beam.dedup.baseline_events_per_s_10k": "Events/s through the replaced SetState dedup, 10 k ids per shard-window (speedup_10k's divisor).",
    "beam.dedup.per_event_id_events_per_s_1k": "Events/s with state keyed per event_id (Beam's DeduplicatePerKey design), 1 k ids: why it was not chosen.",
    # CDC staging refresh cost
    "cdc.refresh.ratio_30d_1d": "Bytes a staging refresh reads with 30 days of change history over 1 day's.",
    "cdc.refresh.*": "Bytes a CDC staging refresh reads (warehouse byte estimate).",
    # quality agent
    "quality.backtest.precision": "Share of the agent's alerts that match an injected incident (backtest).",
    "quality.backtest.recall": "Share of injected incidents the agent alerted on (backtest).",
    "quality.backtest.false_alerts_per_week": "Alerts per week on 28 clean days with weekly seasonality.",
    "quality.backtest.mttd_minutes": "Median minutes from an incident's start to its first alert.",
    "quality.backtest.seed_rule.precision": "Precision of the seed's rule (14-day mean, abs(z) > 2) on the same backtest, default magnitudes.",
    "quality.backtest.seed_rule.recall": "Recall of the seed's rule (14-day mean, abs(z) > 2) on the same backtest, default magnitudes.",
    "quality.backtest.seed_rule.false_alerts_per_week": "Alerts per week of the seed's rule on the same 28 clean days.",
    "quality.backtest.seed_rule.mttd_minutes": "Median minutes to the seed's rule's first alert, default magnitudes.",
    "quality.backtest.all_magnitudes.precision": "Share of the agent's alerts that match an injected incident, every magnitude (subtle, default, large).",
    "quality.backtest.all_magnitudes.recall": "Share of injected incidents alerted on, every magnitude (subtle, default, large).",
    "quality.backtest.recall.*": "Share of the injected incidents of this magnitude (subtle, default, large) the agent alerted on.",
    "quality.backtest.seconds": "Wall time of the whole backtest (warm-up, clean and incident days, every check).",
    "quality.run.seconds": "One agent run over every table with a 2.84 M-event day in raw.",
    "quality.run.events": "Events in raw.user_events during that run.",
    # SQL reviewer
    "sql_review.seconds.p50": "Median review time per SQL model of this repository.",
    "sql_review.partition_fix.bytes_ratio": "Bytes saved by the partition-filter fix on raw.user_events (share).",
    "sql_review.savings.bytes_ratio": "Bytes saved over the seeded set of costly queries (share).",
    "sql_review.seconds.p95": "p95 over the repository's SQL models of one model's review time.",
    "sql_review.seconds.max": "Slowest model's review time (median of its 5 runs).",
    "sql_review.cpu_seconds.p50": "Median review CPU time per model (tells a loaded machine from a slow reviewer).",
    "sql_review.models": "SQL models of this repository reviewed (ETL and CDC staging).",
    "sql_review.savings.bytes_before": "Bytes the seeded costly queries bill as written, over a 14-day raw.user_events.",
    "sql_review.savings.bytes_after": "Bytes the same queries bill with each one's best fix applied.",
    "sql_review.savings.usd_per_day": "What those fixes save per day at each query's runs per day, on-demand $6.25/TiB.",
    # reliability
    "reliability.slowloris.healthz_p99_ms": "/healthz p99 with 200 stalled uploads open.",
    "reliability.soak.lost": "Acknowledged events missing from raw after a 10-minute 10x-peak soak.",
    "reliability.soak.rss_growth_mib": "Worker RSS growth over the soak, after warm-up.",
    "reliability.chaos.lost": "Chaos demo (`edp demo --chaos --size small`): accepted events missing from raw + CDC keys whose staging row is missing, extra or different from PostgreSQL, after killing the loader, flusher, CDC reader and Pub/Sub emulator and restarting PostgreSQL mid-replay.",
    "reliability.chaos.lost_events": "Chaos demo: accepted (200) events whose event_id is not in raw.user_events.",
    "reliability.chaos.lost_cdc": "Chaos demo: CDC staging rows missing, extra or different from the PostgreSQL source.",
    "reliability.chaos.duplicates_in_staging": "Chaos demo: repeated event_ids in staging.user_events + repeated primary keys in the CDC staging tables.",
    "reliability.chaos.unanswered": "Chaos demo: events whose request never got a final answer after every client retry.",
    "reliability.chaos.supervisor_restarts": "Chaos demo: processes that exited on their own (e.g. when the bus or database went away) and were restarted.",
    "reliability.chaos.recovery_s.*": "Chaos demo: seconds from injecting this fault until data created after it (or after the service came back) got through the path it broke.",
    "reliability.chaos.not_recovered": "Chaos demo: faults whose data path carried nothing new within 90 s.",
    "reliability.chaos.seconds": "Wall time of the whole chaos demo run (small size, 180 s replay).",
    "reliability.slowloris.stalled_open": "Stalled uploads held open while probing (complete headers, 100 of 65,536 body bytes).",
    "reliability.slowloris.reopened": "Stalled uploads the server closed and the attacker re-opened (once a second) while probing.",
    "reliability.slowloris.healthz_p50_ms": "/healthz median with 200 stalled uploads open.",
    "reliability.slowloris.post_p99_ms": "p99 of valid POST /v1/events with 200 stalled uploads open.",
    "reliability.slowloris.post_accepted_ratio": "Share of those valid POSTs answered 200.",
    "reliability.slowloris.post_5xx_other_than_busy": "Valid POSTs answered a 5xx other than 503 busy (a crash, not back-pressure).",
    "reliability.slowloris.flood_*": "As the reliability.slowloris figure of the same name, with closed uploads re-opened at once (a connection flood, not a slow-client attack).",
    "reliability.soak.duplicates_in_raw": "event_ids stored more than once in raw.user_events after the soak.",
    "reliability.soak.events_acknowledged": "Events of requests answered 200 over the soak.",
    "reliability.soak.requests_not_acknowledged": "Soak requests answered 503 or timed out (the client resends them).",
    "reliability.soak.worker_rss_end_mib": "Largest ingest worker's resident memory at the end of the soak.",
    "reliability.soak.loader_rss_growth_mib": "Local loader's RSS growth over the soak (DuckDB's buffer pool up to duckdb_memory_limit, and the dedup window).",
    "reliability.soak.seconds": "Length of the soak's load phase.",
    "reliability.soak.drain_after_end_s": "Seconds the loader needed after the load stopped to write the backlog.",
}


def meaning(key: str) -> str | None:
    """The line for ``key``.

    Example:
        >>> meaning("etl.model.mart.dau.seconds")
        'Wall time of one model in the daily run.'
        >>> meaning("no.such.key") is None
        True
    """
    if key in MEANINGS:
        return MEANINGS[key]
    for pattern, text in MEANINGS.items():
        if "*" in pattern and fnmatchcase(key, pattern):
            return text
    return None
