"""The ingest core without HTTP: real contract validator, real publisher on the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from edp.ingest.contract import client_event_validator
from edp.ingest.core import IngestCore, IngestRequest, Limits, corrected_timestamp
from edp.ingest.publisher import PublishError, PubSubPublisher

from .conftest import Bus, event

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def publisher(bus: Bus) -> Iterator[PubSubPublisher]:
    p = PubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host, timeout_s=2.0)
    yield p
    p.close()


def make_core(bus: Bus, publisher: PubSubPublisher, **limits: int) -> IngestCore:
    return IngestCore(
        publisher,
        Limits(**limits),
        validator=client_event_validator(),
        events_topic=bus.events_topic,
        bad_events_topic=bus.bad_topic,
        clock=lambda: NOW,
    )


@pytest.mark.parametrize(
    ("received", "sent", "client", "expected"),
    [
        (NOW, NOW + timedelta(hours=1), NOW + timedelta(minutes=59), NOW - timedelta(minutes=1)),
        (NOW, NOW - timedelta(seconds=30), NOW - timedelta(seconds=40), NOW - timedelta(seconds=10)),  # noqa: E501
        (NOW, None, NOW - timedelta(days=2), NOW - timedelta(days=2)),
        (NOW, NOW, None, NOW),
        (NOW, None, None, NOW),
    ],
)  # fmt: skip
def test_corrected_timestamp(
    received: datetime, sent: datetime | None, client: datetime | None, expected: datetime
) -> None:
    assert corrected_timestamp(received, sent, client) == expected


def test_core_enriches_and_publishes_one_message(bus: Bus, publisher: PubSubPublisher) -> None:
    core = make_core(bus, publisher)
    outcome = core.ingest(
        IngestRequest(
            [
                event(client_timestamp="2026-11-26T12:59:58Z", sent_at="2026-11-26T13:00:00Z"),
                event(
                    event_type="view_item",
                    user_agent="Mozilla/5.0 (iPad; CPU OS 17_4) Safari/604.1",
                ),
            ],
            user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0",
        )
    )
    assert (outcome.accepted, outcome.refusals, outcome.messages_published) == (2, [], 1)
    assert outcome.counts == {
        ("page_view", "desktop", "accepted"): 1,
        ("view_item", "tablet", "accepted"): 1,
    }
    (message,) = bus.event_messages()
    assert message.attributes["event_type"] == "mixed"
    assert message.attributes["event_count"] == "2"
    first, second = bus_lines(message.data)
    assert first["event_timestamp"] == "2026-11-26T11:59:58Z"  # 2 s before receipt
    assert first["received_at"] == first["ingested_at"] == "2026-11-26T12:00:00Z"
    assert (first["device_type"], first["platform"]) == ("desktop", "web")
    assert (second["device_type"], second["platform"]) == ("tablet", "web")
    assert second["event_timestamp"] == "2026-11-26T10:00:00Z"  # no sent_at: client time


def bus_lines(data: bytes) -> list[dict[str, object]]:
    import orjson

    return [orjson.loads(line) for line in data.splitlines()]


def test_core_refusals_are_typed_and_audited(bus: Bus, publisher: PubSubPublisher) -> None:
    core = make_core(bus, publisher, max_event_bytes=1024)
    outcome = core.ingest(
        IngestRequest([event(params={"pad": "x" * 2000}), {"event_type": "nope"}, [], event()])
    )
    assert outcome.accepted == 1
    assert [(r.index, r.failure_type) for r in outcome.refusals] == [
        (0, "size_violation"),
        (1, "schema_violation"),
        (2, "schema_violation"),
    ]
    bad = bus.bad()
    assert sorted(b["index"] for b in bad) == [0, 1, 2]
    assert all(b["reason"] and b["source"] == "native" for b in bad)


def test_core_publish_failure_raises_and_acknowledges_nothing(bus: Bus) -> None:
    publisher = PubSubPublisher(bus.emulator.project, emulator_host=bus.emulator.host)
    core = IngestCore(
        publisher,
        Limits(),
        validator=client_event_validator(),
        events_topic="missing-topic",
        bad_events_topic=bus.bad_topic,
    )
    try:
        with pytest.raises(PublishError, match="missing-topic"):
            core.ingest(IngestRequest([event()]))
    finally:
        publisher.close()
