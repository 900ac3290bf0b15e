"""Post a report to Slack through an incoming webhook (``slack_sdk``'s ``WebhookClient``).

Messages are built with ``slack_sdk.models.blocks`` (whose ``validate_json`` enforces Block
Kit's limits) and always carry a plain ``text`` fallback, which notifications show. HTTP 429
is retried after ``Retry-After`` (Slack allows one webhook post per second).

Example:
    >>> blocks = [HeaderBlock(text="SQL cost review")]
    >>> post("http://127.0.0.1:9/none", "fallback", blocks, timeout=0.2)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import Block, HeaderBlock
from slack_sdk.webhook import WebhookClient

from edp.errors import PermanentError, TransientError

__all__ = ["HeaderBlock", "SlackError", "post"]


class SlackError(PermanentError):
    """Slack refused the message (bad payload, revoked webhook)."""


def post(url: str, text: str, blocks: Sequence[Block], *, timeout: float = 10.0) -> None:
    """Send one message; raises TransientError on 5xx/network, SlackError on other refusals."""
    for block in blocks:
        block.validate_json()
    client = WebhookClient(
        url,
        timeout=int(max(1, timeout)),
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    try:
        response = client.send(text=text, blocks=list(blocks))
    except OSError as exc:
        raise TransientError(f"Slack webhook unreachable: {exc}") from exc
    if response.status_code >= 500:
        raise TransientError(f"Slack webhook answered {response.status_code}: {response.body}")
    if response.status_code != 200:
        raise SlackError(f"Slack webhook answered {response.status_code}: {response.body}")
