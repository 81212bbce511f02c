"""Writes the bad-input corpus: one payload file per case plus `manifest.json` of expected outcomes.

The corpus is data, not code, so any tool (the decoder tests, the hot-path handler, the Glue job,
a device maker's own validator) can replay it. This script is how the files were made and how to
add a case: append to `cases()`, run `python tests/reliability/corpus/build_corpus.py`, and commit
the new payload file with the manifest. The expected outcome of a case is a statement about the
contract (airlake.contract, schemas/reading.v1.json), written by hand here, never read back from
the decoder.

Payloads over 64 KiB are stored gzip-compressed (`.bin.gz`) to keep the repository small; the
loader decompresses them. All cases arrive at RECEIVED (an hour boundary), so the hot path (exact
arrival time) and the raw -> curated job (which judges against the end of the raw hour partition)
see the same arrival time.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
RECEIVED = datetime(2026, 3, 10, 13, 0, tzinfo=UTC)
RECEIVED_MS = int(RECEIVED.timestamp() * 1000)
TS = "2026-03-10T12:30:00Z"
TS_MS = int(datetime(2026, 3, 10, 12, 30, tzinfo=UTC).timestamp() * 1000)
DEVICE = "site1-dev-001"
COMPRESS_OVER = 64 * 1024


@dataclass
class Case:
    id: str
    category: str
    description: str
    payload: bytes
    expect: list[dict[str, Any]]
    notes: dict[str, Any] = field(default_factory=dict)


_seq = iter(range(1, 10_000))


def good(**changes: Any) -> dict[str, Any]:
    """A valid reading with a fresh seq (so every accepted reading of the corpus has its own key)."""
    doc: dict[str, Any] = {
        "device_id": DEVICE,
        "ts": TS,
        "seq": next(_seq),
        "firmware": "2.4.1",
        "model": "AL-100",
        "channels": {"co2": 612.5, "pm25": 8.4, "temperature": 21.3, "humidity": 44.0, "mox_co": 1180.0},
    }
    doc.update(changes)
    return doc


def channels(**changes: Any) -> dict[str, Any]:
    doc = good()
    doc["channels"] = {**doc["channels"], **changes}
    return doc


def dumps(doc: Any) -> bytes:
    return orjson.dumps(doc)


def q(reason: str) -> list[dict[str, Any]]:
    return [{"outcome": "quarantined", "reason": reason}]


def ok(doc: dict[str, Any], ts_ms: int = TS_MS) -> dict[str, Any]:
    return {"outcome": "accepted", "key": [doc["device_id"], ts_ms, doc["seq"]]}


def replace(doc: dict[str, Any], old: bytes, new: bytes) -> bytes:
    data = dumps(doc)
    assert old in data, (old, data)
    return data.replace(old, new, 1)


def cases() -> list[Case]:
    out: list[Case] = []

    def add(id_: str, category: str, description: str, payload: bytes, expect: list[dict[str, Any]],
            **notes: Any) -> None:  # fmt: skip
        out.append(Case(id_, category, description, payload, expect, notes))

    # -- valid baselines (the corpus proves good input survives too) ------------------------------
    d = good()
    add("valid_reading", "baseline", "a complete valid reading", dumps(d), [ok(d)])
    d = good(extra_field={"anything": [1, 2]}, channels={"co2": 500.0, "new_sensor_x": -3.5})
    add("unknown_fields_and_channels_kept", "baseline", "unknown top-level field and unknown channel",
        dumps(d), [ok(d)])  # fmt: skip
    d = good()
    add("utf8_bom", "encoding", "UTF-8 byte-order mark before a valid reading (RFC 8259 allows it)",
        b"\xef\xbb\xbf" + dumps(d), [ok(d)])  # fmt: skip
    d = good(firmware="2.4.1-\u00e9\u6e2c")
    add("non_ascii_utf8_text", "encoding", "valid UTF-8 beyond ASCII in a text field", dumps(d), [ok(d)])

    # -- truncated and invalid JSON ----------------------------------------------------------------
    full = dumps(good())
    add("truncated_mid_object", "invalid_json", "record cut after 40 bytes", full[:40], q("invalid_json"))
    add("truncated_mid_number", "invalid_json", "record cut inside a number",
        full[: full.index(b"612") + 2], q("invalid_json"))  # fmt: skip
    add("truncated_missing_brace", "invalid_json", "last closing brace lost", full[:-1], q("invalid_json"))
    add("trailing_garbage", "invalid_json", "valid object followed by junk", full + b"}}xyz",
        q("invalid_json"))  # fmt: skip
    add("two_concatenated_objects", "invalid_json", "two readings glued in one record without framing",
        dumps(good()) + dumps(good()), q("invalid_json"))  # fmt: skip
    add("python_repr", "invalid_json", "a Python dict repr (single quotes, True/None)",
        repr({"device_id": DEVICE, "ok": True, "x": None}).encode(), q("invalid_json"))  # fmt: skip
    add("trailing_comma", "invalid_json", "trailing comma in the channel map",
        replace(good(), b"1180.0}", b"1180.0,}"), q("invalid_json"))  # fmt: skip
    add("unquoted_keys", "invalid_json", "JavaScript object literal with bare keys",
        b'{device_id:"site1-dev-001",ts:1773145800000,seq:1,channels:{co2:1}}', q("invalid_json"))  # fmt: skip
    add("json_with_comment", "invalid_json", "a // comment inside the object",
        replace(good(), b'{"device_id"', b'{/* c */"device_id"'), q("invalid_json"))  # fmt: skip
    add("deeply_nested_arrays", "nested_garbage", "20,000 nested arrays (parser recursion limit)",
        b"[" * 20_000 + b"]" * 20_000, q("invalid_json"))  # fmt: skip

    # -- wrong encodings ----------------------------------------------------------------------------
    text = dumps(good()).decode()
    add("utf16_le_with_bom", "encoding", "UTF-16 (little endian, BOM) text", text.encode("utf-16"),
        q("not_utf8"))  # fmt: skip
    add("utf32_with_bom", "encoding", "UTF-32 text", text.encode("utf-32"), q("not_utf8"))
    add("utf16_be_without_bom", "encoding",
        "UTF-16BE without a BOM: NUL bytes are valid UTF-8, so it is judged as broken JSON",
        text.encode("utf-16-be"), q("invalid_json"))  # fmt: skip
    add("latin1_byte", "encoding", "a Latin-1 e-acute (0xE9) inside a string",
        replace(good(), b"2.4.1", b"2.4.1-\xe9"), q("not_utf8"))  # fmt: skip
    add("encoded_lone_surrogate", "encoding", "a surrogate encoded as UTF-8 bytes (CESU-8)",
        replace(good(), b"2.4.1", b"2.4.1\xed\xa0\x80"), q("not_utf8"))  # fmt: skip
    add("escaped_lone_surrogate", "encoding", "a \\ud800 escape with no low surrogate",
        replace(good(), b"2.4.1", b"2.4.1\\ud800"), q("not_utf8"))  # fmt: skip
    add("double_bom", "encoding", "two byte-order marks: the second is a stray U+FEFF before the JSON, "
        "which is valid UTF-8 but not valid JSON", b"\xef\xbb\xbf\xef\xbb\xbf" + dumps(good()), q("invalid_json"))  # fmt: skip

    # -- nested garbage -----------------------------------------------------------------------------
    add("channel_value_object", "nested_garbage", "a channel value that is an object",
        dumps(channels(co2={"value": 612.5, "unit": "ppm"})), q("wrong_type"))  # fmt: skip
    add("channel_value_deep", "nested_garbage", "a channel value nested 50 levels deep",
        dumps(channels(co2=json.loads('{"a":' * 50 + "1" + "}" * 50))), q("wrong_type"))  # fmt: skip
    add("channels_as_list", "nested_garbage", "channels as a list of pairs",
        dumps(good(channels=[["co2", 612.5]])), q("wrong_type"))  # fmt: skip
    add("device_id_object", "nested_garbage", "device_id as an object",
        dumps(good(device_id={"id": DEVICE})), q("wrong_type"))  # fmt: skip

    # -- huge numbers ---------------------------------------------------------------------------------
    add("number_overflows_double", "huge_numbers", "1e400 does not fit a double",
        replace(good(), b"612.5", b"1e400"), q("non_finite"))  # fmt: skip
    add("integer_beyond_64_bits", "huge_numbers", "a 31-digit integer concentration",
        replace(good(), b"612.5", b"1" + b"0" * 30), q("out_of_range"))  # fmt: skip
    add("largest_double", "huge_numbers", "1e308 is finite but not a CO2 reading",
        replace(good(), b"612.5", b"1e308"), q("out_of_range"))  # fmt: skip
    add("huge_unknown_channel", "huge_numbers", "an unknown channel beyond 1e12",
        dumps(channels(new_sensor_x=1e15)), q("out_of_range"))  # fmt: skip
    d = good()
    add("seq_beyond_64_bits", "huge_numbers", "seq = 2**64 (parsed as a float, not an integer)",
        replace(d, b'"seq":%d' % d["seq"], b'"seq":18446744073709551616'), q("wrong_type"))  # fmt: skip
    add("ts_huge_integer", "huge_numbers", "ts = 10**20 milliseconds (beyond 64 bits)",
        replace(good(), b'"%s"' % TS.encode(), b"100000000000000000000"), q("ts_in_future"))  # fmt: skip
    d = good(channels={"co2": 1e-300})
    add("tiny_positive_number", "huge_numbers", "1e-300 is a valid (tiny) concentration", dumps(d), [ok(d)])

    # -- NaN / Infinity ---------------------------------------------------------------------------------
    add("nan_literal", "non_finite", "a NaN literal (not JSON)", replace(good(), b"612.5", b"NaN"),
        q("non_finite"))  # fmt: skip
    add("infinity_literal", "non_finite", "an Infinity literal", replace(good(), b"612.5", b"Infinity"),
        q("non_finite"))  # fmt: skip
    add("negative_infinity_literal", "non_finite", "a -Infinity literal",
        replace(good(), b"612.5", b"-Infinity"), q("non_finite"))  # fmt: skip
    add("nan_as_string", "non_finite", 'the string "NaN" where a number belongs',
        dumps(channels(co2="NaN")), q("wrong_type"))  # fmt: skip

    # -- negative concentrations ----------------------------------------------------------------------
    add("negative_pm25", "negative_concentration", "pm25 = -1", dumps(channels(pm25=-1)),
        q("out_of_range"))  # fmt: skip
    add("slightly_negative_co2", "negative_concentration", "co2 = -0.001",
        dumps(channels(co2=-0.001)), q("out_of_range"))  # fmt: skip
    add("negative_reference_no2", "negative_concentration", "reference analyser NO2 = -5",
        dumps(channels(ref_no2=-5.0)), q("out_of_range"))  # fmt: skip
    d = channels(temperature=-12.5)
    add("negative_temperature_is_fine", "negative_concentration", "a sub-zero temperature is physical",
        dumps(d), [ok(d)])  # fmt: skip
    d = good(channels={"pm25": -0.0, "co2": 400.0})
    add("negative_zero_pm25", "negative_concentration", "-0.0 equals 0: inside the range", dumps(d), [ok(d)])
    add("humidity_over_100", "negative_concentration", "relative humidity 100.5 %",
        dumps(channels(humidity=100.5)), q("out_of_range"))  # fmt: skip

    # -- strings where numbers belong -----------------------------------------------------------------
    add("string_channel_value", "wrong_type", 'co2 = "612.5"', dumps(channels(co2="612.5")), q("wrong_type"))
    add("string_seq", "wrong_type", 'seq = "42"', dumps(good(seq="42")), q("wrong_type"))
    add("float_seq", "wrong_type", "seq = 42.0", dumps(good(seq=42.0)), q("wrong_type"))
    add("bool_channel_value", "wrong_type", "co2 = true", dumps(channels(co2=True)), q("wrong_type"))
    add("bool_ts", "wrong_type", "ts = true", dumps(good(ts=True)), q("wrong_type"))
    add("numeric_firmware", "wrong_type", "firmware = 241", dumps(good(firmware=241)), q("wrong_type"))
    add("epoch_as_string", "wrong_type", "ts as a numeric string", dumps(good(ts=str(TS_MS))),
        q("invalid_timestamp"))  # fmt: skip

    # -- missing and null fields ------------------------------------------------------------------------
    def without(field_: str) -> bytes:
        return dumps({k: v for k, v in good().items() if k != field_})

    add("missing_device_id", "missing_null", "no device_id", without("device_id"), q("missing_field"))
    add("missing_ts", "missing_null", "no ts", without("ts"), q("missing_field"))
    add("missing_seq", "missing_null", "no seq", without("seq"), q("missing_field"))
    add("missing_channels", "missing_null", "no channels", without("channels"), q("missing_field"))
    add("null_device_id", "missing_null", "device_id null", dumps(good(device_id=None)), q("missing_field"))
    add("null_ts", "missing_null", "ts null", dumps(good(ts=None)), q("missing_field"))
    add("null_channels", "missing_null", "channels null", dumps(good(channels=None)), q("missing_field"))
    add("null_channel_value", "missing_null", "co2 null", dumps(channels(co2=None)), q("wrong_type"))
    add("empty_object", "missing_null", "{}", b"{}", q("missing_field"))
    d = good(firmware=None, model=None)
    add("null_optional_fields", "missing_null", "firmware and model null are allowed (optional)",
        dumps(d), [ok(d)])  # fmt: skip

    # -- duplicated keys (last one wins, as in orjson, Python and Spark) -------------------------------
    d = good(device_id="site1-dev-002")
    add("duplicate_device_id_last_wins", "duplicate_keys", "device_id twice; the last is kept",
        replace(d, b'{"device_id"', b'{"device_id":"site1-dev-777","device_id"'), [ok(d)])  # fmt: skip
    add("duplicate_channel_last_negative", "duplicate_keys", "co2 twice, the last negative",
        replace(good(), b'"co2":612.5', b'"co2":612.5,"co2":-4.0'), q("out_of_range"))  # fmt: skip
    d = good()
    add("duplicate_seq_last_string", "duplicate_keys", "seq twice, the last a string",
        replace(d, b'"seq":%d' % d["seq"], b'"seq":%d,"seq":"x"' % d["seq"]), q("wrong_type"))  # fmt: skip

    # -- enormous channel maps ----------------------------------------------------------------------------
    add("sixty_five_channels", "channel_map", "65 channels, one over the limit",
        dumps(good(channels={f"c{i:02d}": float(i) for i in range(65)})), q("too_many_channels"))  # fmt: skip
    d = good(channels={f"c{i:02d}": float(i) for i in range(64)})
    add("sixty_four_channels", "channel_map", "exactly the 64-channel limit", dumps(d), [ok(d)])
    add("two_thousand_channels", "channel_map", "2,000 channels: the reading is over 16 KiB",
        dumps(good(channels={f"channel_{i:04d}": 1.0 for i in range(2_000)})), q("too_large"))  # fmt: skip
    add("empty_channel_map", "channel_map", "channels = {}", dumps(good(channels={})), q("no_channels"))
    add("channel_name_too_long", "channel_map", "a 65-character channel name",
        dumps(channels(**{"x" * 65: 1.0})), q("wrong_type"))  # fmt: skip
    add("empty_channel_name", "channel_map", 'a channel named ""', dumps(channels(**{"": 1.0})),
        q("wrong_type"))  # fmt: skip

    # -- payloads over the size limits ---------------------------------------------------------------------
    add("payload_over_1_mib", "size_limit", "a record over the 1 MiB Kinesis cap",
        b'{"device_id":"x","pad":"' + b"a" * 1_048_600 + b'"}', q("too_large"))  # fmt: skip
    add("reading_over_16_kib", "size_limit", "one reading padded to 17 KB",
        dumps(good(debug="x" * 17_000)), q("too_large"))  # fmt: skip
    add("batch_of_501", "size_limit", "a JSON array of 501 readings", dumps([good() for _ in range(501)]),
        q("batch_too_large"))  # fmt: skip
    d = good()
    add("array_with_one_oversized_element", "size_limit", "[oversized reading, valid reading]",
        dumps([good(debug="x" * 17_000), d]),
        [{"outcome": "quarantined", "reason": "too_large"}, ok(d)])  # fmt: skip
    add("firmware_too_long", "size_limit", "a 65-character firmware string",
        dumps(good(firmware="1" * 65)), q("wrong_type"))  # fmt: skip

    # -- timestamps ----------------------------------------------------------------------------------------
    add("ts_year_2100", "timestamps", "far future", dumps(good(ts="2100-01-01T00:00:00Z")), q("ts_in_future"))
    add("ts_six_minutes_ahead", "timestamps", "6 minutes after arrival (skew limit is 5)",
        dumps(good(ts=RECEIVED_MS + 360_000)), q("ts_in_future"))  # fmt: skip
    d = good(ts=RECEIVED_MS + 240_000)
    add("ts_four_minutes_ahead", "timestamps", "4 minutes after arrival: inside the clock-skew allowance",
        dumps(d), [ok(d, RECEIVED_MS + 240_000)])  # fmt: skip
    add("ts_epoch_zero", "timestamps", "a clock reset to 1970", dumps(good(ts=0)), q("ts_too_old"))
    add("ts_negative", "timestamps", "a negative epoch", dumps(good(ts=-86_400_000)), q("ts_too_old"))
    add("ts_epoch_seconds", "timestamps", "epoch seconds where milliseconds belong",
        dumps(good(ts=TS_MS // 1000)), q("ts_too_old"))  # fmt: skip
    add("ts_year_1999_iso", "timestamps", "far past, ISO", dumps(good(ts="1999-12-31T23:59:59Z")),
        q("ts_too_old"))  # fmt: skip
    add("ts_naive_iso", "timestamps", "ISO-8601 without an offset", dumps(good(ts="2026-03-10T12:30:00")),
        q("invalid_timestamp"))  # fmt: skip
    add("ts_us_format", "timestamps", "MM/DD/YYYY", dumps(good(ts="03/10/2026 12:30:00 +0000")),
        q("invalid_timestamp"))  # fmt: skip
    add("ts_february_30", "timestamps", "an impossible date", dumps(good(ts="2026-02-30T12:00:00Z")),
        q("invalid_timestamp"))  # fmt: skip
    add("ts_free_text", "timestamps", "words", dumps(good(ts="yesterday at noon")), q("invalid_timestamp"))
    add("ts_fractional_millis", "timestamps", "1773145800000.5 ms", dumps(good(ts=TS_MS + 0.5)),
        q("wrong_type"))  # fmt: skip
    d = good(ts="2026-03-10T18:00:00+05:30")
    add("ts_with_offset", "timestamps", "+05:30 offset becomes the same UTC instant", dumps(d), [ok(d)])
    d = good(ts=float(TS_MS))
    add("ts_integral_float", "timestamps", "epoch millis written as 1773145800000.0", dumps(d), [ok(d)])

    # -- device ids ----------------------------------------------------------------------------------------
    d = good(device_id="site9-dev-999")
    add("unknown_device", "unknown_devices", "a device no registry knows: accepted, judged by the fleet "
        "model downstream", dumps(d), [ok(d)])  # fmt: skip
    add("device_id_path_traversal", "unknown_devices", "../../etc/passwd",
        dumps(good(device_id="../../etc/passwd")), q("invalid_device_id"))  # fmt: skip
    add("device_id_sql_injection", "unknown_devices", "a quote and SQL",
        dumps(good(device_id="x'; DROP TABLE readings;--")), q("invalid_device_id"))  # fmt: skip
    add("device_id_too_long", "unknown_devices", "65 characters", dumps(good(device_id="d" * 65)),
        q("invalid_device_id"))  # fmt: skip
    add(
        "device_id_empty",
        "unknown_devices",
        "empty string",
        dumps(good(device_id="")),
        q("invalid_device_id"),
    )
    add("device_id_unicode", "unknown_devices", "non-ASCII letters", dumps(good(device_id="g\u00e9r\u00e4t-1")),
        q("invalid_device_id"))  # fmt: skip
    add("device_id_number", "unknown_devices", "device_id = 17", dumps(good(device_id=17)), q("wrong_type"))

    # -- JSON arrays of readings -----------------------------------------------------------------------------
    a, b, c = good(), good(), good()
    add("array_of_three", "arrays", "three valid readings in one record", dumps([a, b, c]),
        [ok(a), ok(b), ok(c)])  # fmt: skip
    a = good()
    add("array_mixed", "arrays", "[valid, string seq, 7, null, []]",
        dumps([a, good(seq="43"), 7, None, []]),
        [ok(a), {"outcome": "quarantined", "reason": "wrong_type"},
         {"outcome": "quarantined", "reason": "not_an_object"},
         {"outcome": "quarantined", "reason": "not_an_object"},
         {"outcome": "quarantined", "reason": "not_an_object"}])  # fmt: skip
    add(
        "array_nested",
        "arrays",
        "[[reading]]: the element is an array",
        dumps([[good()]]),
        q("not_an_object"),
    )
    five_hundred = [good() for _ in range(500)]
    add("array_of_500", "arrays", "exactly the 500-reading limit", dumps(five_hundred),
        [ok(r) for r in five_hundred])  # fmt: skip

    # -- empty records and scalars ----------------------------------------------------------------------------
    add("zero_bytes", "empty", "an empty record", b"", q("empty"))
    add("whitespace_only", "empty", "spaces, tab and carriage return", b"  \t\r ", q("empty"))
    add("empty_array", "empty", "[]", b"[]", q("empty"))
    add("json_null", "empty", "null", b"null", q("not_an_object"))
    add("json_empty_string", "empty", '""', b'""', q("not_an_object"))
    add("json_number", "empty", "a bare number", b"42", q("not_an_object"))
    add("nul_bytes", "empty", "four NUL bytes", b"\x00\x00\x00\x00", q("invalid_json"))

    # -- framing: a record holding a newline -------------------------------------------------------------------
    d = good()
    add("pretty_printed_reading", "framing",
        "valid JSON spread over lines: the raw zone is newline-framed, so the contract refuses raw newlines",
        json.dumps(d, indent=2).encode(), q("multi_line"),
        cold_path="the raw zone splits the record into 11 lines, each quarantined as invalid_json",
        known_issue="raw zone framing: Firehose appends only a newline, so a record containing a newline "
        "byte becomes several raw lines; the hot path quarantines the record (multi_line), the raw -> "
        "curated job quarantines each fragment line (invalid_json); neither accepts it")  # fmt: skip
    return out


def write() -> None:
    payload_dir = HERE / "payloads"
    payload_dir.mkdir(exist_ok=True)
    for old in payload_dir.iterdir():
        old.unlink()
    manifest: dict[str, Any] = {
        "description": "Hostile and broken readings with their expected outcome per element. "
        "See tests/reliability/corpus/build_corpus.py.",
        "received_at": RECEIVED.isoformat().replace("+00:00", "Z"),
        "received_ms": RECEIVED_MS,
        "cases": [],
    }
    seen: set[str] = set()
    for case in cases():
        assert case.id not in seen, case.id
        seen.add(case.id)
        name = f"{case.id}.bin"
        data = case.payload
        if len(data) > COMPRESS_OVER:
            name += ".gz"
            data = gzip.compress(data, mtime=0)
        (payload_dir / name).write_bytes(data)
        entry: dict[str, Any] = {
            "id": case.id,
            "category": case.category,
            "description": case.description,
            "payload": f"payloads/{name}",
            "bytes": len(case.payload),
            "expect": case.expect,
        }
        entry.update(case.notes)
        manifest["cases"].append(entry)
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {len(manifest['cases'])} cases to {HERE}")


if __name__ == "__main__":
    write()
