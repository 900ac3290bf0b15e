"""Gemini rewrites through the real google-genai client against a local generateContent
stand-in; shown only when proven equal on sample data in DuckDB."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import pytest
from google import genai
from google.genai import types

from edp.sqlreview.context import RuleContext
from edp.sqlreview.reviewer import review
from edp.sqlreview.source import Source
from edp_tools.sqlreview.equivalence import DuckDBVerifier
from edp_tools.sqlreview.gemini import with_gemini_rewrites

if TYPE_CHECKING:
    from edp.warehouse.port import Warehouse

QUERY = (
    "SELECT event_id FROM raw.user_events WHERE event_timestamp >= '2026-12-01' ORDER BY event_id"
)


class FakeGemini:
    """Answers every generateContent call with ``answer`` (as Gemini's JSON text part)."""

    def __init__(self) -> None:
        self.answer: dict[str, str] = {}
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                fake.requests.append(json.loads(self.rfile.read(length)))
                body = json.dumps(
                    {
                        "candidates": [
                            {
                                "content": {
                                    "role": "model",
                                    "parts": [{"text": json.dumps(fake.answer)}],
                                },
                                "finishReason": "STOP",
                            }
                        ]
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def fake_gemini() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def _client(fake: FakeGemini) -> genai.Client:
    return genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=fake.url))


def _run(fake: FakeGemini, warehouse: Warehouse) -> list[Any]:
    source = Source.parse(QUERY)
    result = with_gemini_rewrites(
        review(RuleContext(source=source)), source, _client(fake), DuckDBVerifier(warehouse)
    )
    return [f.rewrite for f in result.findings if f.rule == "OrderByWithoutLimit"]


def test_an_equivalent_answer_is_shown(fake_gemini: FakeGemini, warehouse: Warehouse) -> None:
    fake_gemini.answer = {
        "sql": "SELECT event_id FROM raw.user_events "
        "WHERE event_timestamp >= TIMESTAMP '2026-12-01' ORDER BY event_id",
        "explanation": "explicit timestamp literal",
    }
    (rewrite,) = _run(fake_gemini, warehouse)
    assert rewrite is not None and rewrite.verified is True
    assert "Gemini" in rewrite.note
    config = fake_gemini.requests[0]["generationConfig"]
    assert config["temperature"] == 0.1
    assert config["responseMimeType"] == "application/json"


def test_a_different_answer_is_dropped(fake_gemini: FakeGemini, warehouse: Warehouse) -> None:
    warehouse.insert_rows(
        "raw.user_events",
        [
            {
                "event_id": "e1",
                "event_type": "purchase",
                "event_timestamp": "2026-12-02T00:00:00+00:00",
                "received_at": "2026-12-02T00:00:00+00:00",
                "ingested_at": "2026-12-02T00:00:00+00:00",
                "device_type": "mobile",
                "platform": "web",
                "schema_version": "1.0",
            }
        ],
    )
    fake_gemini.answer = {
        "sql": "SELECT event_id FROM raw.user_events "
        "WHERE event_timestamp >= '2026-12-03' ORDER BY event_id",
        "explanation": "a narrower window (not equivalent)",
    }
    assert _run(fake_gemini, warehouse) == [None]


def test_an_unparsable_answer_is_dropped(fake_gemini: FakeGemini, warehouse: Warehouse) -> None:
    fake_gemini.answer = {"sql": "SELEC nonsense (", "explanation": "?"}
    assert _run(fake_gemini, warehouse) == [None]
