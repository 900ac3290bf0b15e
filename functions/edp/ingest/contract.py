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

import datetime as dt
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import AwareDatetime

from edp.contracts.events import SCHEMA_VERSION, ClientEvent
from edp.errors import ContractError

__all__ = ["DATETIME_FIELDS", "SCHEMA_VERSION", "client_event_validator", "strict_types"]


def _is_datetime(annotation: Any) -> bool:
    if annotation is AwareDatetime or (
        isinstance(annotation, type) and issubclass(annotation, dt.datetime)
    ):
        return True
    return any(_is_datetime(arg) for arg in get_args(annotation))


# Fields the schema declares as RFC 3339 date-time strings (pydantic would also read a JSON
# number there, as Unix time).
DATETIME_FIELDS = tuple(
    name for name, f in ClientEvent.model_fields.items() if _is_datetime(f.annotation)
)


def strict_types(event: Mapping[str, Any]) -> None:
    """Refuse what the JSON Schema refuses but pydantic's lax mode would coerce.

    A JSON number (or boolean) where the schema says a date-time string is refused; a datetime
    object (set by the Segment mapping, never by JSON) passes.

    Example:
        >>> strict_types({"client_timestamp": 1764151200})
        Traceback (most recent call last):
        ...
        edp.errors.ContractError: client_timestamp: must be an RFC 3339 date-time string, got int
    """
    for name in DATETIME_FIELDS:
        value = event.get(name)
        if value is not None and not isinstance(value, (str, dt.datetime)):
            raise ContractError(
                f"{name}: must be an RFC 3339 date-time string, got {type(value).__name__}"
            )


def _validate(event: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one client event; the validated fields (None dropped) as a dict."""
    return ClientEvent.model_validate(event).model_dump(exclude_none=True)


def _validate_strict(event: Mapping[str, Any]) -> dict[str, Any]:
    strict_types(event)
    return _validate(event)


def client_event_validator(*, strict: bool = True) -> Any:
    """The validator of :class:`~edp.ingest.core.IngestCore` for the contract's ClientEvent.

    Args:
        strict: also refuse types the schema refuses but pydantic would coerce
            (:func:`strict_types`).

    Raises ``pydantic.ValidationError`` with per-field reasons on an invalid event, or
    :class:`~edp.errors.ContractError` for a strict-mode type refusal.
    """
    return _validate_strict if strict else _validate
