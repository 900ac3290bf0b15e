"""Who may write, from where: write-key location, CORS allow-lists per key, key redaction.

* Write keys travel in ``X-Write-Key`` or Basic auth (key as user name); the Segment body
  ``writeKey`` works on the Segment routes; the query string (``?writeKey=``) only on the beacon
  route, because ``navigator.sendBeacon`` cannot set headers - everywhere else a key in the URL
  is refused, since URLs end up in access logs.
* CORS: each key may carry its own origin allow-list (``EDP_CORS_ORIGINS_BY_KEY``), other keys
  use ``EDP_CORS_ORIGINS``. A preflight carries no key, so it is answered for the union of
  every list; the real request is then checked against its key's list (a browser always sends
  ``Origin`` on a cross-origin POST), so a key copied from one shop's page does not work from
  another origin. The opaque origin ``null`` (sandboxed frames, ``file:``) is never allowed.
* :func:`redact_write_keys` removes keys from any text written to logs.

Example:
    >>> policy = CorsPolicy(["https://a.example"], {"k2": ["https://b.example"]})
    >>> policy.preflight_origin("https://b.example"), policy.for_key("https://b.example", "k1")
    ('https://b.example', None)
    >>> redact_write_keys("POST /beacon/v1/batch?writeKey=s3cret&x=1")
    'POST /beacon/v1/batch?writeKey=[redacted]&x=1'
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from typing import Final

NULL_ORIGIN: Final = "null"
_KEY_IN_QUERY: Final = re.compile(r"(?i)(writekey=)[^&\s\"']*")


class CorsPolicy:
    """Allowed browser origins: a default list plus a list per write key.

    Args:
        default: origins allowed for keys without their own list (``*`` for any origin
            except ``null``).
        by_key: write key -> its allowed origins.
    """

    def __init__(self, default: Sequence[str], by_key: Mapping[str, Sequence[str]]) -> None:
        self._default = frozenset(default)
        self._by_key = {key: frozenset(origins) for key, origins in by_key.items()}
        union = set(self._default)
        for origins in self._by_key.values():
            union |= origins
        self._union = frozenset(union)

    @staticmethod
    def _match(origin: str | None, allowed: frozenset[str]) -> str | None:
        if not origin or origin == NULL_ORIGIN:
            return None
        if origin in allowed:
            return origin
        return "*" if "*" in allowed else None

    def preflight_origin(self, origin: str | None) -> str | None:
        """The Allow-Origin value of a preflight (no key yet): any list may allow it."""
        return self._match(origin, self._union)

    def for_key(self, origin: str | None, key: str | None) -> str | None:
        """The Allow-Origin value for ``origin`` using ``key`` (None: not allowed)."""
        allowed = self._by_key.get(key or "", self._default)
        return self._match(origin, allowed)

    def allows(self, origin: str | None, key: str | None) -> bool:
        """True if a request from ``origin`` may use ``key`` (no Origin: not a browser)."""
        return origin is None or self.for_key(origin, key) is not None


def redact_write_keys(text: str) -> str:
    """``text`` with every ``writeKey=...`` query value replaced by ``[redacted]``."""
    return _KEY_IN_QUERY.sub(r"\1[redacted]", text)


class RedactWriteKeys(logging.Filter):
    """A logging filter that redacts write keys from a record's message and arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "writekey" in record.msg.lower():
            record.msg = redact_write_keys(record.msg)
        if record.args:
            if isinstance(record.args, Mapping):
                record.args = {
                    k: redact_write_keys(v) if isinstance(v, str) else v
                    for k, v in record.args.items()
                }
            else:
                record.args = tuple(
                    redact_write_keys(a) if isinstance(a, str) else a for a in record.args
                )
        return True


def install_redaction(*logger_names: str) -> None:
    """Add :class:`RedactWriteKeys` to the named loggers and their handlers (idempotent).

    The root logger and gunicorn's ``gunicorn.access``/``gunicorn.error`` cover what the
    collector and functions-framework write.
    """
    for name in logger_names or ("", "gunicorn.access", "gunicorn.error", "werkzeug"):
        logger = logging.getLogger(name)
        targets: list[logging.Filterer] = [logger, *logger.handlers]
        for target in targets:
            if not any(isinstance(f, RedactWriteKeys) for f in target.filters):
                target.addFilter(RedactWriteKeys())


__all__ = ["CorsPolicy", "RedactWriteKeys", "install_redaction", "redact_write_keys"]
