"""The one decoder: bytes -> valid readings, or quarantine records with a reason.

Used unchanged by the calibrate Lambda, the raw -> curated Glue job, `airlake validate` and the
local runtime, so a record is judged by the same rules wherever it is read.

Rules (schema version 1, see schemas/reading.v1.json):

* A payload is one JSON object (a reading) or a JSON array of up to MAX_BATCH_READINGS of them.
  Every element of an array is judged on its own.
* A leading UTF-8 byte-order mark is ignored (RFC 8259 §8.1 allows it); any other non-UTF-8
  byte quarantines the whole payload.
* A payload must not contain a raw newline byte (LF), not even a trailing one: Firehose frames the
  raw zone as one record per line, so such a record would reach the cold path in pieces. Compact
  JSON never needs one (newlines inside strings are escaped as \\n).
* Duplicated keys: the last one wins (what orjson, Python's json and Spark all do).
* `ts` is ISO-8601 with a UTC offset, or integer epoch milliseconds. It must not precede
  FLEET_EPOCH nor be more than MAX_CLOCK_SKEW_MS after the record's arrival time.
* Channel values are JSON numbers (not strings, booleans or null). Known channels must lie in
  their physical range; unknown channels are kept if finite and of sane magnitude.
* Unknown top-level fields are ignored here (they stay in the raw zone).

Nothing raises: every input produces at least one Reading or Quarantined. The decoder is the floor
of the hot path, so the accept path uses plain type checks instead of per-record pydantic models
(airlake.contract.model holds the equivalent pydantic model, and a test proves they agree).
"""

from __future__ import annotations

import json
import math
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from operator import itemgetter, le
from typing import Any, cast

import orjson

from airlake.contract.limits import (
    CHANNEL_RANGES,
    FLEET_EPOCH_MS,
    MAX_BATCH_READINGS,
    MAX_CHANNELS,
    MAX_CLOCK_SKEW_MS,
    MAX_DEVICE_ID_LENGTH,
    MAX_PAYLOAD_BYTES,
    MAX_READING_BYTES,
    MAX_SEQ,
    MAX_TEXT_LENGTH,
    UNKNOWN_CHANNEL_LIMIT,
)
from airlake.contract.reasons import Reason

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_BOM = b"\xef\xbb\xbf"
_DEVICE_ID = re.compile(r"[A-Za-z0-9._:-]+")
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_MAX_TS_TEXT = 40
# Device ids seen valid before: a set lookup is cheaper than the regex on every record.
_valid_ids: set[str] = set()
_VALID_IDS_CAP = 100_000


@dataclass(slots=True)
class Reading:
    """A reading that passed the contract. `ts_ms` is event time, UTC epoch milliseconds.

    Not frozen: a frozen dataclass's __init__ costs ~4x more, and this is built per record.
    Treat it as immutable all the same.
    """

    device_id: str
    ts_ms: int
    seq: int
    channels: dict[str, float]
    firmware: str | None = None
    model: str | None = None

    @property
    def key(self) -> tuple[str, int, int]:
        """The idempotency key (device_id, ts, seq), set by the producer."""
        return (self.device_id, self.ts_ms, self.seq)

    @property
    def ts(self) -> datetime:
        return _EPOCH + timedelta(milliseconds=self.ts_ms)

    def to_dict(self) -> dict[str, Any]:
        """The reading as wire JSON fields (ts as epoch milliseconds)."""
        out: dict[str, Any] = {
            "device_id": self.device_id,
            "ts": self.ts_ms,
            "seq": self.seq,
            "channels": self.channels,
        }
        if self.firmware is not None:
            out["firmware"] = self.firmware
        if self.model is not None:
            out["model"] = self.model
        return out


@dataclass(slots=True, frozen=True)
class Quarantined:
    """A record that could not be accepted, with why, and the bytes it came from.

    For an element of a JSON-array payload, `index` is its position and `raw` is the element
    re-serialized; the whole payload, byte for byte, is in the raw zone.
    """

    reason: Reason
    detail: str
    raw: bytes
    index: int | None = None
    device_id: str | None = None  # when the record named one, so quarantine is queryable per device


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def decode(data: bytes, *, received_ms: int | None = None) -> list[Reading | Quarantined]:
    """Decode one record's bytes into readings and quarantine records. Never raises.

    `received_ms` is when the record arrived (Kinesis approximate arrival time, Firehose
    arrival); timestamps are judged against it, so re-processing old raw data is stable.
    """
    result = decode_record(data, now_ms() if received_ms is None else received_ms)
    return [result] if isinstance(result, Reading) else result


