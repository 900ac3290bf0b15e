"""A decoder of PostgreSQL's ``pgoutput`` logical replication protocol (version 1).

``pgoutput`` is the built-in output plugin Debezium uses (``plugin.name=pgoutput``). Each
replication message is one of Begin, Commit, Relation, Type, Origin, Insert, Update, Delete,
Truncate or Message; column values arrive in their *text* output form (as the session's
``TimeZone`` / ``DateStyle`` render them, which is why the reader pins both to ``UTC`` / ``ISO``).
The layout is documented in "Logical Replication Message Formats" of the PostgreSQL manual.

Hand-written because ``pypgoutput`` is broken with pydantic 2; it is also ~10x cheaper than a
generic struct parser (the reader decodes ~50 k changes/s on one core).

Example:
    >>> begin = b"B" + (100).to_bytes(8, "big") + (0).to_bytes(8, "big") + (7).to_bytes(4, "big")
    >>> decode_message(begin)
    Begin(final_lsn=100, commit_ts_us=946684800000000, xid=7)
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from edp.errors import PermanentError

#: Microseconds between the Unix epoch and PostgreSQL's epoch (2000-01-01).
PG_EPOCH_OFFSET_US = 946_684_800_000_000

_I16 = struct.Struct(">h")
_I32 = struct.Struct(">i")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")
_U64 = struct.Struct(">Q")


class PgOutputError(PermanentError):
    """A replication message that does not follow the pgoutput protocol."""


@dataclass(frozen=True, slots=True)
class Begin:
    """Start of a transaction; ``final_lsn`` is the LSN of its commit record."""

    final_lsn: int
    commit_ts_us: int  # Unix epoch microseconds
    xid: int


@dataclass(frozen=True, slots=True)
class Commit:
    """End of a transaction; acknowledge ``end_lsn`` once everything before it is durable."""

    flags: int
    commit_lsn: int
    end_lsn: int
    commit_ts_us: int


@dataclass(frozen=True, slots=True)
class RelationColumn:
    """One column of a Relation message."""

    is_key: bool
    name: str
    type_oid: int
    typmod: int


@dataclass(frozen=True, slots=True)
class Relation:
    """Describes a table; sent before the first change to it (and after any DDL)."""

    relid: int
    namespace: str
    name: str
    replica_identity: str
    columns: tuple[RelationColumn, ...]


@dataclass(frozen=True, slots=True)
class TypeMessage:
    """A non-built-in data type's name."""

    oid: int
    namespace: str
    name: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Replication origin of the transaction (only on cascaded replication)."""

    lsn: int
    name: str


#: A tuple's values: text form, or None for NULL, or :data:`UNCHANGED_TOAST`.
TupleValues = tuple["str | _Unchanged | None", ...]


class _Unchanged:
    """Marker of an unchanged TOASTed value (pgoutput sends no data for it)."""

    _instance: _Unchanged | None = None

    def __new__(cls) -> _Unchanged:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNCHANGED_TOAST"


UNCHANGED_TOAST = _Unchanged()


@dataclass(frozen=True, slots=True)
class Insert:
    relid: int
    new: TupleValues


@dataclass(frozen=True, slots=True)
class Update:
    """``old`` is the before-image (REPLICA IDENTITY FULL: every column; else None or key)."""

    relid: int
    old: TupleValues | None
    new: TupleValues


@dataclass(frozen=True, slots=True)
class Delete:
    relid: int
    old: TupleValues


@dataclass(frozen=True, slots=True)
class Truncate:
    """One TRUNCATE of one or more tables."""

    cascade: bool
    restart_identity: bool
    relids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LogicalMessage:
    """``pg_logical_emit_message`` output (only sent when the ``messages`` option is on)."""

    transactional: bool
    lsn: int
    prefix: str
    content: bytes


Message = (
    Begin
    | Commit
    | Relation
    | TypeMessage
    | Origin
    | Insert
    | Update
    | Delete
    | Truncate
    | LogicalMessage
)


class _Cursor:
    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 1  # after the message type byte

    def _need(self, n: int) -> None:
        if self.pos + n > len(self.buf):
            raise PgOutputError(
                f"truncated pgoutput message {self.buf[:1]!r}: need {n} bytes at {self.pos}"
            )

    def u8(self) -> int:
        self._need(1)
        value = self.buf[self.pos]
        self.pos += 1
        return value

    def i16(self) -> int:
        self._need(2)
        (value,) = _I16.unpack_from(self.buf, self.pos)
        self.pos += 2
        return int(value)

    def i32(self) -> int:
        self._need(4)
        (value,) = _I32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u32(self) -> int:
        self._need(4)
        (value,) = _U32.unpack_from(self.buf, self.pos)
        self.pos += 4
        return int(value)

    def u64(self) -> int:
        self._need(8)
        (value,) = _U64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(value)

    def i64(self) -> int:
        self._need(8)
        (value,) = _I64.unpack_from(self.buf, self.pos)
        self.pos += 8
        return int(value)

    def cstring(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise PgOutputError("unterminated string in pgoutput message")
        value = self.buf[self.pos : end].decode("utf-8")
        self.pos = end + 1
        return value

    def raw(self, n: int) -> bytes:
        self._need(n)
        value = self.buf[self.pos : self.pos + n]
        self.pos += n
        return value

    def tuple_data(self) -> TupleValues:
        ncols = self.i16()
        values: list[str | _Unchanged | None] = []
        for _ in range(ncols):
            kind = self.u8()
            if kind == 0x74:  # 't' text
                length = self.i32()
                values.append(self.raw(length).decode("utf-8"))
            elif kind == 0x6E:  # 'n' null
                values.append(None)
            elif kind == 0x75:  # 'u' unchanged TOAST
                values.append(UNCHANGED_TOAST)
            else:
                raise PgOutputError(f"unsupported tuple value kind {chr(kind)!r} (binary mode?)")
        return tuple(values)


def _pg_ts(value: int) -> int:
    return value + PG_EPOCH_OFFSET_US


def decode_message(payload: bytes) -> Message:  # noqa: PLR0911, PLR0912
    """Decode one pgoutput message (the payload of an XLogData replication message).

    Raises:
        PgOutputError: For an unknown message type or a malformed message.
    """
    if not payload:
        raise PgOutputError("empty pgoutput message")
    kind = payload[0]
    cur = _Cursor(payload)
    if kind == 0x42:  # B
        return Begin(final_lsn=cur.u64(), commit_ts_us=_pg_ts(cur.i64()), xid=cur.u32())
    if kind == 0x43:  # C
        return Commit(
            flags=cur.u8(), commit_lsn=cur.u64(), end_lsn=cur.u64(), commit_ts_us=_pg_ts(cur.i64())
        )
    if kind == 0x49:  # I
        relid = cur.u32()
        if cur.u8() != 0x4E:
            raise PgOutputError("Insert without a new tuple")
        return Insert(relid=relid, new=cur.tuple_data())
    if kind == 0x55:  # U
        relid = cur.u32()
        marker = cur.u8()
        old: TupleValues | None = None
        if marker in (0x4B, 0x4F):  # K (key) / O (old full row)
            old = cur.tuple_data()
            marker = cur.u8()
        if marker != 0x4E:
            raise PgOutputError("Update without a new tuple")
        return Update(relid=relid, old=old, new=cur.tuple_data())
    if kind == 0x44:  # D
        relid = cur.u32()
        marker = cur.u8()
        if marker not in (0x4B, 0x4F):
            raise PgOutputError("Delete without an old tuple")
        return Delete(relid=relid, old=cur.tuple_data())
    if kind == 0x52:  # R
        relid = cur.u32()
        namespace = cur.cstring() or "pg_catalog"
        name = cur.cstring()
        identity = chr(cur.u8())
        columns = tuple(
            RelationColumn(
                is_key=bool(cur.u8() & 1), name=cur.cstring(), type_oid=cur.u32(), typmod=cur.i32()
            )
            for _ in range(cur.i16())
        )
        return Relation(relid, namespace, name, identity, columns)
    if kind == 0x54:  # T
        nrels = cur.i32()
        options = cur.u8()
        relids = tuple(cur.u32() for _ in range(nrels))
        return Truncate(
            cascade=bool(options & 1), restart_identity=bool(options & 2), relids=relids
        )
    if kind == 0x59:  # Y
        return TypeMessage(oid=cur.u32(), namespace=cur.cstring(), name=cur.cstring())
    if kind == 0x4F:  # O
        return Origin(lsn=cur.u64(), name=cur.cstring())
    if kind == 0x4D:  # M
        flags = cur.u8()
        lsn = cur.u64()
        prefix = cur.cstring()
        length = cur.i32()
        return LogicalMessage(bool(flags & 1), lsn, prefix, cur.raw(length))
    raise PgOutputError(f"unknown pgoutput message type {chr(kind)!r}")


def format_lsn(lsn: int) -> str:
    """PostgreSQL's ``X/Y`` text form of an LSN.

    Example:
        >>> format_lsn(0x16B3748)
        '0/16B3748'
    """
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def parse_lsn(text: str) -> int:
    """Inverse of :func:`format_lsn`.

    Example:
        >>> parse_lsn("0/16B3748")
        23803720
    """
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)
