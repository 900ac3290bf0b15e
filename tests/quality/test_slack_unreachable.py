"""A webhook that cannot be reached at all is a transient failure, not a crash."""

from __future__ import annotations

import pytest

from edp.alerting.slack import SlackMessage, SlackNotifier
from edp.errors import TransientError
from edp_tools.local.processes import free_port


def test_unreachable_webhook_raises_transient_error() -> None:
    notifier = SlackNotifier({"critical": f"http://127.0.0.1:{free_port()}/hook"}, timeout_s=2)
    message = SlackMessage(severity="critical", text="x", blocks=[])
    with pytest.raises(TransientError, match="unreachable"):
        notifier.send(message)
