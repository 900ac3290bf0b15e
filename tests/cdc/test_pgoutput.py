"""The pgoutput decoder, on hand-built protocol messages (layouts from the PostgreSQL manual)."""

from __future__ import annotations

import struct

import pytest

from edp_tools.cdc import pgoutput as pg


def _s(text: str) -> bytes:
    return text.encode() + b"\x00"


def _tuple(*values: str | object | None) -> bytes:
    out = struct.pack(">h", len(values))
    for value in values:
        if value is None:
            out += b"n"
        elif value is pg.UNCHANGED_TOAST:
            out += b"u"
        else:
            raw = str(value).encode()
            out += b"t" + struct.pack(">i", len(raw)) + raw
    return out


CASES = [
    (
        "begin",
        b"B" + struct.pack(">QqI", 0x1_0000_0010, 1_000_000, 42),
        pg.Begin(final_lsn=0x1_0000_0010, commit_ts_us=pg.PG_EPOCH_OFFSET_US + 1_000_000, xid=42),
    ),
    (
        "commit",
        b"C" + struct.pack(">bQQq", 0, 100, 120, 5),
        pg.Commit(flags=0, commit_lsn=100, end_lsn=120, commit_ts_us=pg.PG_EPOCH_OFFSET_US + 5),
    ),
    (
        "relation",
        b"R"
        + struct.pack(">I", 16384)
        + _s("shop")
        + _s("orders")
        + b"f"
        + struct.pack(">h", 2)
        + b"\x01"
        + _s("order_id")
        + struct.pack(">Ii", 20, -1)
        + b"\x00"
        + _s("total")
        + struct.pack(">Ii", 1700, ((12 << 16) | 2) + 4),
        pg.Relation(
            16384,
            "shop",
            "orders",
            "f",
            (
                pg.RelationColumn(True, "order_id", 20, -1),
                pg.RelationColumn(False, "total", 1700, ((12 << 16) | 2) + 4),
            ),
        ),
    ),
    (
        "insert with unicode and NULL",
        b"I" + struct.pack(">I", 7) + b"N" + _tuple("1", "héllo 🙂", None),
        pg.Insert(7, ("1", "héllo 🙂", None)),
    ),
    (
        "update with full old row",
        b"U" + struct.pack(">I", 7) + b"O" + _tuple("1", "a") + b"N" + _tuple("1", "b"),
        pg.Update(7, ("1", "a"), ("1", "b")),
    ),
    (
        "update without old row, unchanged TOAST",
        b"U" + struct.pack(">I", 7) + b"N" + _tuple("1", pg.UNCHANGED_TOAST),
        pg.Update(7, None, ("1", pg.UNCHANGED_TOAST)),
    ),
    (
        "delete (key image)",
        b"D" + struct.pack(">I", 7) + b"K" + _tuple("1", None),
        pg.Delete(7, ("1", None)),
    ),
    (
        "truncate two tables, cascade",
        b"T" + struct.pack(">ibII", 2, 1, 7, 8),
        pg.Truncate(cascade=True, restart_identity=False, relids=(7, 8)),
    ),
    (
        "type",
        b"Y" + struct.pack(">I", 99) + _s("public") + _s("mood"),
        pg.TypeMessage(99, "public", "mood"),
    ),
    ("origin", b"O" + struct.pack(">Q", 5) + _s("node_a"), pg.Origin(5, "node_a")),
    (
        "logical message",
        b"M" + struct.pack(">bQ", 1, 9) + _s("edp") + struct.pack(">i", 3) + b"abc",
        pg.LogicalMessage(True, 9, "edp", b"abc"),
    ),
]


@pytest.mark.parametrize(("name", "payload", "expected"), CASES, ids=[c[0] for c in CASES])
def test_decodes(name: str, payload: bytes, expected: object) -> None:
    assert pg.decode_message(payload) == expected


BAD = [
    ("empty", b""),
    ("unknown type", b"Z\x00"),
    ("truncated begin", b"B\x00\x00"),
    ("insert without N", b"I" + struct.pack(">I", 7) + b"X"),
    ("binary value", b"I" + struct.pack(">I", 7) + b"N" + struct.pack(">h", 1) + b"b"),
    ("unterminated string", b"Y" + struct.pack(">I", 1) + b"abc"),
    (
        "tuple longer than message",
        b"I"
        + struct.pack(">I", 7)
        + b"N"
        + struct.pack(">h", 1)
        + b"t"
        + struct.pack(">i", 50)
        + b"x",
    ),
]


@pytest.mark.parametrize(("name", "payload"), BAD, ids=[b[0] for b in BAD])
def test_malformed_messages_raise(name: str, payload: bytes) -> None:
    with pytest.raises(pg.PgOutputError):
        pg.decode_message(payload)


@pytest.mark.parametrize("lsn", [0, 1, 0x16B3748, 0xFFFF_FFFF, 0x1_0000_0000, 0xABCD_0000_1234])
def test_lsn_text_round_trip(lsn: int) -> None:
    assert pg.parse_lsn(pg.format_lsn(lsn)) == lsn