def decode_record(data: bytes, received_ms: int) -> Reading | list[Reading | Quarantined]:
    """`decode`, with a record that is one valid reading returned as that Reading, not in a list
    (the hot path's common case, a little cheaper). Never raises."""
    return cast("Reading | list[Reading | Quarantined]", _decode_record(data, received_ms, False))


def decode_document(data: bytes, received_ms: int) -> dict[str, Any] | Reading | list[Reading | Quarantined]:
    """`decode_record`, except that a valid reading already in the contract's own wire form
    (exactly device_id, ts as integer epoch ms, seq, channels, and firmware and model when not
    null; no other field) comes back as its parsed object: the document `Reading.to_dict()` would
    make of it, up to the order of its keys. The calibrate stage writes that object on, calibrated,
    instead of building a copy. Never raises."""
    return _decode_record(data, received_ms, True)


def _decode_record(
    data: bytes, received_ms: int, as_document: bool
) -> dict[str, Any] | Reading | list[Reading | Quarantined]:
    try:
        # The common case first, inline: one reading with integer ts, a known device id, a known
        # channel layout, every field well formed. Anything else takes the full path below.
        if len(data) <= MAX_READING_BYTES and b"\n" not in data and not data.startswith(_BOM):
            try:
                parsed = orjson.loads(data)
            except orjson.JSONDecodeError:
                return _decode(data, received_ms)
            if type(parsed) is dict:
                reading = _accept(parsed, received_ms, as_document)
                if reading is not None:
                    return reading
            return _judge(parsed, data, received_ms)
        return _decode(data, received_ms)
    except Exception as exc:  # the contract is "nothing escapes": keep the record, say why
        return [Quarantined(Reason.INVALID_JSON, f"decoder error: {type(exc).__name__}: {exc}", bytes(data))]


def _decode(data: bytes, received_ms: int) -> list[Reading | Quarantined]:
    size = len(data)
    if size > MAX_PAYLOAD_BYTES:
        return [Quarantined(Reason.TOO_LARGE, f"payload is {size} bytes > {MAX_PAYLOAD_BYTES}", data)]
    body = data[3:] if data[:3] == _BOM else data
    if b"\n" in body:
        detail = "a raw newline byte: the raw zone frames records by newlines, so this record could not be stored whole"
        return [Quarantined(Reason.MULTI_LINE, detail, data)]
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return [Quarantined(_classify_json_error(body), str(exc), data)]
    return _judge(parsed, data, received_ms)


def _judge(parsed: Any, data: bytes, received_ms: int) -> list[Reading | Quarantined]:
    """The readings of a parsed payload (of at most MAX_PAYLOAD_BYTES), or why not."""
    if type(parsed) is dict:
        size = len(data)
        if size > MAX_READING_BYTES:
            return [Quarantined(Reason.TOO_LARGE, f"reading is {size} bytes > {MAX_READING_BYTES}", data)]
        return [decode_one(parsed, data, received_ms)]
    if type(parsed) is list:
        return _decode_batch(parsed, data, received_ms)
    return [Quarantined(Reason.NOT_AN_OBJECT, f"top-level JSON {type(parsed).__name__}", data)]


