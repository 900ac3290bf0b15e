"""The event contract as the ingest core uses it: one validation function per client event.

Validation goes through the generated pydantic model
(:class:`edp.contracts.events.ClientEvent`, derived from ``schemas/events/event.schema.json``),
so the JSON Schema clients read and the checks ingest applies cannot drift.

Example:
    >>> validate = client_event_validator()
    >>> event = validate({"event_type": "page_view", "anonymous_id": "a1",
    ...                   "client_timestamp": "2026-11-26T10:00:00+09:00"})
    >>> event["client_timestamp"].isoformat()
    '2026-11-26T10:00:00+09:00'
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from edp.contracts.events import SCHEMA_VERSION, ClientEvent

__all__ = ["SCHEMA_VERSION", "client_event_validator"]


def _validate(event: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one client event; the validated fields (None dropped) as a dict."""
    return ClientEvent.model_validate(event).model_dump(exclude_none=True)


def client_event_validator() -> Any:
    """The validator of :class:`~edp.ingest.core.IngestCore` for the contract's ClientEvent.

    Raises ``pydantic.ValidationError`` with per-field reasons on an invalid event.
    """
    return _validate
