"""The model generator: refuses what it cannot translate instead of dropping a constraint."""

from __future__ import annotations

from typing import Any

import pytest

from edp.errors import ContractError
from edp_tools.contracts.codegen import generate_models


def _obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"$defs": {"Thing": {"type": "object", "properties": props, **extra}}}


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (_obj({"a": {"type": "string", "format": "email", "description": "A."}}), "format"),
        (_obj({"a": {"type": "string", "multipleOf": 2, "description": "A."}}), "multipleOf"),
        (_obj({"a": {"type": ["string", "integer"], "description": "A."}}), "union"),
        (_obj({"a": {"type": "string", "description": "A."}}), "must allow null"),
        (_obj({"a": {"type": ["string", "null"]}}), "no description"),
        (_obj({"a": {"$ref": "other.json#/x", "description": "A."}}, required=["a"]), "local"),
        (_obj({"a": {"description": "A."}}, required=["a"]), "without a type"),
        (
            _obj(
                {
                    "a": {
                        "type": "object",
                        "properties": {"b": {"type": "string"}},
                        "description": "A.",
                    }
                },
                required=["a"],
            ),
            "inline objects",
        ),
        (_obj({}, patternProperties={"^x": {}}), "patternProperties"),
        (_obj({}, anyOf=[{"required": ["a", "b"]}]), "one field"),
        (
            _obj(
                {},
                allOf=[
                    {"if": {"properties": {"kind": {"enum": ["x"]}}}, "then": {"required": ["a"]}}
                ],
            ),
            "event_type only",
        ),
        ({"$defs": {"E": {"type": "integer", "enum": [1, 2]}}}, "string enums"),
    ],
)
def test_unsupported_constructs_raise(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(ContractError, match=message):
        generate_models(schema)


def test_generated_code_runs_and_enforces_constraints() -> None:
    schema = _obj(
        {
            "name": {"type": "string", "minLength": 2, "description": "Name."},
            "n": {"type": ["integer", "null"], "maximum": 3, "description": "N."},
        },
        required=["name"],
        additionalProperties=False,
    )
    namespace: dict[str, Any] = {}
    exec(compile(generate_models(schema), "<generated>", "exec"), namespace)
    thing = namespace["Thing"]
    thing.model_rebuild(_types_namespace=namespace)

    assert thing.model_validate({"name": "ab"}).n is None
    for bad in ({"name": "a"}, {"name": "ab", "n": 4}, {"name": "ab", "x": 1}, {}):
        with pytest.raises(ValueError):
            thing.model_validate(bad)
