"""Slack through ``slack_sdk``'s real WebhookClient against a loopback capture server: Block Kit
payloads, the channel per severity, 429 + Retry-After honoured, Block Kit limits kept.

Limits from Slack's Block Kit reference (header text <= 150 characters, section text <= 3000,
<= 10 section fields, <= 50 blocks per message) as ``slack_sdk.models.blocks`` enforces them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import HeaderBlock, PlainTextObject
from tests.quality.conftest import CaptureServer

from edp.alerting.slack import SlackMessage, SlackNotifier, blocks_json, header, section
from edp.errors import ConfigError, TransientError
from edp.quality.analyst import rule_based_report
from edp.quality.evidence import check_evidence
from edp.quality.incidents import decide
from edp.quality.message import incident_message
from edp.quality.model import CheckResult
from edp.quality.report import Evidence

NOW = datetime(2026, 12, 6, 12, tzinfo=UTC)


def _message(severity: str = "warning") -> SlackMessage:
    return SlackMessage(text="t", blocks=blocks_json(header("h"), section("s")), severity=severity)


def test_block_kit_limits_are_what_slack_documents() -> None:
    with pytest.raises(SlackObjectFormationError):
        HeaderBlock(text=PlainTextObject(text="x" * 151)).to_dict()
    assert len(header("x" * 400).to_dict()["text"]["text"]) == 150
    assert len(section("y" * 5000).to_dict()["text"]["text"]) == 3000
    assert len(section(fields=[f"f{i}" for i in range(15)]).to_dict()["fields"]) == 10


def test_critical_and_warning_go_to_their_own_webhooks(capture_server: CaptureServer) -> None:
    notifier = SlackNotifier(
        {"critical": f"{capture_server.url}/critical", "warning": f"{capture_server.url}/warning"}
    )
    assert notifier.send(_message("critical"))
    assert notifier.send(_message("warning"))
    assert [r.path for r in capture_server.requests] == ["/critical", "/warning"]
    body = capture_server.requests[0].json()
    assert body["text"] == "t"
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]


def test_429_waits_for_retry_after_then_delivers(capture_server: CaptureServer) -> None:
    capture_server.answers = [(429, {"Retry-After": "1"}, b"rate_limited"), (200, {}, b"ok")]
    notifier = SlackNotifier({"warning": capture_server.url})
    assert notifier.send(_message())
    first, second = capture_server.requests
    assert second.at - first.at >= 1.0  # Retry-After: 1 second
    assert first.body == second.body


def test_persistent_429_is_transient_and_4xx_is_a_config_error(
    capture_server: CaptureServer,
) -> None:
    capture_server.answers = [(429, {"Retry-After": "0"}, b"rate_limited")]
    with pytest.raises(TransientError):
        SlackNotifier({"warning": capture_server.url}, max_rate_limit_retries=1).send(_message())
    assert len(capture_server.requests) == 2
    capture_server.requests.clear()
    capture_server.answers = [(404, {}, b"no_service")]
    with pytest.raises(ConfigError):
        SlackNotifier({"warning": capture_server.url}).send(_message())


def test_no_webhook_sends_nothing() -> None:
    assert not SlackNotifier({}).configured
    assert SlackNotifier({}).send(_message()) is False


def _failing(n: int) -> list[CheckResult]:
    return [
        CheckResult(
            check_name=f"raw.user_events.null_rate.col{i}",
            check_type="null_rate",
            table_ref="raw.user_events",
            column_name=f"col{i}",
            status="fail",
            severity="warning",
            metric_value=0.4,
            threshold=0.05,
            details={"rows": 1000},
        )
        for i in range(n)
    ]


def test_one_message_for_many_failing_checks_stays_within_50_blocks(
    capture_server: CaptureServer,
) -> None:
    failing = _failing(80)
    decision = decide("events", failing, None, NOW, quiet=NOW - NOW)
    assert decision is not None
    evidence = Evidence(
        group="events", run_time=NOW.isoformat(), failing=[check_evidence(r) for r in failing]
    )
    message = incident_message(decision, rule_based_report(evidence))
    assert len(message.blocks) <= 50
    SlackNotifier({"warning": capture_server.url}).send(message)
    (req,) = capture_server.requests
    sent = req.json()
    assert sent["text"].startswith("[WARNING] data-quality incident in events (new)")
    assert sent["blocks"][0]["type"] == "header"


def test_time_is_spent_only_on_retries(capture_server: CaptureServer) -> None:
    started = time.perf_counter()
    SlackNotifier({"warning": capture_server.url}).send(_message())
    assert time.perf_counter() - started < 1.0


def test_the_local_receiver_records_what_the_notifier_sends(tmp_path: Path) -> None:
    import json
    import threading

    from edp_tools.quality.webhook_receiver import make_server

    out = tmp_path / "slack" / "messages.jsonl"
    server = make_server("127.0.0.1", 0, out)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        notifier = SlackNotifier({"critical": f"{base}/critical", "warning": f"{base}/warning"})
        assert notifier.send(_message("critical"))
    finally:
        server.shutdown()
        server.server_close()
    (line,) = out.read_text().splitlines()
    record = json.loads(line)
    assert record["channel"] == "critical"
    assert record["payload"]["blocks"][0]["type"] == "header"
