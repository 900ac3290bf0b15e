"""Contract strictness at the validation layer.

References: the event contract (``schemas/events/event.schema.json``) declares
``client_timestamp``/``sent_at`` as ``"type": "string", "format": "date-time"`` (RFC 3339), so a
JSON number is invalid there (pydantic's lax mode would read it as Unix time). BigQuery's
TIMESTAMP range ends at 9999-12-31 23:59:59.999999 UTC (BigQuery docs, "Timestamp type"), as does
Python's ``datetime``: a skew-corrected time past it cannot be stored and is refused.
"""

from __future__ import annotations

import orjson
import pytest
from flask import Flask

from .conftest import AUTH, Bus, event


@pytest.mark.parametrize("value", [1764151200, 1764151200.5, True])
def test_number_as_timestamp_is_refused(app: Flask, bus: Bus, value: object) -> None:
    r = app.test_client().post(
        "/v1/events", data=orjson.dumps(event(client_timestamp=value)), headers=AUTH
    )
    assert r.status_code == 400
    assert "date-time string" in r.json["results"][0]["reason"]
    assert bus.events() == []


def test_number_as_batch_sent_at_is_refused_per_event(app: Flask, bus: Bus) -> None:
    body = {"events": [event()], "sent_at": 1764151200}
    r = app.test_client().post("/v1/events", data=orjson.dumps(body), headers=AUTH)
    assert r.status_code == 400 and "sent_at" in r.json["results"][0]["reason"]


def test_corrected_time_past_year_9999_keeps_the_event_at_received_at(app: Flask, bus: Bus) -> None:
    """client 9999-12-31, sent a year before it was received: received + (client - sent) is
    in year 10000, outside BigQuery's range. The analytics rule (docs/event-semantics.md): an
    implausible corrected time keeps the event, dated received_at, the client's value in
    params.original_timestamp; the request is answered 200 and nothing else is lost."""
    late = event(
        event_id="5c1d2b8e-0d5e-4d1a-9b2e-7f4a3c2d1e00",
        client_timestamp="9999-12-31T00:00:00Z",
        sent_at="2025-01-01T00:00:00Z",
    )
    good = event(event_id="0b7e7a52-6f43-4b83-9a55-2f0d4c7c1e11")
    r = app.test_client().post(
        "/v1/events", data=orjson.dumps({"events": [late, good]}), headers=AUTH
    )
    assert r.status_code == 200
    published = {e["event_id"]: e for e in bus.events()}
    assert set(published) == {late["event_id"], good["event_id"]}
    kept = published[late["event_id"]]
    assert kept["event_timestamp"] == kept["received_at"]
    assert kept["params"]["original_timestamp"].startswith("9999-12-31")
