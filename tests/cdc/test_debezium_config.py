"""The production Debezium Server config agrees with the local reader and the flusher.

A drift here means the laptop and GKE produce different messages (or cdc_flush cannot decode
production's): topic names, slot, publication, type encodings, heartbeats, key shape, ordering.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edp.bus.topology import build_topology
from edp.cdc import debezium as dbz
from edp.cdc.topology import (
    HEARTBEAT_ACTION_QUERY,
    HEARTBEAT_TABLE,
    HEARTBEAT_TOPIC_PREFIX,
    SOURCE_SCHEMA,
    TRANSACTION_TOPIC_SUFFIX,
    extra_topics,
)
from edp.settings import Settings
from edp_tools.cdc import reader
from edp_tools.cdc.shop import publication_name

ROOT = Path(__file__).resolve().parents[2]
PROPERTIES = ROOT / "gke" / "base" / "debezium" / "application.properties"
DEPLOYMENT = ROOT / "gke" / "base" / "debezium" / "deployment.yaml"


def _properties() -> dict[str, str]:
    out: dict[str, str] = {}
    for raw in PROPERTIES.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        assert key not in out, f"{key} set twice"
        out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="module")
def props() -> dict[str, str]:
    return _properties()


@pytest.fixture
def settings() -> Settings:
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_source_matches_the_local_reader(props: dict[str, str], settings: Settings) -> None:
    config = reader.ReaderConfig(dsn="", project="p")
    assert props["debezium.source.connector.class"].endswith("PostgresConnector")
    assert props["debezium.source.plugin.name"] == reader.PLUGIN
    assert props["debezium.source.topic.prefix"] == settings.cdc_topic_prefix == config.topic_prefix
    assert props["debezium.source.slot.name"] == settings.cdc_slot_name == config.slot
    assert props["debezium.source.publication.name"] == publication_name() == config.publication
    assert props["debezium.source.publication.autocreate.mode"] == "disabled"
    assert props["debezium.source.snapshot.mode"] == "initial"
    # The reader emits truncates; Debezium skips them unless told otherwise.
    assert props["debezium.source.skipped.operations"] == "none"


def test_encodings_match_the_flusher(props: dict[str, str]) -> None:
    assert props["debezium.source.decimal.handling.mode"] == dbz.DECIMAL_HANDLING_MODE
    assert props["debezium.source.time.precision.mode"] == dbz.TIME_PRECISION_MODE
    assert props["debezium.source.binary.handling.mode"] == dbz.BINARY_HANDLING_MODE
    assert props["debezium.format.key"] == props["debezium.format.value"] == "json"
    # Key: bare JSON (it is the ordering key); value: envelope with its schema.
    assert props["debezium.format.key.schemas.enable"] == "false"
    assert props["debezium.format.value.schemas.enable"] == "true"


def test_heartbeats_and_transactions_match(props: dict[str, str], settings: Settings) -> None:
    config = reader.ReaderConfig(dsn="", project="p")
    interval_ms = int(props["debezium.source.heartbeat.interval.ms"])
    assert interval_ms == int(settings.cdc_heartbeat_interval_sec * 1000)
    assert interval_ms == int(config.heartbeat_interval_s * 1000)
    assert props["debezium.source.heartbeat.action.query"] == HEARTBEAT_ACTION_QUERY
    assert props["debezium.source.topic.heartbeat.prefix"] == HEARTBEAT_TOPIC_PREFIX
    assert (
        props["debezium.source.provide.transaction.metadata"]
        == str(config.provide_transaction_metadata).lower()
    )
    assert props["debezium.source.topic.transaction"] == TRANSACTION_TOPIC_SUFFIX


def test_pubsub_sink_orders_by_key(props: dict[str, str]) -> None:
    assert props["debezium.sink.type"] == "pubsub"
    assert props["debezium.sink.pubsub.ordering.enabled"] == "true"
    assert props["debezium.sink.pubsub.null.key"] == reader.NULL_KEY
    assert "debezium.sink.pubsub.ordering.key" not in props  # per-row keys, not one fixed key


def test_captured_tables_match_the_topology(props: dict[str, str], settings: Settings) -> None:
    included = props["debezium.source.table.include.list"].split(",")
    assert included == [*settings.cdc_tables, f"{SOURCE_SCHEMA}.{HEARTBEAT_TABLE}"]
    topics = {t.name for t in build_topology(settings).topics} | {
        t.name for t in extra_topics(settings)
    }
    for table in included:
        assert f"{props['debezium.source.topic.prefix']}.{table}" in topics
    assert f"{HEARTBEAT_TOPIC_PREFIX}.{settings.cdc_topic_prefix}" in topics
    assert f"{settings.cdc_topic_prefix}.{TRANSACTION_TOPIC_SUFFIX}" in topics
    publication = (ROOT / "schemas" / "cdc" / "publication.sql").read_text(encoding="utf-8")
    for table in included:
        assert table in publication


def test_image_version_matches_the_envelope_we_emit() -> None:
    match = re.search(r"quay\.io/debezium/server:(\S+)", DEPLOYMENT.read_text(encoding="utf-8"))
    assert match is not None
    assert match.group(1) == dbz.DEBEZIUM_VERSION