class _NonFiniteError(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NonFiniteError(text)
    return value


def _no_constants(text: str) -> float:
    raise _NonFiniteError(text)


def _classify_json_error(body: bytes) -> Reason:
    """Why orjson refused `body`, decided without reading orjson's message text.

    The standard library parser accepts NaN, Infinity, overflowing numbers and lone surrogate
    escapes, so re-parsing with it (on this rare path only) tells those cases apart.
    """
    if not body or body.isspace():
        return Reason.EMPTY
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return Reason.NOT_UTF8
    try:
        json.loads(text, parse_float=_finite_float, parse_constant=_no_constants)
    except _NonFiniteError:
        return Reason.NON_FINITE
    except (ValueError, RecursionError):
        return Reason.INVALID_JSON
    # The standard parser took it and orjson did not: a lone UTF-16 surrogate escape (text that
    # is not valid Unicode) or nesting deeper than orjson allows.
    if _SURROGATE_ESCAPE.search(body):
        return Reason.NOT_UTF8
    return Reason.INVALID_JSON


def _decode_batch(items: list[Any], data: bytes, received_ms: int) -> list[Reading | Quarantined]:
    if not items:
        return [Quarantined(Reason.EMPTY, "empty JSON array", data)]
    if len(items) > MAX_BATCH_READINGS:
        return [Quarantined(Reason.BATCH_TOO_LARGE, f"{len(items)} readings > {MAX_BATCH_READINGS}", data)]
    out: list[Reading | Quarantined] = []
    for index, item in enumerate(items):
        raw = orjson.dumps(item)
        if type(item) is not dict:
            out.append(Quarantined(Reason.NOT_AN_OBJECT, f"element is {type(item).__name__}", raw, index))
        elif len(raw) > MAX_READING_BYTES:
            detail = f"reading is {len(raw)} bytes > {MAX_READING_BYTES}"
            out.append(Quarantined(Reason.TOO_LARGE, detail, raw, index))
        else:
            result = decode_one(item, raw, received_ms)
            if type(result) is Quarantined:
                result = Quarantined(result.reason, result.detail, raw, index, result.device_id)
            out.append(result)
    return out


_FIELDS = itemgetter("device_id", "ts", "seq", "channels")


def _accept(
    obj: dict[str, Any], received_ms: int, as_document: bool = False
) -> dict[str, Any] | Reading | None:
    """The reading `obj` is when it passes the contract's common case in one go (integer ts, a
    device id and a channel layout seen valid before); None when anything needs a closer look,
    which `decode_one` then takes, so the outcome is the same either way (a test proves it).
    With `as_document`, `obj` itself when it has no field beyond the reading's own (see
    `decode_document`)."""
    try:
        device_id, ts, seq, channels = _FIELDS(obj)
    except KeyError:
        return None
    if not (
        type(device_id) is str
        and device_id in _valid_ids
        and type(ts) is int
        and FLEET_EPOCH_MS <= ts <= received_ms + MAX_CLOCK_SKEW_MS
        and type(seq) is int
        and 0 <= seq <= MAX_SEQ
        and type(channels) is dict
    ):
        return None
    bounds = _layouts.get(tuple(channels))
    if bounds is None:
        return None
    values = channels.values()
    if not (
        _NUMERIC.issuperset(map(type, values))
        and all(map(le, bounds[0], values))
        and all(map(le, values, bounds[1]))
    ):
        return None
    firmware = obj.get("firmware")
    model = obj.get("model")
    if (firmware is None or (type(firmware) is str and len(firmware) <= MAX_TEXT_LENGTH)) and (
        model is None or (type(model) is str and len(model) <= MAX_TEXT_LENGTH)
    ):
        if as_document and len(obj) == 4 + (firmware is not None) + (model is not None):
            return obj  # the four fields plus each of firmware and model only when not null
        return Reading(device_id, ts, seq, channels, firmware, model)
    return None


def decode_one(obj: dict[str, Any], raw: bytes, received_ms: int) -> Reading | Quarantined:
    """Check one parsed JSON object against the contract."""
    device_id = obj.get("device_id")
    if type(device_id) is not str or device_id not in _valid_ids:
        problem = _device_id_problem(device_id)
        if problem is not None:
            reason, detail = problem
            return Quarantined(reason, detail, raw)

    ts = obj.get("ts")
    if type(ts) is int:
        ts_ms = ts
    elif type(ts) is str:
        parsed_ms = _parse_iso_ms(ts)
        if parsed_ms is None:
            return Quarantined(Reason.INVALID_TIMESTAMP, f"ts {ts[:_MAX_TS_TEXT]!r}", raw, None, device_id)
        ts_ms = parsed_ms
    elif type(ts) is float and ts.is_integer():
        ts_ms = int(ts)
    elif ts is None:
        return Quarantined(Reason.MISSING_FIELD, "ts", raw, None, device_id)
    else:
        return Quarantined(Reason.WRONG_TYPE, f"ts is {type(ts).__name__}", raw, None, device_id)
    if ts_ms < FLEET_EPOCH_MS:
        return Quarantined(Reason.TS_TOO_OLD, f"ts {ts_ms} ms before fleet epoch", raw, None, device_id)
    if ts_ms > received_ms + MAX_CLOCK_SKEW_MS:
        detail = f"ts {ts_ms - received_ms} ms after arrival"
        return Quarantined(Reason.TS_IN_FUTURE, detail, raw, None, device_id)

    seq = obj.get("seq")
    if type(seq) is not int:
        if seq is None:
            return Quarantined(Reason.MISSING_FIELD, "seq", raw, None, device_id)
        return Quarantined(Reason.WRONG_TYPE, f"seq is {type(seq).__name__}", raw, None, device_id)
    if seq < 0 or seq > MAX_SEQ:
        return Quarantined(Reason.OUT_OF_RANGE, f"seq {seq}", raw, None, device_id)

    channels = obj.get("channels")
    if type(channels) is not dict:
        if channels is None:
            return Quarantined(Reason.MISSING_FIELD, "channels", raw, None, device_id)
        return Quarantined(Reason.WRONG_TYPE, f"channels is {type(channels).__name__}", raw, None, device_id)
    problem = _channels_problem(channels)
    if problem is not None:
        return Quarantined(problem[0], problem[1], raw, None, device_id)

    firmware = obj.get("firmware")
    model = obj.get("model")
    for name, text in (("firmware", firmware), ("model", model)):
        if text is not None and (type(text) is not str or len(text) > MAX_TEXT_LENGTH):
            detail = f"{name} must be a string of <= {MAX_TEXT_LENGTH} characters"
            return Quarantined(Reason.WRONG_TYPE, detail, raw, None, device_id)
    return Reading(device_id, ts_ms, seq, channels, firmware, model)  # type: ignore[arg-type]


def _device_id_problem(device_id: object) -> tuple[Reason, str] | None:
    if device_id is None:
        return Reason.MISSING_FIELD, "device_id"
    if type(device_id) is not str:
        return Reason.WRONG_TYPE, f"device_id is {type(device_id).__name__}"
    if len(device_id) > MAX_DEVICE_ID_LENGTH or _DEVICE_ID.fullmatch(device_id) is None:
        return Reason.INVALID_DEVICE_ID, f"device_id {device_id[:MAX_DEVICE_ID_LENGTH]!r}"
    if len(_valid_ids) < _VALID_IDS_CAP:
        _valid_ids.add(device_id)
    return None


_NUMERIC = frozenset({int, float})
_UNKNOWN_BOUNDS = (-UNKNOWN_CHANNEL_LIMIT, UNKNOWN_CHANNEL_LIMIT, "")
# Channel-name tuple -> (lows, highs). A fleet sends a handful of channel layouts, so the bounds
# of a layout are looked up once and then compared in C with map(); capped against abuse.
_layouts: dict[tuple[str, ...], tuple[tuple[float, ...], tuple[float, ...]]] = {}
_LAYOUTS_CAP = 4_096


def _channels_problem(channels: dict[str, Any]) -> tuple[Reason, str] | None:
    if not channels:
        return Reason.NO_CHANNELS, "channels is empty"
    if len(channels) > MAX_CHANNELS:
        return Reason.TOO_MANY_CHANNELS, f"{len(channels)} channels > {MAX_CHANNELS}"
    values = channels.values()
    if not _NUMERIC.issuperset(map(type, values)):
        name, value = next((k, v) for k, v in channels.items() if type(v) not in _NUMERIC)
        return Reason.WRONG_TYPE, f"channel {name[:MAX_TEXT_LENGTH]!r} is {type(value).__name__}"
    layout = tuple(channels)
    bounds = _layouts.get(layout)
    if bounds is None:
        if "" in channels or max(map(len, layout)) > MAX_TEXT_LENGTH:
            name = next(k for k in layout if not k or len(k) > MAX_TEXT_LENGTH)
            return Reason.WRONG_TYPE, f"channel name {name[:MAX_TEXT_LENGTH]!r}"
        ranges = [CHANNEL_RANGES.get(name, _UNKNOWN_BOUNDS) for name in layout]
        bounds = (tuple(r[0] for r in ranges), tuple(r[1] for r in ranges))
        if len(_layouts) < _LAYOUTS_CAP:
            _layouts[layout] = bounds
    lows, highs = bounds
    if all(map(le, lows, values)) and all(map(le, values, highs)):
        return None
    for name, value, low, high in zip(layout, values, lows, highs, strict=True):
        if not low <= value <= high:
            return Reason.OUT_OF_RANGE, f"channel {name!r}={value} outside [{low}, {high}]"
    return None  # unreachable: one comparison above failed


def _parse_iso_ms(text: str) -> int | None:
    if len(text) > _MAX_TS_TEXT or len(text) < 16:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return None  # a naive time is ambiguous: the contract requires an offset
    return (parsed - _EPOCH) // _ONE_MS


def iso_from_ms(ts_ms: int) -> str:
    """Epoch milliseconds -> ISO-8601 UTC with millisecond precision and a `Z` suffix."""
    return (_EPOCH + timedelta(milliseconds=ts_ms)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
