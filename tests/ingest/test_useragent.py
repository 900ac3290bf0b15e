"""Device type / platform classification (table-driven)."""

from __future__ import annotations

import pytest

from edp.ingest.useragent import DEVICE_TYPES, PLATFORMS, classify, classify_user_agent

UA_CASES = [
    # (user agent, device_type, platform)
    ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1", "mobile", "web"),
    ("Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Version/17.4 "
     "Mobile/15E148 Safari/604.1", "tablet", "web"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918N) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Mobile Safari/537.36", "mobile", "web"),
    ("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", "tablet", "web"),
    ("Mozilla/5.0 (Linux; Android 14; SM-S918N; wv) AppleWebKit/537.36 Version/4.0 "
     "Chrome/124.0.0.0 Mobile Safari/537.36", "mobile", "android"),
    ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/124.0.0.0 Safari/537.36", "desktop", "web"),
    ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17.4 "
     "Safari/605.1.15", "desktop", "web"),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0", "desktop", "web"),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "server"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/124.0 Safari/537.36",
     "bot", "web"),
    ("ShopApp/5.2.0 (iPhone; iOS 17.4; Scale/3.00) CFNetwork/1490 Darwin/23.4.0", "mobile", "ios"),
    ("okhttp/4.12.0", "mobile", "android"),
    ("Dalvik/2.1.0 (Linux; U; Android 14; SM-S918N Build/UP1A)", "mobile", "android"),
    ("analytics-python/2.3.3", "unknown", "server"),
    ("python-requests/2.32.3", "unknown", "server"),
    ("curl/8.5.0", "unknown", "server"),
    ("", "unknown", "server"),
]  # fmt: skip


@pytest.mark.parametrize(("ua", "device", "platform"), UA_CASES)
def test_user_agents(ua: str, device: str, platform: str) -> None:
    assert classify_user_agent(ua) == (device, platform)
    assert device in DEVICE_TYPES and platform in PLATFORMS


@pytest.mark.parametrize(
    ("event", "header", "expected"),
    [
        ({"os_name": "iOS"}, None, ("mobile", "ios")),
        ({"os_name": "iPadOS"}, None, ("tablet", "ios")),
        ({"os_name": "Android"}, "okhttp/4.12.0", ("mobile", "android")),
        ({"platform": "web"}, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)", ("desktop", "web")),
        ({"user_agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148"},
         "curl/8", ("mobile", "ios")),
        ({}, None, ("unknown", "server")),
        ({"platform": "server"}, None, ("unknown", "server")),
    ],
)  # fmt: skip
def test_event_fields_and_header(
    event: dict[str, str], header: str | None, expected: tuple[str, str]
) -> None:
    assert classify(event, header) == expected


def test_long_user_agents_are_cut() -> None:
    assert classify_user_agent("x" * 100_000 + " bot/1") == ("unknown", "server")
