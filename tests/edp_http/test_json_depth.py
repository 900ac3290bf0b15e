"""The bytes-level depth of a JSON text equals the depth of the value it parses to.

The reference is the parsed value itself, walked node by node (``_value_depth`` below, written
from RFC 8259's grammar: an array or object is one level deeper than its container; a scalar
adds none), so the text scan is checked against what the JSON means, not against itself.
"""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edp.http.reader import TooDeepError, parse_json, text_depth


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
def test_text_depth_equals_the_parsed_value_depth(value: object, pretty: bool) -> None:
    # orjson's compact form and the stdlib's indented one (whitespace between tokens)
    raw = json.dumps(value, indent=2).encode() if pretty else orjson.dumps(value)
    assert text_depth(raw) == _value_depth(orjson.loads(raw))


def test_escaped_quotes_and_backslashes_do_not_end_a_string_early() -> None:
    # by hand: the only structure is the outer object and one array -> depth 2
    raw = rb'{"k\\": ["\"[[[", "\\\\", "\\\"{"]}'
    assert orjson.loads(raw) == {"k\\": ['"[[[', "\\\\", '\\"{']}
    assert text_depth(raw) == 2


@pytest.mark.parametrize(("depth", "refused"), [(64, False), (65, True)])
def test_parse_json_refuses_past_the_limit(depth: int, refused: bool) -> None:
    raw = b"[" * depth + b"]" * depth
    if refused:
        with pytest.raises(TooDeepError):
            parse_json(raw, max_depth=64)
    else:
        assert parse_json(raw, max_depth=64) is not None
