"""Slack messages through incoming webhooks: Block Kit built with ``slack_sdk``'s models.

Messages are built from :mod:`slack_sdk.models.blocks` (whose ``to_dict()`` validates Block
Kit's limits: header text 150 characters, section text 3,000, 10 fields; a message 50 blocks);
:func:`fit` shortens text to those limits first, so a long report never makes a message
invalid. Sending goes through ``slack_sdk``'s :class:`~slack_sdk.webhook.WebhookClient` with its
``RateLimitErrorRetryHandler``: an HTTP 429 is retried after the ``Retry-After`` seconds Slack
gives. Critical and warning messages go to their own webhooks (channels); the URLs are secrets
(Secret Manager in GCP, settings locally).

Example:
    >>> fit("x" * 200, HEADER_MAX)[-1], len(fit("x" * 200, HEADER_MAX))
    ('…', 150)
    >>> [b["type"] for b in blocks_json(header("Volume drop"), section("*Observed* 12 rows"))]
    ['header', 'section']
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edp.settings import Settings

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import (
    Block,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.webhook import WebhookClient

from edp.errors import ConfigError, TransientError

log = logging.getLogger(__name__)

HEADER_MAX = 150
SECTION_MAX = 3000
FIELD_MAX = 2000
MAX_FIELDS = 10
MAX_BLOCKS = 50
CONTEXT_MAX_ELEMENTS = 10


def fit(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (ending in an ellipsis when cut)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=fit(text, HEADER_MAX), emoji=True))


def section(text: str | None = None, fields: Sequence[str] = ()) -> SectionBlock:
    return SectionBlock(
        text=MarkdownTextObject(text=fit(text, SECTION_MAX)) if text else None,
        fields=[MarkdownTextObject(text=fit(f, FIELD_MAX)) for f in fields[:MAX_FIELDS]] or None,
    )


def context(*texts: str) -> ContextBlock:
    return ContextBlock(
        elements=[
            MarkdownTextObject(text=fit(t, SECTION_MAX)) for t in texts[:CONTEXT_MAX_ELEMENTS]
        ]
    )


def divider() -> DividerBlock:
    return DividerBlock()


def blocks_json(*blocks: Block) -> list[dict[str, object]]:
    """Validated JSON of at most :data:`MAX_BLOCKS` blocks (raises on a Block Kit violation)."""
    return [b.to_dict() for b in blocks[:MAX_BLOCKS]]


@dataclass(frozen=True)
class SlackMessage:
    """One message: the notification text and its blocks."""

    text: str
    blocks: list[dict[str, object]]
    severity: str = "warning"


class SlackNotifier:
    """Sends messages to the webhook of their severity's channel."""

    def __init__(
        self, webhooks: Mapping[str, str], *, timeout_s: int = 10, max_rate_limit_retries: int = 2
    ) -> None:
        self._clients = {
            severity: WebhookClient(
                url,
                timeout=timeout_s,
                retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=max_rate_limit_retries)],
            )
            for severity, url in webhooks.items()
            if url
        }

    @property
    def configured(self) -> bool:
        return bool(self._clients)

    def send(self, message: SlackMessage) -> bool:
        """Post ``message`` to its severity's channel (critical falls back to warning and back).

        Returns False when no webhook is configured. Raises TransientError when Slack answers
        an error after the retries (the caller may keep the incident unalerted and retry on the
        next run), ConfigError on a 4xx other than 429 (a bad URL or payload).
        """
        client = self._clients.get(message.severity) or next(iter(self._clients.values()), None)
        if client is None:
            return False
        sent = _sent_counter()
        labels = {
            "channel": message.severity if message.severity in self._clients else "fallback",
            "severity": message.severity,
        }
        try:
            response = client.send(text=fit(message.text, SECTION_MAX), blocks=message.blocks)
        except OSError as exc:  # URLError, refused, reset, timeout: Slack not reached at all
            sent.add(1, {**labels, "result": "unreachable"})
            raise TransientError(f"Slack webhook unreachable: {exc}") from exc
        sent.add(1, {**labels, "result": "ok" if response.status_code == 200 else "refused"})
        if response.status_code == 200:
            return True
        detail = f"Slack webhook answered {response.status_code}: {response.body[:200]}"
        if response.status_code == 429 or response.status_code >= 500:
            raise TransientError(detail)
        raise ConfigError(detail)


@cache
def _sent_counter() -> Any:
    from edp.observability.catalogue import instrument
    from edp.observability.metrics import get_meter

    return instrument(get_meter("edp.alerting.slack"), "slack_notifications_sent_total")


def notifier_from_settings(settings: Settings) -> SlackNotifier:
    """A notifier with the critical/warning webhooks of ``settings`` (unset ones skipped)."""
    secrets = {
        "critical": settings.slack_webhook_critical,
        "warning": settings.slack_webhook_warning,
    }
    return SlackNotifier({k: v.get_secret_value() for k, v in secrets.items() if v is not None})
