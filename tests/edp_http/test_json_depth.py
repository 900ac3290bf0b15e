"""The depth guard of request JSON: exact at the limit, whatever the strings contain.

The reference is RFC 8259's grammar written as a recursion (``_value_depth`` below: an array
or object is one level deeper than its container; a scalar adds none), not the iterative walk
under test, and every case goes through the real parser from the bytes a client sends.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edp.http.reader import TooDeepError, json_depth_exceeds, parse_json


def _value_depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max((_value_depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_value_depth(v) for v in value), default=0)
    return 0


# Integers within what orjson serialises (64 bits); strings full of what could fool a scanner:
# brackets, quotes, backslashes, escapes.
_tricky = st.text(alphabet=st.sampled_from('[]{}"\\/ab\n\t\u00e9\u2028'), max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | _tricky,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(_tricky, children, max_size=4)
    ),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(_json, st.booleans())
def test_the_guard_refuses_exactly_past_the_depth(value: object, pretty: bool) -> None:
    # orjson's compact form and the stdlib's indented one (whitespace between tokens)
    raw = json.dumps(value, indent=2).encode() if pretty else orjson.dumps(value)
    depth = _value_depth(orjson.loads(raw))
    for limit in (d for d in (depth - 1, depth, depth + 1) if d >= 0):
        assert json_depth_exceeds(orjson.loads(raw), limit) is (depth > limit)
        if depth > limit:
            with pytest.raises(TooDeepError):
                parse_json(raw, max_depth=limit)
        else:
            assert parse_json(raw, max_depth=limit) == orjson.loads(raw)


def test_brackets_inside_strings_are_not_structure() -> None:
    # by hand: the only structure is the outer object and one array -> depth 2
    raw = rb'{"k\\": ["\"[[[", "\\\\", "\\\"{"]}'
    assert orjson.loads(raw) == {"k\\": ['"[[[', "\\\\", '\\"{']}
    assert parse_json(raw, max_depth=2) == orjson.loads(raw)
    with pytest.raises(TooDeepError):
        parse_json(raw, max_depth=1)


@pytest.mark.parametrize(("depth", "refused"), [(64, False), (65, True)])
def test_parse_json_refuses_past_the_limit(depth: int, refused: bool) -> None:
    raw = b"[" * depth + b"]" * depth
    if refused:
        with pytest.raises(TooDeepError):
            parse_json(raw, max_depth=64)
    else:
        assert parse_json(raw, max_depth=64) is not None
