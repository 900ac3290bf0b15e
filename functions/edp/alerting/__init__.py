"""Alert delivery (Slack incoming webhooks)."""
