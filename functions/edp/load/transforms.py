"""Pure stream-load transforms shared by the Beam job and the local loader.

A message on the ``events`` topic carries one or more accepted events as newline-delimited
JSON (``docs/architecture.md``, "Conventions"). Loading it into ``raw.user_events`` is five pure
steps, each usable alone and all of them free of I/O:

1. :func:`split_lines` - the message body into its non-empty lines;
2. :func:`parse_line` - one line into a JSON object (or a ``parse_error`` dead letter);
3. :meth:`RawRowMapper.to_row` - validate the object against the raw table's schema and
   normalise it (types coerced, timestamps to UTC epoch microseconds, ``device_type``
   canonicalised, unknown keys dropped), producing a row whose keys are exactly the table's
   columns; a bad row raises :class:`RowRejected`, which becomes a typed :class:`DeadLetter`;
4. :class:`EventIdDeduper` / :func:`dedup_by_event_id` - drop repeats of an ``event_id``;
5. :meth:`RawRowMapper.to_arrow` / :func:`dead_letters_to_arrow` - columnar batches for the
   warehouse's ``load_arrow``.

:func:`process_message` chains 1-3 for one Pub/Sub message. The column list, types and required
fields all come from the schema catalogue (``schemas/tables/raw/user_events.yaml``), so a column
added there is loaded without touching this module.

Timestamps inside rows are ``int`` microseconds since the Unix epoch in UTC: that is what Arrow's
``timestamp("us", tz="UTC")`` stores, so building a batch costs no per-value conversion.

Example:
    >>> mapper = RawRowMapper.for_table(_example_spec(), validate_contract=False)
    >>> message = PubsubEnvelope(
    ...     data=b'{"event_id": "e1", "event_type": "page_view",'
    ...     b' "event_timestamp": "2026-01-02T03:04:05+09:00", "device_type": "iOS"}\\n{oops',
    ...     message_id="m1",
    ...     publish_time_us=0,
    ... )
    >>> batch = process_message(message, mapper)
    >>> batch.rows[0]["event_timestamp"], batch.rows[0]["device_type"]
    (1767290645000000, 'mobile')
    >>> batch.dead_letters[0].error_type, batch.dead_letters[0].line
    ('parse_error', 1)
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final, Literal

import orjson
import pyarrow as pa
from pydantic import ValidationError

from edp.contracts.catalog import FieldSpec, TableSpec
from edp.contracts.events import EnrichedEvent
from edp.errors import ContractError
from edp.warehouse.arrow_schema import arrow_schema

RAW_TABLE: Final = "raw.user_events"
ERRORS_TABLE: Final = "raw.user_events_errors"

ErrorType = Literal["parse_error", "schema_violation", "size_violation", "insert_error"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DATE = date(1970, 1, 1)
_US_PER_S = 1_000_000
# Epoch numbers above this are milliseconds (or finer), below it seconds: 1e11 s is year 5138.
_SECONDS_CEILING = 100_000_000_000
# BigQuery's TIMESTAMP range (0001-01-01 .. 9999-12-31) in microseconds.
_MIN_TS_US = -62_135_596_800_000_000
_MAX_TS_US = 253_402_300_799_999_999
MAX_LINE_BYTES: Final = 1024 * 1024
MAX_PAYLOAD_CHARS: Final = 64 * 1024  # raw.user_events_errors.payload is truncated to 64 KiB
MAX_REASON_CHARS: Final = 1000

# Spellings clients and SDKs send, to the contract's device types (a test checks the values).
_DEVICE_ALIASES: Final[Mapping[str, str]] = {
    "mobile": "mobile",
    "phone": "mobile",
    "smartphone": "mobile",
    "ios": "mobile",
    "iphone": "mobile",
    "android": "mobile",
    "mobileapp": "mobile",
    "app": "mobile",
    "tablet": "tablet",
    "ipad": "tablet",
    "desktop": "desktop",
    "pc": "desktop",
    "web": "desktop",
    "computer": "desktop",
    "mac": "desktop",
    "windows": "desktop",
    "linux": "desktop",
    "bot": "bot",
    "crawler": "bot",
    "spider": "bot",
    "unknown": "unknown",
    "other": "unknown",
}
# Columns the loader fills itself when the raw table has them (not taken from the event).
MESSAGE_ID_COLUMNS: Final = ("pubsub_message_id", "message_id")
PUBLISH_TIME_COLUMNS: Final = ("pubsub_publish_time", "publish_time")
LOADED_AT_COLUMNS: Final = ("loaded_at",)


class RowRejected(ContractError):  # noqa: N818 - it is an outcome, not a crash
    """One event does not fit the raw table; carries the dead-letter type and reason."""

    def __init__(self, error_type: ErrorType, reason: str) -> None:
        super().__init__(reason)
        self.error_type: ErrorType = error_type
        self.reason = reason


@dataclass(frozen=True, slots=True)
class PubsubEnvelope:
    """What the loader needs of one Pub/Sub message (any client's message type maps here).

    ``publish_time_us`` is the Pub/Sub publish time in UTC epoch microseconds.
    """

    data: bytes
    message_id: str
    publish_time_us: int
    attributes: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A typed failure record, one per refused line (Snowplow-style bad row).

    Attributes:
        error_type: ``parse_error`` (not a JSON object), ``schema_violation`` (missing or
            mistyped field), ``size_violation`` (line too large), ``insert_error`` (the
            warehouse refused the row).
        reason: human-readable, names the field.
        payload: the original line, decoded as UTF-8 with replacement characters.
        message_id: the Pub/Sub message that carried it.
        line: 0-based line number inside the message (-1 when not known: insert errors).
        publish_time_us: Pub/Sub publish time (UTC epoch microseconds).
        event_id: the event's id when it could be read, else None.
        ingested_at_us: the event's ``ingested_at`` when it could be read, else None.
    """

    error_type: ErrorType
    reason: str
    payload: str
    message_id: str
    line: int
    publish_time_us: int
    event_id: str | None = None
    ingested_at_us: int | None = None

    @property
    def stage(self) -> str:
        """Where it failed: ``parse`` (not a JSON object, too large), ``validate`` or
        ``insert`` (the warehouse refused a row that passed validation)."""
        return {"schema_violation": "validate", "insert_error": "insert"}.get(
            self.error_type, "parse"
        )

    @property
    def error_id(self) -> str:
        """Stable identity of this failure: the same line redelivered gets the same id.

        Example:
            >>> DeadLetter("parse_error", "x", "{", "m9", 3, 0).error_id
            'm9:3'
            >>> DeadLetter("insert_error", "x", "{}", "m9", -1, 0, event_id="e7").error_id
            'm9:e7'
        """
        if self.line < 0:  # a row refused at insert: the line number is no longer known
            return f"{self.message_id}:{self.event_id}"
        return f"{self.message_id}:{self.line}"


@dataclass(slots=True)
class ParsedBatch:
    """Rows ready for the raw table plus the dead letters of the same input."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def extend(self, other: ParsedBatch) -> None:
        """Append another batch's rows and dead letters."""
        self.rows.extend(other.rows)
        self.dead_letters.extend(other.dead_letters)

    def __len__(self) -> int:
        return len(self.rows) + len(self.dead_letters)


# --- step 1 and 2: split and parse ---------------------------------------------------------------


def split_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """The non-blank lines of an ndjson body with their 0-based line numbers.

    Example:
        >>> list(split_lines(b'{"a": 1}\\n\\n{"b": 2}\\r\\n'))
        [(0, b'{"a": 1}'), (2, b'{"b": 2}')]
    """
    for number, line in enumerate(data.split(b"\n")):
        stripped = line.strip()
        if stripped:
            yield number, stripped


def parse_line(line: bytes) -> dict[str, Any]:
    """One ndjson line to a JSON object; raises :class:`RowRejected` otherwise.

    Example:
        >>> parse_line(b'{"event_id": "e1"}')
        {'event_id': 'e1'}
        >>> parse_line(b"[1]")
        Traceback (most recent call last):
        ...
        edp.load.transforms.RowRejected: expected a JSON object, got list
    """
    if len(line) > MAX_LINE_BYTES:
        raise RowRejected("size_violation", f"line of {len(line)} bytes > {MAX_LINE_BYTES}")
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise RowRejected("parse_error", f"invalid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RowRejected("parse_error", f"expected a JSON object, got {type(value).__name__}")
    return value


# --- step 3: validate and normalise --------------------------------------------------------------


def to_utc_micros(value: Any) -> int:
    """A timestamp (ISO-8601 text, epoch s/ms/us number, or datetime) as UTC epoch microseconds.

    Naive times are taken as UTC. Epoch numbers: below 1e11 seconds, below 1e14 milliseconds,
    else microseconds.

    Example:
        >>> to_utc_micros("2026-01-01T09:00:00+09:00")
        1767225600000000
        >>> to_utc_micros("2026-01-01 00:00:00.5Z"), to_utc_micros(1767225600123)
        (1767225600500000, 1767225600123000)
    """
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"not an ISO-8601 timestamp: {value[:64]!r}") from None
        return _datetime_micros(parsed)
    if isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError("not a finite number")
        magnitude = abs(value)
        if magnitude < _SECONDS_CEILING:
            micros = round(value * _US_PER_S)
        elif magnitude < _SECONDS_CEILING * 1000:
            micros = round(value * 1000)
        else:
            micros = int(value)
        return _check_range(micros)
    if isinstance(value, datetime):
        return _datetime_micros(value)
    raise ValueError(f"a {type(value).__name__} is not a timestamp")


def _datetime_micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return _check_range((delta.days * 86_400 + delta.seconds) * _US_PER_S + delta.microseconds)


def _check_range(micros: int) -> int:
    if not _MIN_TS_US <= micros <= _MAX_TS_US:
        raise ValueError("timestamp outside 0001-01-01 .. 9999-12-31")
    return micros


def micros_to_datetime(micros: int) -> datetime:
    """Inverse of :func:`to_utc_micros` (an aware UTC datetime).

    Example:
        >>> micros_to_datetime(1767225600000000).isoformat()
        '2026-01-01T00:00:00+00:00'
    """
    return datetime.fromtimestamp(micros // _US_PER_S, tz=UTC).replace(
        microsecond=micros % _US_PER_S
    )


def now_micros() -> int:
    """The wall clock as UTC epoch microseconds."""
    return time.time_ns() // 1000


def normalise_device_type(value: Any) -> str:
    """Canonical device_type (``mobile``, ``desktop``, ``tablet``, ``bot``, ``unknown``) from
    what clients and SDKs send.

    Example:
        >>> normalise_device_type(" iPhone "), normalise_device_type("Mobile-App")
        ('mobile', 'mobile')
        >>> normalise_device_type(None), normalise_device_type("toaster")
        ('unknown', 'unknown')
    """
    if not isinstance(value, str):
        return "unknown"
    key = value.strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    return _DEVICE_ALIASES.get(key, "unknown")


Converter = Callable[[Any], Any]


def _to_string(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a string, got a boolean")
    if isinstance(value, int | float):
        return str(value)
    raise ValueError(f"expected a string, got {type(value).__name__}")


def _to_int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer, got a boolean")
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer out of INT64 range")
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return _to_int(int(value.strip()))
        except ValueError:
            pass
    raise ValueError(f"expected an integer, got {value!r:.40}")


def _to_float(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise ValueError(f"expected a number, got {value!r:.40}") from None
    else:
        raise ValueError(f"expected a number, got {type(value).__name__}")
    if not math.isfinite(result):
        raise ValueError("expected a finite number")
    return result


def _to_decimal(scale: int) -> Converter:
    quantum = Decimal(1).scaleb(-scale)

    def convert(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
            raise ValueError(f"expected a decimal number, got {type(value).__name__}")
        try:
            number = Decimal(str(value).strip())
            if not number.is_finite():
                raise ValueError("expected a finite decimal")
            return number.quantize(quantum)
        except InvalidOperation:
            raise ValueError(f"expected a decimal number, got {value!r:.40}") from None

    return convert


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"expected a boolean, got {value!r:.40}")


def _to_date_days(value: Any) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip()[:10])
        except ValueError:
            raise ValueError(f"not an ISO date: {value[:32]!r}") from None
    if isinstance(value, date):
        return value
    raise ValueError(f"a {type(value).__name__} is not a date")


def _to_json_text(value: Any) -> str:
    if isinstance(value, str):
        return value if _is_json(value) else orjson.dumps(value).decode()
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _is_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return False
    return True


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise ValueError(f"expected bytes, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class _Column:
    name: str
    required: bool
    repeated: bool
    convert: Converter


def _scalar_converter(spec: FieldSpec) -> Converter:  # noqa: PLR0911 - one per type
    match spec.type:
        case "STRING":
            return _to_string
        case "INT64":
            return _to_int
        case "FLOAT64":
            return _to_float
        case "NUMERIC" | "BIGNUMERIC":
            return _to_decimal(spec.scale if spec.scale is not None else 9)
        case "BOOL":
            return _to_bool
        case "TIMESTAMP":
            return to_utc_micros
        case "DATE":
            return _to_date_days
        case "JSON":
            return _to_json_text
        case "BYTES":
            return _to_bytes
        case "RECORD":
            return _record_converter(spec.fields)
        case other:  # TIME, DATETIME: kept as text, BigQuery parses them
            return _text_of(other)


def _text_of(kind: str) -> Converter:
    def convert(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected {kind} text, got {type(value).__name__}")
        return value

    return convert


def _compile(fields: Sequence[FieldSpec]) -> tuple[_Column, ...]:
    return tuple(
        _Column(
            name=f.name,
            required=f.mode == "REQUIRED",
            repeated=f.mode == "REPEATED",
            convert=_scalar_converter(f),
        )
        for f in fields
    )


def _convert_columns(
    columns: Sequence[_Column], source: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    row: dict[str, Any] = {}
    for column in columns:
        value = source.get(column.name)
        if value is None:
            if column.required:
                raise RowRejected("schema_violation", f"{prefix}{column.name}: required, missing")
            row[column.name] = [] if column.repeated else None
            continue
        try:
            if column.repeated:
                if not isinstance(value, list):
                    raise ValueError(f"expected an array, got {type(value).__name__}")
                row[column.name] = [column.convert(v) for v in value if v is not None]
            else:
                row[column.name] = column.convert(value)
        except RowRejected as exc:
            raise RowRejected(exc.error_type, f"{prefix}{column.name}.{exc.reason}") from None
        except (ValueError, TypeError, OverflowError) as exc:
            raise RowRejected("schema_violation", f"{prefix}{column.name}: {exc}") from None
    return row


def _record_converter(fields: Sequence[FieldSpec]) -> Converter:
    columns = _compile(fields)

    def convert(value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise ValueError(f"expected an object, got {type(value).__name__}")
        return _convert_columns(columns, value, "")

    return convert


_ONE_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class _FastPlan:
    """Row building from an already validated contract model (its values are typed already).

    Used when every raw column maps onto an ``EnrichedEvent`` field with a compatible
    requiredness, which is the case for the catalogue's raw.user_events: then the columns need
    no per-value coercion, only timestamps -> micros, JSON -> text and records -> dicts.
    """

    names: tuple[str, ...]
    timestamps: tuple[str, ...]
    json: tuple[str, ...]
    records: tuple[tuple[str, bool], ...]  # (name, repeated)

    @classmethod
    def of(cls, fields: Sequence[FieldSpec]) -> _FastPlan | None:
        """The plan for these columns, or None when the contract model does not cover them."""
        model_fields = EnrichedEvent.model_fields
        for f in fields:
            declared = model_fields.get(f.name)
            if declared is None or (f.mode == "REQUIRED" and not declared.is_required()):
                return None
            if f.type == "RECORD" and not _record_covered(f, declared.annotation):
                return None
        return cls(
            names=tuple(f.name for f in fields),
            timestamps=tuple(f.name for f in fields if f.type == "TIMESTAMP"),
            json=tuple(f.name for f in fields if f.type == "JSON"),
            records=tuple((f.name, f.mode == "REPEATED") for f in fields if f.type == "RECORD"),
        )

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        row = {name: values.get(name) for name in self.names}
        for name in self.timestamps:
            moment = row[name]
            if moment is not None:
                row[name] = (moment - _EPOCH) // _ONE_US
        for name in self.json:
            if row[name] is not None:
                row[name] = orjson.dumps(row[name], option=orjson.OPT_SORT_KEYS).decode()
        for name, repeated in self.records:
            value = row[name]
            if value is None:
                row[name] = [] if repeated else None
            elif repeated:
                row[name] = [dict(item.__dict__) for item in value]
            else:
                row[name] = dict(value.__dict__)
        return row


def _record_covered(spec: FieldSpec, annotation: Any) -> bool:
    """Whether a RECORD column's sub-fields are all fields of the model type inside
    ``annotation`` (``list[Item] | None`` -> ``Item``) with compatible requiredness."""
    from typing import get_args

    candidates = [annotation, *get_args(annotation)]
    for candidate in list(candidates):
        candidates.extend(get_args(candidate))
    for candidate in candidates:
        sub_fields = getattr(candidate, "model_fields", None)
        if isinstance(sub_fields, dict):
            return all(
                f.name in sub_fields
                and f.type not in ("TIMESTAMP", "JSON", "RECORD")
                and (f.mode != "REQUIRED" or sub_fields[f.name].is_required())
                for f in spec.fields
            )
    return False


def _contract_reason(exc: ValidationError) -> str:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or "event"
    more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _first_present(names: Iterable[str], candidates: Sequence[str]) -> str | None:
    present = set(names)
    return next((c for c in candidates if c in present), None)


@dataclass(frozen=True)
class RawRowMapper:
    """Validates and normalises events into rows of one raw table (built once, reused).

    The loader-owned columns (Pub/Sub message id, publish time, load time) are filled from the
    envelope when the table declares them; every other column comes from the event.
    """

    table: TableSpec
    columns: tuple[_Column, ...]
    schema: pa.Schema
    message_id_column: str | None
    publish_time_column: str | None
    loaded_at_column: str | None
    validate_contract: bool = True
    fast: _FastPlan | None = None

    @classmethod
    def for_table(cls, table: TableSpec, *, validate_contract: bool = True) -> RawRowMapper:
        """Compile the mapper of a table spec (usually ``raw.user_events``)."""
        names = table.column_names
        if "event_id" not in names:
            raise ContractError(f"{table.ref} has no event_id column to deduplicate on")
        own = {
            "message": _first_present(names, MESSAGE_ID_COLUMNS),
            "publish": _first_present(names, PUBLISH_TIME_COLUMNS),
            "loaded": _first_present(names, LOADED_AT_COLUMNS),
        }
        owned = {name for name in own.values() if name}
        fields = [f for f in table.fields if f.name not in owned]
        return cls(
            table=table,
            columns=_compile(fields),
            schema=arrow_schema(table),
            message_id_column=own["message"],
            publish_time_column=own["publish"],
            loaded_at_column=own["loaded"],
            validate_contract=validate_contract,
            fast=_FastPlan.of(fields) if validate_contract else None,
        )

    def to_row(
        self,
        event: Mapping[str, Any],
        envelope: PubsubEnvelope | None = None,
        loaded_at_us: int | None = None,
    ) -> dict[str, Any]:
        """Validate and normalise one event into a raw row; raises :class:`RowRejected`.

        ``device_type`` is canonicalised first, then the event is validated against the event
        contract (``EnrichedEvent``, what ingest publishes: unknown keys, bad names and the
        cross-field rules are refused) unless ``validate_contract`` is off, then each column
        is coerced to the raw table's type.
        """
        if "device_type" in event:
            event = {**event, "device_type": normalise_device_type(event["device_type"])}
        if self.validate_contract:
            try:
                model = EnrichedEvent.model_validate(event)
            except ValidationError as exc:
                raise RowRejected("schema_violation", _contract_reason(exc)) from None
            row = (
                self.fast.row(model.__dict__)
                if self.fast is not None
                else _convert_columns(self.columns, event, "")
            )
        else:
            row = _convert_columns(self.columns, event, "")
        event_id = row.get("event_id")
        if not event_id or len(event_id) > 128:
            raise RowRejected("schema_violation", "event_id: must be 1-128 characters")
        if self.message_id_column:
            row[self.message_id_column] = envelope.message_id if envelope else None
        if self.publish_time_column:
            row[self.publish_time_column] = envelope.publish_time_us if envelope else None
        if self.loaded_at_column:
            row[self.loaded_at_column] = loaded_at_us
        return row

    def stamp_loaded_at(self, rows: Iterable[dict[str, Any]], loaded_at_us: int) -> None:
        """Set the load time of rows about to be written (no-op without such a column)."""
        if self.loaded_at_column:
            for row in rows:
                row[self.loaded_at_column] = loaded_at_us

    def to_arrow(self, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
        """Rows (from :meth:`to_row`) as an Arrow table with the raw table's exact schema."""
        return rows_to_arrow(rows, self.schema)


# --- dead letters --------------------------------------------------------------------------------


def dead_letter_row(dead: DeadLetter, errors_table: TableSpec, failed_at_us: int) -> dict[str, Any]:
    """A dead letter as a row of ``raw.user_events_errors`` (whatever of its columns exist).

    Example:
        >>> dead = DeadLetter("schema_violation", "event_id: required", "{}", "m1", 0, 5)
        >>> row = dead_letter_row(dead, _example_errors_spec(), failed_at_us=9)
        >>> row["error_id"], row["error_type"], row["payload"], row["failed_at"]
        ('m1:0', 'schema_violation', '{}', 9)
    """
    payload = dead.payload
    if len(payload) > MAX_PAYLOAD_CHARS:
        payload = payload[:MAX_PAYLOAD_CHARS]
    values: dict[str, Any] = {
        "error_id": dead.error_id,
        "message_id": dead.message_id,
        "pubsub_message_id": dead.message_id,
        "line": dead.line,
        "event_id": dead.event_id,
        "error_type": dead.error_type,
        "reason": dead.reason,
        "payload": payload,
        "publish_time": dead.publish_time_us,
        "pubsub_publish_time": dead.publish_time_us,
        "ingested_at": dead.ingested_at_us,
        "failed_at": failed_at_us,
        "loaded_at": failed_at_us,
        "stage": dead.stage,
    }
    row = {f.name: values.get(f.name) for f in errors_table.fields}
    for f in errors_table.fields:
        value = row[f.name]
        if value is None:
            continue
        if f.type == "STRING" and not isinstance(value, str):
            row[f.name] = str(value)
        elif f.type == "JSON":  # the payload may be broken JSON: keep it as a JSON string value
            row[f.name] = _to_json_text(value)
    return row


def dead_letters_to_arrow(
    dead_letters: Sequence[DeadLetter], errors_table: TableSpec, failed_at_us: int
) -> pa.Table:
    """Dead letters as an Arrow table of ``raw.user_events_errors``."""
    rows = [dead_letter_row(d, errors_table, failed_at_us) for d in dead_letters]
    return rows_to_arrow(rows, arrow_schema(errors_table))


def rows_to_arrow(rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows already normalised to a table's types (micros for timestamps) as Arrow.

    Example:
        >>> rows_to_arrow([{"a": 1}, {"a": None}], pa.schema([("a", pa.int64())])).num_rows
        2
    """
    return pa.Table.from_pylist(list(rows), schema=schema)  # C++ loop: ~2.5x a column-wise build


# --- one message ---------------------------------------------------------------------------------


def process_message(
    envelope: PubsubEnvelope, mapper: RawRowMapper, loaded_at_us: int | None = None
) -> ParsedBatch:
    """Parse, validate and normalise every line of one Pub/Sub message."""
    batch = ParsedBatch()
    for number, line in split_lines(envelope.data):
        event: dict[str, Any] | None = None
        try:
            event = parse_line(line)
            batch.rows.append(mapper.to_row(event, envelope, loaded_at_us))
        except RowRejected as exc:
            event_id = event.get("event_id") if event is not None else None
            batch.dead_letters.append(
                DeadLetter(
                    error_type=exc.error_type,
                    reason=exc.reason[:MAX_REASON_CHARS],
                    payload=line.decode("utf-8", errors="replace"),
                    message_id=envelope.message_id,
                    line=number,
                    publish_time_us=envelope.publish_time_us,
                    event_id=event_id[:128] if isinstance(event_id, str) else None,
                    ingested_at_us=_maybe_micros(event.get("ingested_at") if event else None),
                )
            )
    return batch


def _maybe_micros(value: Any) -> int | None:
    try:
        return to_utc_micros(value) if value is not None else None
    except ValueError:
        return None


def process_messages(
    envelopes: Iterable[PubsubEnvelope], mapper: RawRowMapper, loaded_at_us: int | None = None
) -> ParsedBatch:
    """:func:`process_message` over many messages, concatenated."""
    batch = ParsedBatch()
    for envelope in envelopes:
        batch.extend(process_message(envelope, mapper, loaded_at_us))
    return batch


# --- step 4: dedup -------------------------------------------------------------------------------


def dedup_by_event_id(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The first row of each event_id, in input order.

    Example:
        >>> [r["n"] for r in dedup_by_event_id([
        ...     {"event_id": "a", "n": 1}, {"event_id": "b", "n": 2}, {"event_id": "a", "n": 3}])]
        [1, 2]
    """
    seen: set[str] = set()
    kept: list[Mapping[str, Any]] = []
    for row in rows:
        event_id = row["event_id"]
        if event_id not in seen:
            seen.add(event_id)
            kept.append(row)
    return kept


class EventIdDeduper:
    """Remembers event ids for a bounded horizon and filters repeats (not thread-safe).

    Ids are forgotten ``horizon_s`` seconds after they were first seen (insertion order is
    time order, so expiry pops from the front of an ordered dict); ``max_ids`` bounds memory
    whatever the traffic.

    Example:
        >>> deduper = EventIdDeduper(horizon_s=60)
        >>> [r["event_id"] for r in deduper.filter([{"event_id": "a"}, {"event_id": "a"}], now=0)]
        ['a']
        >>> deduper.filter([{"event_id": "a"}], now=30)
        []
        >>> len(deduper.filter([{"event_id": "a"}], now=61))
        1
    """

    def __init__(self, horizon_s: float, max_ids: int = 5_000_000) -> None:
        self.horizon_s = horizon_s
        self.max_ids = max_ids
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._seen

    def remember(self, event_ids: Iterable[str], now: float | None = None) -> None:
        """Mark ids as already loaded (e.g. warm-up from the warehouse after a restart)."""
        moment = time.monotonic() if now is None else now
        for event_id in event_ids:
            if event_id not in self._seen:
                self._seen[event_id] = moment
        self._expire(moment)

    def filter(
        self, rows: Iterable[dict[str, Any]], now: float | None = None
    ) -> list[dict[str, Any]]:
        """Rows whose event_id was not seen within the horizon; remembers the kept ones."""
        moment = time.monotonic() if now is None else now
        self._expire(moment)
        seen = self._seen
        kept: list[dict[str, Any]] = []
        for row in rows:
            event_id = row["event_id"]
            if event_id not in seen:
                seen[event_id] = moment
                kept.append(row)
        return kept

    def keep_mask(self, event_ids: Sequence[str], now: float | None = None) -> list[bool]:
        """Per id, whether it is new (first within the horizon); remembers the new ones.

        Example:
            >>> EventIdDeduper(horizon_s=60).keep_mask(["a", "b", "a"], now=0)
            [True, True, False]
        """
        moment = time.monotonic() if now is None else now
        self._expire(moment)
        seen = self._seen
        mask: list[bool] = []
        for event_id in event_ids:
            new = event_id not in seen
            if new:
                seen[event_id] = moment
            mask.append(new)
        return mask

    def forget(self, event_ids: Iterable[str]) -> None:
        """Un-remember ids whose write failed, so their redelivery is loaded."""
        for event_id in event_ids:
            self._seen.pop(event_id, None)

    def _expire(self, now: float) -> None:
        seen = self._seen
        cutoff = now - self.horizon_s
        while seen:
            first_seen = next(iter(seen.values()))
            if first_seen > cutoff and len(seen) <= self.max_ids:
                break
            seen.popitem(last=False)


# --- examples for the doctests -------------------------------------------------------------------


def _example_spec() -> TableSpec:
    return TableSpec.model_validate(
        {
            "dataset": "raw",
            "name": "user_events",
            "description": "example",
            "fields": [
                {"name": "event_id", "type": "STRING", "mode": "REQUIRED", "description": "id"},
                {"name": "event_type", "type": "STRING", "mode": "REQUIRED", "description": "t"},
                {
                    "name": "event_timestamp",
                    "type": "TIMESTAMP",
                    "mode": "REQUIRED",
                    "description": "ts",
                },
                {"name": "device_type", "type": "STRING", "description": "device"},
            ],
        }
    )


def _example_errors_spec() -> TableSpec:
    names = ("error_id", "error_type", "reason", "payload")
    return TableSpec.model_validate(
        {
            "dataset": "raw",
            "name": "user_events_errors",
            "description": "example",
            "fields": [{"name": n, "type": "STRING", "description": n} for n in names]
            + [{"name": "failed_at", "type": "TIMESTAMP", "description": "when"}],
        }
    )
