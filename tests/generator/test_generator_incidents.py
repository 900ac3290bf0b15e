"""Injected incidents show in the data and in the ground truth; output meets the contract."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from edp.contracts.catalog import load_catalog
from edp.contracts.events import EnrichedEvent, EventBatch
from edp.errors import ConfigError
from edp_tools.generator import Generator, GeneratorConfig, parse_incidents
from edp_tools.generator.incidents import parse_incident
from edp_tools.generator.sinks import arrow_schema, conform, request_bodies

INCIDENT_DAY = date(2026, 11, 24)  # as in conftest.incident_run
WEEK_SCALE = 0.02

pytestmark = pytest.mark.timeout(120)


def _hourly(table: pa.Table) -> dict[int, int]:
    con = duckdb.connect()
    con.register("t", table)
    rows = con.execute(
        "SELECT EXTRACT(hour FROM event_timestamp AT TIME ZONE 'UTC') AS h, COUNT(*) "
        "FROM t WHERE event_timestamp < TIMESTAMPTZ '2026-11-25 00:00:00+00' GROUP BY h"
    ).fetchall()
    return {int(h): n for h, n in rows}


def _truth(gen: Generator, kind: str) -> dict[str, Any]:
    doc = json.loads(gen.ground_truth.to_json())
    [entry] = [i for i in doc["incidents"] if i["type"] == kind]
    return entry


def _baseline() -> pa.Table:
    config = GeneratorConfig(start=INCIDENT_DAY, scale=WEEK_SCALE, seed=5)
    return Generator(config).day(0).table


def test_outage_hour_is_empty_and_recorded(incident_run: Generator) -> None:
    table = incident_run.result.table  # type: ignore[attr-defined]
    entry = _truth(incident_run, "outage")
    start = datetime.fromisoformat(entry["start"])
    assert entry["start"] == "2026-11-24T03:00:00+00:00" and entry["end"].endswith("04:00:00+00:00")
    hourly = _hourly(table)
    assert hourly.get(start.hour, 0) == 0
    assert hourly[start.hour - 1] > 500 and hourly[start.hour + 1] > 500
    assert entry["affected_events"] > 500


def test_null_burst_raises_the_null_rate_only_in_its_window(incident_run: Generator) -> None:
    table = incident_run.result.table  # type: ignore[attr-defined]
    entry = _truth(incident_run, "nulls")
    con = duckdb.connect()
    con.register("t", table)
    inside, outside, nulls = con.execute(
        f"""
        SELECT AVG(CASE WHEN {entry["column"]} IS NULL THEN 1 ELSE 0 END)
                 FILTER (WHERE event_timestamp >= ? AND event_timestamp < ?),
               AVG(CASE WHEN {entry["column"]} IS NULL THEN 1 ELSE 0 END)
                 FILTER (WHERE event_timestamp < ? OR event_timestamp >= ?),
               COUNT(*) FILTER (WHERE {entry["column"]} IS NULL
                 AND event_timestamp >= ? AND event_timestamp < ?)
        FROM t WHERE event_type <> 'refund'
        """,
        [
            datetime.fromisoformat(entry[k])
            for k in ("start", "end", "start", "end", "start", "end")
        ],
    ).fetchone()
    assert inside == pytest.approx(entry["magnitude"], abs=0.05)
    assert outside < 0.01
    assert nulls == entry["affected_events"]


def test_duplicate_storm_resends_same_event_ids_later(incident_run: Generator) -> None:
    table = incident_run.result.table  # type: ignore[attr-defined]
    entry = _truth(incident_run, "dupes")
    con = duckdb.connect()
    con.register("t", table)
    dup_ids, extra_rows, same_ts, later = con.execute(
        """
        WITH d AS (SELECT event_id, COUNT(*) AS c, COUNT(DISTINCT event_timestamp) AS ts,
                          MAX(received_at) > MIN(received_at) AS later
                   FROM t GROUP BY event_id HAVING COUNT(*) > 1)
        SELECT COUNT(*), SUM(c - 1), BOOL_AND(ts = 1), BOOL_AND(later) FROM d
        """
    ).fetchone()
    assert dup_ids == extra_rows == entry["affected_events"] > 100
    assert same_ts and later
    # about magnitude of the window's events were re-sent
    window = con.execute(
        "SELECT COUNT(DISTINCT event_id) FROM t WHERE event_timestamp >= ? AND event_timestamp < ?",
        [datetime.fromisoformat(entry["start"]), datetime.fromisoformat(entry["end"])],
    ).fetchone()[0]
    assert dup_ids / window == pytest.approx(entry["magnitude"], abs=0.05)


def test_promo_multiplies_the_window_volume(incident_run: Generator) -> None:
    with_promo = _hourly(incident_run.result.table)  # type: ignore[attr-defined]
    without = _hourly(_baseline())
    entry = _truth(incident_run, "promo")
    start = datetime.fromisoformat(entry["start"]).hour
    end = datetime.fromisoformat(entry["end"]).hour
    ratio = sum(with_promo[h] for h in range(start, end)) / sum(
        without[h] for h in range(start, end)
    )
    assert ratio == pytest.approx(entry["magnitude"], rel=0.15)
    # hours well before the promo (and the other incidents) are unaffected
    assert with_promo[1] == pytest.approx(without[1], rel=0.25)


def test_ground_truth_file_lists_every_incident(incident_run: Generator, tmp_path: Path) -> None:
    path = tmp_path / "truth" / "gt.json"
    incident_run.ground_truth.write(path)
    doc = json.loads(path.read_text())
    assert doc["seed"] == 5 and doc["start"] == "2026-11-24" and doc["days"] == 1
    assert sorted(i["type"] for i in doc["incidents"]) == ["dupes", "nulls", "outage", "promo"]
    for inc in doc["incidents"]:
        assert inc["table"] == "raw.user_events"
        assert datetime.fromisoformat(inc["start"]) < datetime.fromisoformat(inc["end"])
        assert datetime.fromisoformat(inc["start"]).tzinfo == UTC
    assert doc["daily_events"] == {"2026-11-24": incident_run.result.table.num_rows}  # type: ignore[attr-defined]


def test_generating_a_day_again_does_not_duplicate_its_ground_truth() -> None:
    config = GeneratorConfig(
        start=INCIDENT_DAY, scale=0.0005, seed=1, incidents=parse_incidents("outage")
    )
    gen = Generator(config)
    first = gen.day(0).num_rows
    assert gen.day(0).num_rows == first
    doc = json.loads(gen.ground_truth.to_json())
    assert len(doc["incidents"]) == 1 and doc["daily_events"] == {"2026-11-24": first}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("outage", ("outage", None, 3, 1.0)),
        ("promo@2T20x1.5", ("promo", 2, 20, 1.5)),
        ("nulls@0", ("nulls", 0, 6, 0.4)),
        ("dupes x0.1", ("dupes", None, 8, 0.1)),
    ],
)
def test_incident_specs_parse(spec: str, expected: tuple[Any, ...]) -> None:
    inc = parse_incident(spec)
    assert (inc.type, inc.day, inc.start_hour, inc.magnitude) == expected


@pytest.mark.parametrize("spec", ["flood", "promo x0.5", "outage x2", "nulls@1T25", "promo@"])
def test_bad_incident_specs_are_refused(spec: str) -> None:
    with pytest.raises(ConfigError):
        parse_incident(spec)


def test_incident_on_a_day_not_generated_is_refused() -> None:
    with pytest.raises(ConfigError):
        GeneratorConfig(start=INCIDENT_DAY, days=2, incidents=parse_incidents("outage@2"))


def test_client_payloads_validate_against_the_event_contract(incident_run: Generator) -> None:
    table = incident_run.result.table.slice(0, 3_000)  # type: ignore[attr-defined]
    bodies = list(request_bodies(table, batch_size=100))
    assert sum(len(b["events"]) for b in bodies) == table.num_rows
    for body in bodies:
        EventBatch.model_validate(body)
    types = {e["event_type"] for b in bodies for e in b["events"]}
    assert {"session_start", "page_view", "view_item"} <= types


def test_enriched_rows_validate_and_conform_to_the_raw_table(week: pa.Table) -> None:
    spec = load_catalog().table("raw.user_events")
    sample = week.drop_columns(["day"])
    purchases = sample.filter(pa.compute.equal(sample["event_type"], "purchase")).slice(0, 200)
    rows = pa.concat_tables([sample.slice(0, 800), purchases])
    for row in rows.to_pylist():
        event = {k: v for k, v in row.items() if v is not None and v != []}
        if "params" in event:
            event["params"] = json.loads(event["params"])
        if "items" in event:
            event["items"] = [{k: v for k, v in i.items() if v is not None} for i in event["items"]]
        EnrichedEvent.model_validate(event)
    conformed = conform(rows, spec)
    target = arrow_schema(spec)
    assert conformed.schema.names == target.names
    for got, want in zip(conformed.schema, target, strict=True):
        # low-cardinality strings stay dictionary-encoded; the warehouse reads them as strings
        plain = got.type.value_type if pa.types.is_dictionary(got.type) else got.type
        assert plain == want.type, got.name
    assert conformed.num_rows == rows.num_rows


def test_null_burst_can_hit_a_dictionary_encoded_column() -> None:
    from edp_tools.generator import Incident

    burst = Incident(type="nulls", day=0, start_hour=12, hours=1, magnitude=1.0,
                     column="page_location")  # fmt: skip
    config = GeneratorConfig(start=INCIDENT_DAY, scale=0.002, seed=8, incidents=(burst,))
    gen = Generator(config)
    table = gen.day(0).table
    con = duckdb.connect()
    con.register("t", table)
    inside, outside = con.execute(
        "SELECT COUNT(page_location) FILTER (WHERE hour(event_timestamp AT TIME ZONE 'UTC') = 12),"
        " COUNT(page_location) FILTER (WHERE hour(event_timestamp AT TIME ZONE 'UTC') = 10)"
        " FROM t"
    ).fetchone()
    assert inside == 0 < outside
    assert _truth(gen, "nulls")["column"] == "page_location"
