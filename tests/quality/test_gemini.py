"""The Gemini path through the real ``google-genai`` client (vertexai=True) against a loopback
stand-in of Vertex AI's ``generateContent``; every failure falls back to the offline analyst.

The request/response shapes are Vertex AI's REST API (GenerateContentResponse: candidates[].
content.parts[].text, finishReason; https://cloud.google.com/vertex-ai/generative-ai/docs/
model-reference/inference) as google-genai 3.6 sends and parses them; ``_api_client.py``
builds ``{base_url}/v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}``
``:generateContent``).
"""

from __future__ import annotations

import json
import time

from google.oauth2.credentials import Credentials
from tests.quality.conftest import CaptureServer, Recorded

from edp.quality.analyst import rule_based_report
from edp.quality.gemini import SYSTEM_PROMPT, write_report
from edp.quality.report import CheckEvidence, Evidence, IncidentReport
from edp.settings import Settings

EVIDENCE = Evidence(
    group="cdc",
    run_time="2026-12-06T12:00:00+00:00",
    failing=[
        CheckEvidence(
            check_name="raw.cdc_orders.volume",
            check_type="volume",
            table="raw.cdc_orders",
            status="fail",
            severity="warning",
            value=1320.0,
            expected=1000.0,
            threshold=4.5,
            score=5.2,
            details={"direction": "spike", "relative_change": 0.32},
        )
    ],
    promotions=["Year-end holiday sale"],
)
REPORT = {
    "summary": "cdc_orders volume +32 % against the seasonal baseline during the holiday sale.",
    "likely_causes": [
        {
            "cause": "Holiday promotion",
            "likelihood": 0.8,
            "evidence": ["raw.cdc_orders.volume z 5.2", "promotion Year-end holiday sale"],
        }
    ],
    "business_impact": {
        "summary": "More orders than usual; no data loss.",
        "figures": [{"name": "extra change rows", "value": 320, "unit": "rows"}],
    },
    "immediate_actions": ["Confirm the campaign with marketing."],
    "long_term_fixes": ["Declare campaigns in the promotions calendar."],
    "confidence": 0.8,
}


def _settings(server: CaptureServer, timeout_s: float = 5.0) -> Settings:
    return Settings(
        _env_file=None,
        project="p-test",
        quality_llm="vertex",
        quality_llm_model="gemini-test",
        quality_llm_location="asia-northeast3",
        quality_llm_base_url=server.url,
        quality_llm_timeout_s=timeout_s,
    )


def _answer(body: dict[str, object]) -> tuple[int, dict[str, str], bytes]:
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


def _candidate(text: str, finish: str = "STOP") -> dict[str, object]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish}
        ]
    }


TOKEN = Credentials(token="test-token")  # a valid bearer token, no refresh


def test_a_valid_answer_is_the_report_and_the_request_is_what_vertex_expects(
    capture_server: CaptureServer,
) -> None:
    capture_server.answers = [_answer(_candidate(json.dumps(REPORT)))]
    report = write_report(EVIDENCE, _settings(capture_server), TOKEN)
    assert report.author == "gemini (gemini-test, Vertex AI)"
    assert report.likely_causes[0].cause == "Holiday promotion"
    assert report.business_impact.figures[0].value == 320
    (req,) = capture_server.requests
    assert req.path == (
        "/v1beta1/projects/p-test/locations/asia-northeast3/publishers/google/models/"
        "gemini-test:generateContent"
    )
    assert req.headers["Authorization"] == "Bearer test-token"
    body = req.json()
    config = body["generationConfig"]
    assert config["temperature"] == 0.1
    assert config["responseMimeType"] == "application/json"
    schema = config["responseSchema"]
    assert set(schema["required"]) >= {"summary", "likely_causes", "confidence"}
    assert body["systemInstruction"]["parts"][0]["text"] == SYSTEM_PROMPT
    assert "raw.cdc_orders.volume" in body["contents"][0]["parts"][0]["text"]


def _fell_back(report: IncidentReport, reason: str) -> None:
    offline = rule_based_report(EVIDENCE)
    assert report.author.startswith("offline rule-based analyst (no LLM: Gemini unavailable")
    assert reason in report.author
    # the same model, filled by the rules
    assert report.likely_causes == offline.likely_causes
    assert report.business_impact == offline.business_impact


def test_a_malformed_answer_falls_back(capture_server: CaptureServer) -> None:
    capture_server.answers = [_answer(_candidate('{"summary": "half a report"'))]
    report = write_report(EVIDENCE, _settings(capture_server), TOKEN)
    _fell_back(report, "does not match the report schema")


def test_an_answer_missing_required_fields_falls_back(capture_server: CaptureServer) -> None:
    capture_server.answers = [_answer(_candidate(json.dumps({"summary": "only this"})))]
    report = write_report(EVIDENCE, _settings(capture_server), TOKEN)
    _fell_back(report, "does not match the report schema")


def test_a_refusal_falls_back(capture_server: CaptureServer) -> None:
    refusal = {
        "candidates": [
            {
                "finishReason": "SAFETY",
                "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "blocked": True}],
            }
        ]
    }
    capture_server.answers = [_answer(refusal)]
    report = write_report(EVIDENCE, _settings(capture_server), TOKEN)
    _fell_back(report, "SAFETY")


def test_a_timeout_falls_back(capture_server: CaptureServer) -> None:
    def slow(_: Recorded) -> tuple[int, dict[str, str], bytes]:
        time.sleep(3)
        return _answer(_candidate(json.dumps(REPORT)))

    capture_server.answers = [slow]
    started = time.perf_counter()
    report = write_report(EVIDENCE, _settings(capture_server, timeout_s=1.0), TOKEN)
    assert time.perf_counter() - started < 2.9
    _fell_back(report, "Gemini unavailable")


def test_a_server_error_falls_back(capture_server: CaptureServer) -> None:
    capture_server.answers = [(500, {"Content-Type": "application/json"}, b'{"error": {}}')]
    report = write_report(EVIDENCE, _settings(capture_server), TOKEN)
    _fell_back(report, "Gemini unavailable")


def test_offline_setting_never_calls_vertex(capture_server: CaptureServer) -> None:
    settings = _settings(capture_server).model_copy(update={"quality_llm": "offline"})
    report = write_report(EVIDENCE, settings, TOKEN)
    assert capture_server.requests == []
    assert report.author == "offline rule-based analyst (no LLM: Vertex AI not configured)"
    # the promotion is named as the cause of a spike during it
    assert any("Year-end holiday sale" in c.cause for c in report.likely_causes)
