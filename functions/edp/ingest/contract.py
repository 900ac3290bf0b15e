"""The event contract as the ingest core uses it: one validation function per client event.

Validation goes through the generated pydantic model
(:class:`edp.contracts.events.ClientEvent`, derived from ``schemas/events/event.schema.json``),
so the JSON Schema clients read and the checks ingest applies cannot drift. An event that passes
is validated once, into a plain dict, by a TypedDict mirror of the model (:func:`typed_dict_of`:
the same field types and pydantic-core constraints) and then the model's own cross-field rules:
building the model and dumping it again cost 7.5 µs per event against 4.1 µs. Anything the
mirror or the rules refuse is validated again by the model itself, so every refusal is the
model's, word for word.

Example:
    >>> validate = client_event_validator()
    >>> event = validate({"event_type": "page_view", "anonymous_id": "a1",
    ...                   "client_timestamp": "2026-11-26T10:00:00+09:00"})
    >>> event["client_timestamp"].isoformat()
    '2026-11-26T10:00:00+09:00'
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Callable, Mapping
from functools import cache
from typing import Annotated, Any, NotRequired, Required, Union, get_args, get_origin

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from edp.contracts.events import SCHEMA_VERSION, ClientEvent
from edp.errors import ContractError

__all__ = [
    "DATETIME_FIELDS",
    "SCHEMA_VERSION",
    "client_event_validator",
    "strict_types",
    "typed_dict_of",
]


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


def _rules_of(model: type[BaseModel]) -> list[Callable[[Any], Any]]:
    """The model's ``mode="after"`` model validators, as plain functions of an instance."""
    validators = model.__pydantic_decorators__.model_validators.values()
    if any(v.info.mode != "after" for v in validators):
        raise TypeError(f"{model.__name__}: only after-validators can be mirrored")
    return [v.func for v in validators]


def _mirror_type(annotation: Any) -> Any:
    """``annotation`` with every pydantic model in it replaced by its TypedDict mirror."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return typed_dict_of(annotation)
    origin = get_origin(annotation)
    if origin is None or origin is typing.Literal or origin is Annotated:
        return annotation
    args = tuple(_mirror_type(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return Union[args]  # noqa: UP007 - built from a runtime tuple
    return origin[args if len(args) > 1 else args[0]]


def _not_none(annotation: Any) -> Any:
    """``X | None`` -> ``X`` (an explicit null is left to the model, see typed_dict_of)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = tuple(a for a in get_args(annotation) if a is not type(None))
        return Union[args] if len(args) > 1 else args[0]  # noqa: UP007 - runtime tuple
    return annotation


@cache
def typed_dict_of(model: type[BaseModel]) -> Any:
    """A TypedDict of ``model``'s fields: the same types and constraints, nulls refused.

    Required fields stay required; an optional one may be absent but not null (every optional
    field of the contract defaults to None, which ``model_dump(exclude_none=True)`` drops: a
    null is left to the model). Nested models are mirrored too, and extra keys are refused as
    the model's ``extra="forbid"`` does. The model's cross-field rules are not part of it: see
    :func:`_validate`.

    Example:
        >>> from edp.contracts.events import Item
        >>> TypeAdapter(typed_dict_of(Item)).validate_python({"item_id": "p1", "price": 3})
        {'item_id': 'p1', 'price': 3.0}
    """
    fields: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = _mirror_type(field.annotation)
        if not field.is_required():
            if field.default is not None:
                raise TypeError(f"{model.__name__}.{name}: a non-None default cannot be mirrored")
            annotation = _not_none(annotation)
        if field.metadata:
            annotation = Annotated[(annotation, *field.metadata)]
        fields[name] = Required[annotation] if field.is_required() else NotRequired[annotation]
    make_typed_dict: Any = TypedDict  # the functional form, with a name built at run time
    mirror = make_typed_dict(f"{model.__name__}Fields", fields)
    mirror.__pydantic_config__ = ConfigDict(extra=model.model_config.get("extra"))
    return mirror


class _ClientEventView:
    """A validated event dict read as a ClientEvent instance, for the model's own rules: the
    dict is the instance's ``__dict__``, every field absent from it reads None."""


for _name in ClientEvent.model_fields:
    setattr(_ClientEventView, _name, None)


@cache
def _fast_client_event() -> tuple[TypeAdapter[dict[str, Any]], list[Callable[[Any], Any]]]:
    return TypeAdapter(typed_dict_of(ClientEvent)), _rules_of(ClientEvent)


def _validate(event: Mapping[str, Any]) -> dict[str, Any]:
    """Validate one client event; the validated fields (None dropped) as a dict.

    Exactly ``ClientEvent.model_validate(event).model_dump(exclude_none=True)``, or its error:
    the mirror validates the common case into a dict and the model's rules check it; anything
    either refuses (or a null) is validated by the model itself, so an error is always the
    model's own.
    """
    adapter, rules = _fast_client_event()
    try:
        valid = adapter.validate_python(event)
        view = _ClientEventView()
        view.__dict__ = valid
        for rule in rules:
            rule(view)
    except (ValidationError, ValueError):
        return ClientEvent.model_validate(event).model_dump(exclude_none=True)
    return valid


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
