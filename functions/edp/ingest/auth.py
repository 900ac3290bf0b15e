"""Write keys: where a request carries one, and a constant-time check against the configured keys.

A key comes in ``X-Write-Key``, as the username of Basic auth (Segment's and RudderStack's SDKs),
in a Segment body's top-level ``writeKey``, or - on the beacon route only - in the query string.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Sequence

from flask import Request


class WriteKeys:
    """Constant-time write-key check against every configured key.

    Example:
        >>> WriteKeys(["k1", "k2"]).valid("k2"), WriteKeys(["k1"]).valid("k3")
        (True, False)
    """

    def __init__(self, keys: Sequence[str]) -> None:
        self._keys = [k.encode() for k in keys if k]

    @property
    def enforced(self) -> bool:
        """False when no key is configured (local development only)."""
        return bool(self._keys)

    def valid(self, candidate: str | None) -> bool:
        """True if ``candidate`` equals one configured key (no early exit on a match)."""
        if not self._keys:
            return True
        given = (candidate or "").encode("utf-8", "surrogateescape")
        found = False
        for key in self._keys:
            found |= hmac.compare_digest(given, key)
        return found


def header_key(req: Request) -> str | None:
    """The write key from ``X-Write-Key`` or Basic auth (key as username), else None."""
    key = req.headers.get("X-Write-Key")
    if key:
        return key
    auth = req.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""  # present but malformed: refused below
        return decoded.split(":", 1)[0]
    if auth:
        return ""
    return None


def body_key(body: object) -> str | None:
    """The Segment body's ``writeKey`` (top level only: nothing else is looked at)."""
    key = body.get("writeKey") if isinstance(body, dict) else None
    return key if isinstance(key, str) else None
