"""Machine-readable reason codes for quarantined records.

The string values are part of the contract: they are stored in the quarantine table,
counted in metrics and matched by analysts' SQL. Never rename one; add new ones.
"""

from __future__ import annotations

from enum import StrEnum


class Reason(StrEnum):
    """Why a record was quarantined instead of accepted."""

    # Payload level: the bytes could not become a JSON object.
    EMPTY = "empty"  # zero bytes, only whitespace, or an empty JSON array
    TOO_LARGE = "too_large"  # over MAX_PAYLOAD_BYTES, or one reading over MAX_READING_BYTES
    NOT_UTF8 = "not_utf8"  # bytes that are not UTF-8 (UTF-16, Latin-1, lone surrogates)
    INVALID_JSON = "invalid_json"  # truncated or otherwise unparseable JSON
    MULTI_LINE = "multi_line"  # a raw newline byte: the raw zone stores one record per line
    NON_FINITE = "non_finite"  # NaN, Infinity or a number that overflows a double
    NOT_AN_OBJECT = "not_an_object"  # a JSON scalar, or an array element that is not an object
    BATCH_TOO_LARGE = "batch_too_large"  # a JSON array with more than MAX_BATCH_READINGS elements
    # Field level: a JSON object that breaks the reading contract.
    MISSING_FIELD = "missing_field"  # device_id, ts, seq or channels absent (or null)
    WRONG_TYPE = "wrong_type"  # e.g. a string where a number belongs, a bool as seq
    INVALID_DEVICE_ID = "invalid_device_id"  # empty, too long, or characters outside [A-Za-z0-9._:-]
    INVALID_TIMESTAMP = "invalid_timestamp"  # unparseable, or ISO-8601 without a UTC offset
    TS_IN_FUTURE = "ts_in_future"  # later than arrival time plus MAX_CLOCK_SKEW
    TS_TOO_OLD = "ts_too_old"  # before FLEET_EPOCH: no device of ours existed then
    NO_CHANNELS = "no_channels"  # an empty channel map
    TOO_MANY_CHANNELS = "too_many_channels"  # more than MAX_CHANNELS entries
    OUT_OF_RANGE = "out_of_range"  # a value outside the physical range of its channel
    # Pipeline level: raised after decoding, by the stages that own them.
    PROCESSING_ERROR = "processing_error"  # a stage failed on a valid reading (after retries)
