"""The replay's pure parts: request plan, malformations, reading ingest's answers; and the
docstring examples of the demo modules."""

from __future__ import annotations

import doctest
import importlib

import orjson
import pytest

from edp_tools.demo.replay import MALFORMATIONS, malform, plan_requests, refused_indexes


@pytest.mark.parametrize(
    "name",
    [
        "edp_tools.demo.config",
        "edp_tools.demo.replay",
        "edp_tools.demo.collect",
        "edp_tools.demo.pacing",
    ],
)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), verbose=False)
    assert result.attempted > 0
    assert result.failed == 0


def test_plan_keeps_order_and_sends_each_request_when_its_last_event_arrived() -> None:
    offsets = [0.0, 10.0, 20.0, 43_200.0, 86_399.0]
    plan = plan_requests(offsets, batch_size=2, replay_seconds=864.0)
    assert [list(idx) for _, idx in plan] == [[0, 1], [2, 3], [4]]
    assert [round(at, 3) for at, _ in plan] == [0.1, 432.0, 863.99]


def test_plan_of_no_events_is_empty() -> None:
    assert plan_requests([], batch_size=10, replay_seconds=60) == []


@pytest.mark.parametrize("kind", MALFORMATIONS)
def test_malform_breaks_a_copy(kind: str) -> None:
    event = {"event_type": "purchase", "client_timestamp": "2026-11-26T00:00:00Z", "value": 9.5}
    bad = malform(event, kind)
    assert bad != event
    assert event["event_type"] == "purchase"  # the original is untouched


def test_malform_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown malformation"):
        malform({}, "nope")


def _results(index: int | None, error: str) -> bytes:
    return orjson.dumps({"results": [{"index": index, "error": error}]})


@pytest.mark.parametrize(
    ("status", "reply", "n", "expected"),
    [
        (200, b'{"accepted": 3}', 3, {}),
        (207, _results(0, "schema_violation"), 2, {0: "schema_violation"}),
        (400, _results(None, "format_error"), 2, {0: "format_error", 1: "format_error"}),
        (413, _results(1, "size_violation"), 2, {1: "size_violation"}),
        (401, b'{"error": "auth"}', 2, {0: "http_401", 1: "http_401"}),
        (400, b"not json", 1, {0: "http_400"}),
    ],
)
def test_refused_indexes(status: int, reply: bytes, n: int, expected: dict[int, str]) -> None:
    assert refused_indexes(status, reply, n) == expected
