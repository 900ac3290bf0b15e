"""Device type and platform from the event or its User-Agent: a small cached regex classifier.

Full UA parsers (ua-parser's regex list) cost 50-500 µs per string; ingest needs only the
device class the raw table is clustered by and the platform, so a handful of patterns plus an
LRU cache (real traffic repeats a few thousand distinct UA strings) keep it well under a
microsecond per event on the hot path.

Device types are the contract's ``DeviceType`` (mobile, tablet, desktop, bot, unknown);
platforms its ``Platform`` (web, ios, android, server).

Example:
    >>> classify_user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) Mobile/15E148")
    ('mobile', 'ios')
    >>> classify_user_agent("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/124.0 Safari/537.36")
    ('desktop', 'web')
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Final

DEVICE_TYPES: Final = ("mobile", "tablet", "desktop", "bot", "unknown")
PLATFORMS: Final = ("web", "ios", "android", "server")

_BOT = re.compile(
    r"bot\b|bot/|crawl|spider|slurp|headless|lighthouse|facebookexternalhit|"
    r"pingdom|uptime|monitor/",
    re.IGNORECASE,
)
_IOS_TABLET = re.compile(r"ipad", re.IGNORECASE)
_IOS = re.compile(r"iphone|ipod|\bios\b|cfnetwork|darwin", re.IGNORECASE)
_ANDROID = re.compile(r"android|dalvik|okhttp", re.IGNORECASE)
_TABLET = re.compile(r"tablet|kindle|silk/|playbook", re.IGNORECASE)
_MOBILE = re.compile(r"mobi|blackberry|bb10|opera mini|iemobile|windows phone|webos", re.IGNORECASE)
_DESKTOP = re.compile(r"windows nt|macintosh|mac os x|x11|linux|cros", re.IGNORECASE)

# Segment/RudderStack context.device.type and context.os.name values -> device class.
_DEVICE_HINTS: Final[Mapping[str, str]] = {
    "ios": "mobile",
    "android": "mobile",
    "iphone": "mobile",
    "mobile": "mobile",
    "phone": "mobile",
    "smartphone": "mobile",
    "ipados": "tablet",
    "ipad": "tablet",
    "tablet": "tablet",
    "desktop": "desktop",
    "macos": "desktop",
    "mac os x": "desktop",
    "windows": "desktop",
    "linux": "desktop",
    "bot": "bot",
}
_PLATFORM_HINTS: Final[Mapping[str, str]] = {
    "ios": "ios",
    "ipados": "ios",
    "iphone": "ios",
    "ipad": "ios",
    "android": "android",
}


@lru_cache(maxsize=8192)
def classify_user_agent(user_agent: str) -> tuple[str, str]:  # noqa: PLR0911
    """``(device_type, platform)`` of a User-Agent string.

    Example:
        >>> classify_user_agent("Mozilla/5.0 (Linux; Android 14; SM-X710) Safari/537.36")
        ('tablet', 'android')
        >>> classify_user_agent("Googlebot/2.1 (+http://www.google.com/bot.html)")
        ('bot', 'server')
        >>> classify_user_agent("analytics-python/2.3.3")
        ('unknown', 'server')
    """
    ua = user_agent[:512]
    if not ua:
        return "unknown", "server"
    browser = ua.startswith("Mozilla/") or ua.startswith("Opera/")
    if _BOT.search(ua):
        return "bot", "web" if browser and "headless" in ua.lower() else "server"
    if _IOS_TABLET.search(ua):
        return "tablet", "web" if browser and "safari" in ua.lower() else "ios"
    if _ANDROID.search(ua):
        # Android phones say "Mobile"; Android tablets do not.
        device = "mobile" if "mobile" in ua.lower() or not browser else "tablet"
        in_browser = browser and "wv)" not in ua and "chrome" in ua.lower()
        return device, "web" if in_browser else "android"
    if _IOS.search(ua):
        return "mobile", "web" if browser and "safari" in ua.lower() else "ios"
    if _TABLET.search(ua):
        return "tablet", "web" if browser else "android"
    if _MOBILE.search(ua):
        return "mobile", "web"
    if browser or _DESKTOP.search(ua):
        return "desktop", "web" if browser else "server"
    return "unknown", "server"


def _hint(table: Mapping[str, str], value: object) -> str | None:
    if isinstance(value, str) and value:
        return table.get(value.strip().lower())
    return None


def classify(
    event: Mapping[str, Any], header_user_agent: str | None, device_hint: str | None = None
) -> tuple[str, str]:
    """``(device_type, platform)`` of one event.

    Device type: the event's ``user_agent``, else the request's ``User-Agent`` header; when that
    says nothing definite (unknown, or a desktop-looking library string), the SDK's
    ``context.device.type`` (``device_hint``), then the OS name (``ipados``/``ios``/``android``).
    Platform: the client's own ``platform`` when sent, else the same derivation.

    Example:
        >>> classify({"os_name": "iOS"}, None)
        ('mobile', 'ios')
        >>> classify({"platform": "web"}, "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4)")
        ('desktop', 'web')
        >>> classify({}, None)
        ('unknown', 'server')
        >>> classify({}, "analytics-python/2.3.3", device_hint="android")
        ('mobile', 'android')
    """
    ua = event.get("user_agent") or header_user_agent
    device, platform = classify_user_agent(ua) if isinstance(ua, str) else ("unknown", "server")
    hinted = _hint(_DEVICE_HINTS, device_hint) or _hint(_DEVICE_HINTS, event.get("os_name"))
    if hinted is not None and device in ("unknown", "desktop"):
        device = hinted
    os_platform = _hint(_PLATFORM_HINTS, event.get("os_name")) or _hint(
        _PLATFORM_HINTS, device_hint
    )
    if os_platform is not None and platform == "server":
        platform = os_platform
    client_platform = event.get("platform")
    if isinstance(client_platform, str) and client_platform in PLATFORMS:
        platform = client_platform
    return device, platform
