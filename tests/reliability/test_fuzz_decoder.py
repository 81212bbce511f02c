"""Property-based fuzzing of the decoder: whatever arrives, nothing raises and nothing vanishes.

Three input families: arbitrary bytes, arbitrary JSON documents (NaN and Infinity included), and
mutations of valid readings (a field removed or replaced, bytes flipped, inserted or cut). For each
input: `decode` returns at least one result, each a Reading or a Quarantined with a Reason code, a
Reading satisfies the published contract (the pydantic model plus the time bounds), quarantine keeps
the original bytes, and decoding the same bytes twice gives the same answer.

Derandomized with a fixed example budget so CI sees the same inputs every run.
"""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlake.contract import Quarantined, Reading, Reason, decode, decoder
from airlake.contract.limits import CHANNEL_RANGES, FLEET_EPOCH_MS, MAX_CLOCK_SKEW_MS
from airlake.contract.model import ReadingV1

RECEIVED_MS = 1_773_147_600_000  # 2026-03-10T13:00:00Z
FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=12), children, max_size=6)
    ),
    max_leaves=16,
)
finite_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(max_size=30)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)  # fmt: skip
device_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,64}", fullmatch=True)
known_channels = st.sampled_from(sorted(CHANNEL_RANGES))


@st.composite
def valid_readings(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(known_channels, min_size=1, max_size=8, unique=True))
    channels = {}
    for name in names:
        low, high, _unit = CHANNEL_RANGES[name]
        channels[name] = draw(st.floats(min_value=low, max_value=high, allow_nan=False))
    doc: dict[str, Any] = {
        "device_id": draw(device_ids),
        "ts": draw(st.integers(min_value=FLEET_EPOCH_MS, max_value=RECEIVED_MS + MAX_CLOCK_SKEW_MS)),
        "seq": draw(st.integers(min_value=0, max_value=2**63 - 1)),
        "channels": channels,
    }
    if draw(st.booleans()):
        doc["firmware"] = draw(st.text(max_size=64))
    return doc


def encode(doc: Any) -> bytes:
    """Serialize like a sloppy device: NaN/Infinity tokens allowed, non-ASCII kept."""
    return json.dumps(doc, allow_nan=True, ensure_ascii=False).encode("utf-8", "surrogatepass")


@st.composite
def mutated_readings(draw: st.DrawFn) -> bytes:
    doc = draw(valid_readings())
    mutation = draw(st.sampled_from(["drop", "replace", "channel", "flip", "insert", "cut", "wrap"]))
    if mutation == "drop":
        del doc[draw(st.sampled_from(sorted(doc)))]
    elif mutation == "replace":
        doc[draw(st.sampled_from(sorted(doc)))] = draw(json_values)
    elif mutation == "channel":
        doc["channels"][draw(st.text(max_size=70))] = draw(json_values)
    elif mutation == "wrap":
        return encode([doc, draw(json_values), doc])
    data = bytearray(encode(doc))
    if mutation == "flip":
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif mutation == "insert":
        position = draw(st.integers(0, len(data)))
        data[position:position] = draw(st.binary(min_size=1, max_size=8))
    elif mutation == "cut":
        del data[draw(st.integers(0, len(data) - 1)) :]
    return bytes(data)


def check_invariants(data: bytes) -> list[Reading | Quarantined]:
    results = decode(data, received_ms=RECEIVED_MS)
    assert len(results) >= 1
    for result in results:
        assert isinstance(result, Reading | Quarantined)
        if isinstance(result, Quarantined):
            assert isinstance(result.reason, Reason)
            assert result.reason is not Reason.PROCESSING_ERROR  # a stage-level reason, never the decoder's
            if result.index is None:
                assert result.raw == data  # the whole record, byte for byte
        else:
            assert_reading_satisfies_contract(result)
    if len(results) > 1:  # only an array payload yields several results, one per element in order
        assert [getattr(r, "index", i) for i, r in enumerate(results)] == list(range(len(results)))
    assert decode(data, received_ms=RECEIVED_MS) == results  # deterministic
    return results


def assert_reading_satisfies_contract(reading: Reading) -> None:
    model = ReadingV1.model_validate(reading.to_dict())
    assert model.device_id == reading.device_id
    assert FLEET_EPOCH_MS <= reading.ts_ms <= RECEIVED_MS + MAX_CLOCK_SKEW_MS
    assert all(math.isfinite(v) for v in reading.channels.values())


@FUZZ
@given(st.binary(max_size=512))
def test_arbitrary_bytes_never_raise_and_always_end_somewhere(data: bytes) -> None:
    check_invariants(data)


@FUZZ
@given(json_values)
def test_arbitrary_json_documents_never_raise_and_always_end_somewhere(doc: Any) -> None:
    check_invariants(encode(doc))


@FUZZ
@given(mutated_readings())
def test_mutated_readings_never_raise_and_always_end_somewhere(data: bytes) -> None:
    check_invariants(data)


@FUZZ
@given(valid_readings())
def test_a_valid_reading_is_always_accepted_with_its_idempotency_key(doc: dict[str, Any]) -> None:
    # The other side of the fuzzing: the contract must not reject what it promises to accept
    results = check_invariants(encode(doc))
    assert len(results) == 1
    reading = results[0]
    assert isinstance(reading, Reading)
    assert reading.key == (doc["device_id"], doc["ts"], doc["seq"])
    assert reading.channels == doc["channels"]


@FUZZ
@given(st.lists(valid_readings() | finite_values, min_size=1, max_size=8))
def test_a_parseable_array_yields_exactly_one_result_per_element(items: list[Any]) -> None:
    results = check_invariants(encode(items))
    assert len(results) == len(items)


@FUZZ
@given(valid_readings(), mutated_readings())
def test_the_inline_common_case_judges_exactly_as_the_full_path(doc: dict[str, Any], mutated: bytes) -> None:
    # Given a valid reading and a mutation of one, each decoded once so that its device id and
    # channel layout are known (the inline path only takes ids and layouts seen valid before)
    for data in (encode(doc), mutated, encode(doc | {"ts": doc["ts"] + 1})):
        decode(data, received_ms=RECEIVED_MS)
        # When decoded again by `decode` (inline common case first) and by the full path alone
        fast = decode(data, received_ms=RECEIVED_MS)
        full = decoder._decode(data, RECEIVED_MS)
        # Then both give the same readings and the same quarantine reasons and details
        assert fast == full
        # And as a document, the record is that one reading's wire document, or the same results
        document = decoder.decode_document(data, RECEIVED_MS)
        if type(document) is dict:
            assert len(full) == 1 and isinstance(full[0], Reading) and document == full[0].to_dict()
        else:
            assert (document if isinstance(document, list) else [document]) == full
