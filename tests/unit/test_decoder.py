"""The decoder: every quarantine reason, exactly, and the accept path's output."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from airlake.contract import Quarantined, Reading, Reason, decode
from airlake.contract.limits import FLEET_EPOCH_MS, MAX_BATCH_READINGS, MAX_CHANNELS

RECEIVED_MS = 1_790_000_000_000  # 2026-09-21T14:13:20Z: arrival time of every record here
GOOD: dict[str, Any] = {
    "device_id": "aq-0001",
    "ts": "2026-09-21T14:00:00Z",
    "seq": 42,
    "firmware": "1.4.2",
    "model": "AQM-3",
    "channels": {"co2": 612.5, "pm25": 8, "temperature": 21.4, "humidity": 40.0, "new_sensor_x": -3.5},
}


def with_(**changes: Any) -> bytes:
    return orjson.dumps({**GOOD, **changes})


def without(field: str) -> bytes:
    return orjson.dumps({k: v for k, v in GOOD.items() if k != field})


def channels(**changes: Any) -> bytes:
    return with_(channels={**GOOD["channels"], **changes})


def only(data: bytes) -> Reading | Quarantined:
    results = decode(data, received_ms=RECEIVED_MS)
    assert len(results) == 1
    return results[0]


def test_a_valid_reading_is_decoded_with_utc_millis_and_unknown_channels_kept() -> None:
    result = only(orjson.dumps(GOOD))

    assert result == Reading(
        device_id="aq-0001",
        ts_ms=1_789_999_200_000,
        seq=42,
        channels={"co2": 612.5, "pm25": 8, "temperature": 21.4, "humidity": 40.0, "new_sensor_x": -3.5},
        firmware="1.4.2",
        model="AQM-3",
    )
    assert result.key == ("aq-0001", 1_789_999_200_000, 42)


@pytest.mark.parametrize(
    ("ts", "expected_ms"),
    [
        ("2026-09-21T16:00:00+02:00", 1_789_999_200_000),
        ("2026-09-21T14:00:00.123Z", 1_789_999_200_123),
        (1_789_999_200_000, 1_789_999_200_000),
        (1_789_999_200_000.0, 1_789_999_200_000),
    ],
)
def test_timestamps_with_offsets_and_epoch_millis_become_the_same_utc_instant(
    ts: Any, expected_ms: int
) -> None:
    result = only(with_(ts=ts))
    assert isinstance(result, Reading)
    assert result.ts_ms == expected_ms


def test_a_utf8_bom_is_ignored() -> None:
    assert isinstance(only(b"\xef\xbb\xbf" + orjson.dumps(GOOD)), Reading)


def test_a_json_array_is_judged_element_by_element() -> None:
    bad = {**GOOD, "seq": "43"}
    data = orjson.dumps([GOOD, bad, 7])

    results = decode(data, received_ms=RECEIVED_MS)

    assert [type(r).__name__ for r in results] == ["Reading", "Quarantined", "Quarantined"]
    assert (results[1].reason, results[1].index, results[1].device_id) == (Reason.WRONG_TYPE, 1, "aq-0001")  # type: ignore[union-attr]
    assert orjson.loads(results[1].raw) == bad  # type: ignore[union-attr]
    assert (results[2].reason, results[2].index, results[2].raw) == (Reason.NOT_AN_OBJECT, 2, b"7")  # type: ignore[union-attr]


CASES: list[tuple[str, bytes, Reason]] = [
    ("zero bytes", b"", Reason.EMPTY),
    ("whitespace", b" \t\r ", Reason.EMPTY),
    ("empty array", b"[]", Reason.EMPTY),
    ("over 1 MiB", b'{"x":"' + b"a" * 1_048_576 + b'"}', Reason.TOO_LARGE),
    ("one reading over 16 KiB", with_(debug="x" * 17_000), Reason.TOO_LARGE),
    ("latin-1 byte", with_(firmware="1.4.2-X").replace(b"-X", b"-\xe9"), Reason.NOT_UTF8),
    ("utf-16", orjson.dumps(GOOD).decode().encode("utf-16"), Reason.NOT_UTF8),
    ("lone surrogate escape", with_(model="x").replace(b'"x"', b'"\\ud800"'), Reason.NOT_UTF8),
    ("truncated", orjson.dumps(GOOD)[:40], Reason.INVALID_JSON),
    ("two byte-order marks", b"\xef\xbb\xbf\xef\xbb\xbf" + orjson.dumps(GOOD), Reason.INVALID_JSON),
    ("nested 5000 deep", b"[" * 5000 + b"]" * 5000, Reason.INVALID_JSON),
    ("pretty-printed", orjson.dumps(GOOD, option=orjson.OPT_INDENT_2), Reason.MULTI_LINE),
    ("trailing newline", orjson.dumps(GOOD) + b"\n", Reason.MULTI_LINE),
    ("trailing garbage", orjson.dumps(GOOD) + b"}", Reason.INVALID_JSON),
    ("NaN", orjson.dumps(GOOD).replace(b"612.5", b"NaN"), Reason.NON_FINITE),
    ("Infinity", orjson.dumps(GOOD).replace(b"612.5", b"-Infinity"), Reason.NON_FINITE),
    ("overflowing number", orjson.dumps(GOOD).replace(b"612.5", b"1e400"), Reason.NON_FINITE),
    ("a string", b'"hello"', Reason.NOT_AN_OBJECT),
    ("a number", b"42", Reason.NOT_AN_OBJECT),
    ("too many in a batch", orjson.dumps([GOOD] * (MAX_BATCH_READINGS + 1)), Reason.BATCH_TOO_LARGE),
    ("no device_id", without("device_id"), Reason.MISSING_FIELD),
    ("null device_id", with_(device_id=None), Reason.MISSING_FIELD),
    ("no ts", without("ts"), Reason.MISSING_FIELD),
    ("no seq", without("seq"), Reason.MISSING_FIELD),
    ("no channels", without("channels"), Reason.MISSING_FIELD),
    ("numeric device_id", with_(device_id=17), Reason.WRONG_TYPE),
    ("bool ts", with_(ts=True), Reason.WRONG_TYPE),
    ("string seq", with_(seq="42"), Reason.WRONG_TYPE),
    ("float seq", with_(seq=42.0), Reason.WRONG_TYPE),
    ("channels as list", with_(channels=[1, 2]), Reason.WRONG_TYPE),
    ("string channel value", channels(co2="612.5"), Reason.WRONG_TYPE),
    ("null channel value", channels(co2=None), Reason.WRONG_TYPE),
    ("bool channel value", channels(co2=True), Reason.WRONG_TYPE),
    ("nested channel value", channels(co2={"value": 1}), Reason.WRONG_TYPE),
    ("numeric firmware", with_(firmware=142), Reason.WRONG_TYPE),
    ("empty device_id", with_(device_id=""), Reason.INVALID_DEVICE_ID),
    ("device_id with a slash", with_(device_id="../etc"), Reason.INVALID_DEVICE_ID),
    ("device_id too long", with_(device_id="a" * 65), Reason.INVALID_DEVICE_ID),
    ("naive ISO time", with_(ts="2026-09-21T14:00:00"), Reason.INVALID_TIMESTAMP),
    ("not a time", with_(ts="yesterday at noon"), Reason.INVALID_TIMESTAMP),
    ("US date", with_(ts="09/21/2026 14:00:00 +0000"), Reason.INVALID_TIMESTAMP),
    ("epoch as numeric string", with_(ts="1790517600000"), Reason.INVALID_TIMESTAMP),
    ("fractional epoch millis", with_(ts=1_789_999_200_000.5), Reason.WRONG_TYPE),
    ("a year ahead", with_(ts="2027-09-21T14:00:00Z"), Reason.TS_IN_FUTURE),
    ("6 minutes ahead of arrival", with_(ts=RECEIVED_MS + 360_000), Reason.TS_IN_FUTURE),
    ("clock reset to 1970", with_(ts=12_345), Reason.TS_TOO_OLD),
    ("epoch seconds", with_(ts=1_789_999_200), Reason.TS_TOO_OLD),
    ("one ms before the fleet epoch", with_(ts=FLEET_EPOCH_MS - 1), Reason.TS_TOO_OLD),
    ("empty channel map", with_(channels={}), Reason.NO_CHANNELS),
    (
        "too many channels",
        with_(channels={f"c{i}": 1.0 for i in range(MAX_CHANNELS + 1)}),
        Reason.TOO_MANY_CHANNELS,
    ),
    ("negative concentration", channels(pm25=-1), Reason.OUT_OF_RANGE),
    ("humidity over 100%", channels(humidity=100.5), Reason.OUT_OF_RANGE),
    ("huge unknown channel", channels(new_sensor_x=1e15), Reason.OUT_OF_RANGE),
    ("negative seq", with_(seq=-1), Reason.OUT_OF_RANGE),
]


@pytest.mark.parametrize(("case", "data", "reason"), CASES, ids=[c[0] for c in CASES])
def test_each_broken_record_is_quarantined_with_its_reason_and_original_bytes(
    case: str, data: bytes, reason: Reason
) -> None:
    results = decode(data, received_ms=RECEIVED_MS)

    assert len(results) == 1, case
    result = results[0]
    assert isinstance(result, Quarantined), case
    assert result.reason is reason, (case, result.detail)
    assert result.raw == data
    assert result.detail


def test_every_reason_code_a_record_can_earn_is_covered_above() -> None:
    decoder_reasons = set(Reason) - {Reason.PROCESSING_ERROR}
    assert {reason for _, _, reason in CASES} == decoder_reasons


def test_the_edges_of_a_physical_range_are_accepted() -> None:
    assert isinstance(only(channels(humidity=100.0, pm25=0)), Reading)


def test_a_reading_exactly_five_minutes_ahead_of_arrival_is_accepted() -> None:
    assert isinstance(only(with_(ts=RECEIVED_MS + 300_000)), Reading)


def test_duplicated_keys_keep_the_last_value() -> None:
    data = orjson.dumps(GOOD).replace(b'"seq":42', b'"seq":41,"seq":42')
    result = only(data)
    assert isinstance(result, Reading)
    assert result.seq == 42


def test_a_reading_in_its_exact_wire_form_is_its_own_document() -> None:
    from airlake.contract.decoder import decode_document

    # Given readings with integer ts, each decoded once so its device and channel layout are known
    wire = {**GOOD, "ts": 1_790_000_000_000 - 60_000}
    cases = {
        "exact": orjson.dumps(wire),
        "no firmware or model": orjson.dumps(
            {k: v for k, v in wire.items() if k not in ("firmware", "model")}
        ),
        "an extra field": orjson.dumps({**wire, "rssi": -70}),
        "a null firmware": orjson.dumps({**wire, "firmware": None}),
        "an iso ts": with_(),
    }
    for data in cases.values():
        decode(data, received_ms=RECEIVED_MS)
    # When decoded as documents
    got = {name: decode_document(data, RECEIVED_MS) for name, data in cases.items()}
    # Then a reading with exactly the contract's fields comes back as its parsed object, which is
    # what Reading.to_dict() makes of it
    for name in ("exact", "no firmware or model"):
        assert type(got[name]) is dict, name
        expected = only(cases[name])
        assert isinstance(expected, Reading) and got[name] == expected.to_dict()
    # And anything else as the Reading decode gives (so no extra field and no null is carried on)
    for name in ("an extra field", "a null firmware", "an iso ts"):
        result = got[name]
        assert (result if isinstance(result, list) else [result]) == [only(cases[name])], name
    # And a broken record as decode's quarantine list
    assert decode_document(with_(seq=-1), RECEIVED_MS) == decode(with_(seq=-1), received_ms=RECEIVED_MS)
