"""The pure stream-load transforms: table-driven cases, NULL / empty / invalid inputs."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest

from edp.contracts.catalog import load_catalog
from edp.contracts.events import DEVICE_TYPES
from edp.load import dedup, values
from edp.load import transforms as t
from edp.load.samples import enriched_event, make_traffic

REPO = Path(__file__).resolve().parents[2]
PUBLISH_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


@pytest.fixture(scope="module")
def mapper() -> t.RawRowMapper:
    return t.RawRowMapper.for_table(load_catalog().table(t.RAW_TABLE))


def _event(**changes: Any) -> dict[str, Any]:
    import random

    event = enriched_event(random.Random(1), "0b7c5c8e-9a63-4c1e-8d7e-0f6f3f7c2a11")
    for key, value in changes.items():
        if value is _DROP:
            event.pop(key, None)
        else:
            event[key] = value
    return event


_DROP = object()


def _message(*lines: bytes | dict[str, Any], message_id: str = "m-1") -> t.PubsubEnvelope:
    body = b"\n".join(line if isinstance(line, bytes) else orjson.dumps(line) for line in lines)
    return t.PubsubEnvelope(body, message_id, PUBLISH_US, {"event_count": str(len(lines))})


def test_row_has_exactly_the_raw_columns_and_loader_fields(mapper: t.RawRowMapper) -> None:
    batch = t.process_message(_message(_event()), mapper, loaded_at_us=PUBLISH_US + 5)

    assert batch.dead_letters == []
    (row,) = batch.rows
    assert tuple(row) == load_catalog().table(t.RAW_TABLE).column_names
    assert row["pubsub_message_id"] == "m-1"
    assert row["pubsub_publish_time"] == PUBLISH_US
    assert row["loaded_at"] == PUBLISH_US + 5
    assert isinstance(row["event_timestamp"], int)
    assert json.loads(row["params"]) == _event()["params"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-01-01T09:00:00+09:00", PUBLISH_US),
        ("2026-01-01T00:00:00Z", PUBLISH_US),
        ("2026-01-01T00:00:00.123456Z", PUBLISH_US + 123_456),
        ("2026-01-01 00:00:00", PUBLISH_US),  # naive -> UTC
        (1_767_225_600, PUBLISH_US),  # epoch seconds
        (1_767_225_600_250, PUBLISH_US + 250_000),  # epoch millis
        (PUBLISH_US, PUBLISH_US),  # epoch micros
        (datetime(2026, 1, 1, tzinfo=UTC), PUBLISH_US),
    ],
)
def test_timestamps_become_utc_micros(value: Any, expected: int) -> None:
    assert values.to_utc_micros(value) == expected


@pytest.mark.parametrize(
    "value", ["yesterday", "", True, None, float("nan"), [], "10000-01-01T00:00:00Z", 10**20]
)
def test_bad_timestamps_are_refused(value: Any) -> None:
    with pytest.raises((ValueError, TypeError)):
        values.to_utc_micros(value)


def test_timestamp_round_trip() -> None:
    assert values.micros_to_datetime(
        values.to_utc_micros("2026-03-04T05:06:07.000008Z")
    ) == datetime(2026, 3, 4, 5, 6, 7, 8, tzinfo=UTC)


@pytest.mark.parametrize(
    ("sent", "canonical"),
    [("mobile", "mobile"), ("iOS", "mobile"), ("Android", "mobile"), ("iPad", "tablet"),
     ("Desktop", "desktop"), ("web", "desktop"), ("crawler", "bot"), ("", "unknown"),
     (None, "unknown"), (42, "unknown"), ("toaster", "unknown")],
)  # fmt: skip
def test_device_type_is_canonical(sent: Any, canonical: str) -> None:
    assert values.normalise_device_type(sent) == canonical


def test_device_aliases_only_produce_contract_values() -> None:
    assert set(values._DEVICE_ALIASES.values()) <= set(DEVICE_TYPES)
    assert set(DEVICE_TYPES) <= set(values._DEVICE_ALIASES.values())


def test_device_type_spelling_is_normalised_before_validation(mapper: t.RawRowMapper) -> None:
    batch = t.process_message(_message(_event(device_type="iPhone")), mapper)
    assert [r["device_type"] for r in batch.rows] == ["mobile"]


@pytest.mark.parametrize(
    ("line", "error_type", "reason_mentions"),
    [
        (b"{not json", "parse_error", "invalid JSON"),
        (b"[1, 2]", "parse_error", "JSON object"),
        (b'"just a string"', "parse_error", "JSON object"),
        (orjson.dumps(_event(event_type="teleport")), "schema_violation", "event_type"),
        (orjson.dumps(_event(event_timestamp="soon")), "schema_violation", "event_timestamp"),
        (orjson.dumps(_event(event_timestamp=_DROP)), "schema_violation", "event_timestamp"),
        (orjson.dumps(_event(event_id=_DROP)), "schema_violation", "event_id"),
        (orjson.dumps(_event(items=[{"price": 3}])), "schema_violation", "item_id"),
        (orjson.dumps(_event(value="lots")), "schema_violation", "value"),
        (orjson.dumps(_event(surprise=1)), "schema_violation", "surprise"),
        (b"{" + b'"a":"' + b"x" * t.MAX_LINE_BYTES + b'"}', "size_violation", "bytes"),
    ],
)
def test_bad_lines_become_typed_dead_letters(
    mapper: t.RawRowMapper, line: bytes, error_type: str, reason_mentions: str
) -> None:
    good = _event()
    batch = t.process_message(_message(good, line), mapper)

    assert [r["event_id"] for r in batch.rows] == [good["event_id"]]  # the good line survives
    (dead,) = batch.dead_letters
    assert dead.error_type == error_type
    assert reason_mentions in dead.reason
    assert dead.message_id == "m-1"
    assert dead.line == 1
    assert dead.error_id == "m-1:1"
    assert dead.payload == line.decode("utf-8", errors="replace")


def test_dead_letter_keeps_event_id_and_ingested_at_when_readable(mapper: t.RawRowMapper) -> None:
    bad = _event(event_type="teleport")
    (dead,) = t.process_message(_message(bad), mapper).dead_letters
    assert dead.event_id == bad["event_id"]
    assert dead.ingested_at_us == values.to_utc_micros(bad["ingested_at"])
    assert dead.stage == "validate"


def test_empty_and_blank_messages_produce_nothing(mapper: t.RawRowMapper) -> None:
    for body in (b"", b"\n\n", b"   \r\n"):
        batch = t.process_message(t.PubsubEnvelope(body, "m", PUBLISH_US), mapper)
        assert len(batch) == 0


def test_split_lines_keeps_line_numbers_of_the_original_body() -> None:
    assert list(t.split_lines(b"a\n\n b \r\nc")) == [(0, b"a"), (2, b"b"), (3, b"c")]


def test_arrow_batch_has_the_table_schema(mapper: t.RawRowMapper) -> None:
    traffic = make_traffic(50, seed=3, events_per_message=(5, 5))
    envelopes = [t.PubsubEnvelope(m, f"m{i}", PUBLISH_US) for i, m in enumerate(traffic.messages)]
    batch = t.process_messages(envelopes, mapper)
    table = mapper.to_arrow(batch.rows)

    assert table.num_rows == 50
    assert table.schema == t.arrow_schema(load_catalog().table(t.RAW_TABLE))
    assert table.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert set(table.column("event_id").to_pylist()) == traffic.valid_ids


def test_empty_arrow_batch(mapper: t.RawRowMapper) -> None:
    assert mapper.to_arrow([]).num_rows == 0


def test_dead_letters_to_arrow_fill_the_errors_table(mapper: t.RawRowMapper) -> None:
    errors = load_catalog().table(t.ERRORS_TABLE)
    batch = t.process_message(_message(b"{oops", _event(event_type="x")), mapper)
    table = t.dead_letters_to_arrow(batch.dead_letters, errors, failed_at_us=PUBLISH_US)

    rows = table.to_pylist()
    assert [r["error_type"] for r in rows] == ["parse_error", "schema_violation"]
    assert [r["stage"] for r in rows] == ["parse", "validate"]
    assert all(r["reason"] and r["payload"] and r["failed_at"] for r in rows)
    assert [r["error_id"] for r in rows] == ["m-1:0", "m-1:1"]


def test_dedup_by_event_id_keeps_first_in_order() -> None:
    rows = [{"event_id": e, "n": n} for n, e in enumerate("abacbd")]
    assert [r["n"] for r in dedup.dedup_by_event_id(rows)] == [0, 1, 3, 5]
    assert dedup.dedup_by_event_id([]) == []


def test_deduper_horizon_and_memory_bound() -> None:
    deduper = dedup.EventIdDeduper(horizon_s=10, max_ids=3)
    assert len(deduper.filter([{"event_id": "a"}, {"event_id": "b"}], now=0)) == 2
    assert deduper.filter([{"event_id": "a"}], now=5) == []
    assert len(deduper.filter([{"event_id": "a"}], now=11)) == 1  # expired, seen again
    deduper.remember(["x", "y", "z", "w"], now=12)
    assert len(deduper) == 3  # max_ids bounds memory whatever the horizon
    deduper.forget(["w"])
    assert "w" not in deduper


def test_mapper_refuses_a_table_without_event_id() -> None:
    with pytest.raises(t.ContractError):
        t.RawRowMapper.for_table(
            load_catalog()
            .table("raw.user_events_errors")
            .model_copy(
                update={"fields": load_catalog().table("raw.user_events_errors").fields[:1]}
            )
        )


def test_event_names_of_samples_are_in_the_contract() -> None:
    schema = json.loads((REPO / "schemas/events/event.schema.json").read_text())
    names = set(schema["$defs"]["EventType"]["enum"])
    traffic = make_traffic(200, seed=5)
    assert {orjson.loads(m)["event_type"] for m in traffic.messages} <= names
