"""Raw-zone lines -> decoded rows, with exactly the hot path's rules (`airlake.contract.decode`).

Plain Python, no Spark: the job calls `decode_files` inside `mapPartitions` over Spark's
`binaryFile` source, so this is where the raw zone's bytes are judged.

Why binary: `spark.read.text` decodes every line as UTF-8 and replaces invalid bytes, so a
non-UTF-8 record would reach quarantine mangled. Reading each gzip object as bytes and splitting
on `\\n` keeps every record's original bytes (Firehose only appends the newline delimiter).

Arrival time: the raw partition `dt=YYYY-MM-DD/hour=HH` is the hour a record arrived at Firehose.
`received_at` is the start of that hour (what we know for sure). The decoder judges "timestamp in
the future" against the END of that hour, so no reading that the hot path (which sees the exact
arrival time) accepted is quarantined here; the batch path is lenient by less than one hour.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from airlake.catalog import CALIBRATED_CHANNELS, CHANNEL_PRECISION, WIDE_CHANNELS
from airlake.contract import Quarantined, decode
from airlake.contract.limits import CHANNEL_DECIMALS

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
_PARTITION = re.compile(r"/dt=(\d{4}-\d{2}-\d{2})/(?:hour=(\d{2})/)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_GZIP_MAGIC = b"\x1f\x8b"

# Top-level columns of curated readings, in the order decode rows carry them (from the catalog).
WIDE_CHANNEL_NAMES: tuple[str, ...] = tuple(name for name, _comment in WIDE_CHANNELS)
_WIDE = frozenset(WIDE_CHANNEL_NAMES)
CALIBRATED_NAMES: tuple[str, ...] = tuple(name for name, _ref, _comment in CALIBRATED_CHANNELS)
# Per channel column: (decimals, exclusive magnitude bound) of its decimal(9, decimals) type.
_DECIMAL_TYPE: dict[str, tuple[int, float]] = {
    name: (CHANNEL_DECIMALS[name], 10.0 ** (CHANNEL_PRECISION - CHANNEL_DECIMALS[name]))
    for name in (*WIDE_CHANNEL_NAMES, *CALIBRATED_NAMES)
}

KIND_READING = "reading"
KIND_QUARANTINE = "quarantine"

# Spark DDL of the rows `decode_files` yields (one schema for readings and quarantine records, so a
# single decoding pass feeds both outputs).
DECODED_COLUMNS: tuple[tuple[str, str], ...] = (
    ("kind", "string"),
    ("source_file", "string"),
    ("line_no", "bigint"),
    ("element_index", "int"),
    ("received_ms", "bigint"),
    ("arrival_dt", "string"),
    ("device_id", "string"),
    ("ts_ms", "bigint"),
    ("seq", "bigint"),
    ("firmware", "string"),
    ("model", "string"),
    ("other_channels", "map<string,double>"),
    *((name, "double") for name in WIDE_CHANNEL_NAMES),
    *((name, "double") for name in CALIBRATED_NAMES),
    ("model_version", "string"),
    ("event_dt", "string"),
    ("reason", "string"),
    ("detail", "string"),
    ("raw", "binary"),
)


class Calibrator(Protocol):
    """What the batch path needs of `airlake.calibration` (same numbers as the stream)."""

    def calibrate_channels(
        self, device_id: str, channels: dict[str, float], ts_ms: int
    ) -> tuple[dict[str, float], str | None]: ...


def arrival_ms(path: str, modification_ms: int | None = None) -> int:
    """Start of the arrival hour encoded in a raw object's path (dt=/hour=), in epoch ms.

    A path without the partition (files dropped in by hand) falls back to the object's
    modification time; with neither, the raw zone is mis-laid and we refuse to guess.
    """
    match = _PARTITION.search(path)
    if match is None:
        if modification_ms is None:
            raise ValueError(f"raw object {path!r} is not under dt=YYYY-MM-DD/hour=HH/")
        return modification_ms - modification_ms % HOUR_MS
    day = datetime.strptime(match.group(1), "%Y-%m-%d").replace(tzinfo=UTC)
    hour = int(match.group(2) or 0)
    return int((day - _EPOCH).total_seconds() * 1000) + hour * HOUR_MS


def date_of_ms(ts_ms: int) -> str:
    """UTC date (yyyy-MM-dd) of an epoch-ms instant, independent of any session time zone."""
    return (_EPOCH + timedelta(days=ts_ms // DAY_MS)).strftime("%Y-%m-%d")


def split_lines(content: bytes) -> list[bytes]:
    """The records of a raw object: gunzip (multi-member too) and split on the newline delimiter.

    A trailing newline ends the last record rather than starting an empty one; a truncated gzip
    stream yields the records that decompressed, and the rest becomes one undecodable record
    (quarantined, never dropped).
    """
    if content[:2] == _GZIP_MAGIC:
        try:
            content = gzip.decompress(content)
        except (EOFError, OSError, zlib.error):
            decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)
            content = decompressor.decompress(content)
    if not content:
        return []
    lines = content.split(b"\n")  # a record's own bytes are kept exactly, a "\r" included
    if lines[-1] == b"":
        lines.pop()
    return lines


def decode_files(
    files: Iterable[tuple[str, bytes, int | None]], calibrator: Calibrator | None = None
) -> Iterator[tuple[Any, ...]]:
    """(path, gzip bytes, modification ms) per raw object -> one tuple per reading or quarantine record.

    Tuples follow DECODED_COLUMNS. Every record yields at least one row, so
    records in == readings + quarantined holds per object.
    """
    for path, content, modification_ms in files:
        start_ms = arrival_ms(path, modification_ms)
        judge_ms = start_ms + HOUR_MS
        arrival_dt = date_of_ms(start_ms)
        for line_no, line in enumerate(split_lines(content), start=1):
            for position, result in enumerate(decode(line, received_ms=judge_ms)):
                if isinstance(result, Quarantined):
                    yield _quarantine_row(result, path, line_no, start_ms, arrival_dt)
                else:
                    channels = {name: float(value) for name, value in result.channels.items()}
                    calibrated: dict[str, float] = {}
                    model_version: str | None = None
                    if calibrator is not None:
                        calibrated, model_version = calibrator.calibrate_channels(
                            result.device_id, channels, result.ts_ms
                        )
                    others = {name: value for name, value in channels.items() if name not in _WIDE}
                    wide = [channels.get(name) for name in WIDE_CHANNEL_NAMES]
                    for i, value in enumerate(wide):
                        if value is not None and not fits_column(WIDE_CHANNEL_NAMES[i], value):
                            others[WIDE_CHANNEL_NAMES[i]] = value  # exact, not rounded away
                            wide[i] = None
                    yield (
                        KIND_READING,
                        path,
                        line_no,
                        position,
                        start_ms,
                        arrival_dt,
                        result.device_id,
                        result.ts_ms,
                        result.seq,
                        result.firmware,
                        result.model,
                        others,
                        *wide,
                        *(_calibrated(name, calibrated.get(name)) for name in CALIBRATED_NAMES),
                        model_version,
                        date_of_ms(result.ts_ms),
                        None,
                        None,
                        None,
                    )


def fits_column(name: str, value: float) -> bool:
    """Whether `value` is exactly a decimal of channel `name`'s column type (its decimals, |v| < 10**(9-d)).

    `round(v, d) == v` holds exactly when the shortest decimal form of the double has at most `d`
    decimals: then Spark's cast to decimal(9, d) (via Double.toString) stores that decimal exactly,
    and reading it back as a double gives `value` again.
    """
    decimals, bound = _DECIMAL_TYPE[name]
    return -bound < value < bound and round(value, decimals) == value


def _calibrated(name: str, value: object) -> float | None:
    """A calibrated output for its decimal column (calibration rounds to the same decimals and clips
    to the contract's range, so it always fits; anything else would be a calibration bug)."""
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    if not fits_column(name, number):
        raise ValueError(
            f"calibrated {name}={number!r} does not fit {name}'s column; see airlake.calibration"
        )
    return number


def _quarantine_row(
    result: Quarantined, path: str, line_no: int, start_ms: int, arrival_dt: str
) -> tuple[Any, ...]:
    empty: tuple[None, ...] = (None,) * (len(WIDE_CHANNEL_NAMES) + len(CALIBRATED_NAMES) + 1)
    return (
        KIND_QUARANTINE,
        path,
        line_no,
        result.index,
        start_ms,
        arrival_dt,
        result.device_id,
        None,
        None,
        None,
        None,
        None,
        *empty,
        None,
        result.reason.value,
        result.detail,
        bytearray(result.raw),
    )
