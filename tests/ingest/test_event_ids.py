"""Server-generated event ids are RFC 9562 version-4 UUIDs in canonical form, all distinct."""

from __future__ import annotations

import uuid

from edp.ingest.core import new_event_id


def test_generated_ids_are_canonical_random_uuids() -> None:
    ids = [new_event_id() for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == text  # lowercase, 8-4-4-4-12
    # every one of the 122 random bits varies (none stuck at 0 or 1 by a masking mistake)
    ored = anded = int(uuid.UUID(ids[0]))
    for text in ids[1:]:
        value = int(uuid.UUID(text))
        ored |= value
        anded &= value
    fixed = (0xF << 76) | (0x3 << 62)  # version nibble and variant bits
    assert (ored ^ anded) == ((1 << 128) - 1) & ~fixed
