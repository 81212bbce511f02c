"""The bad-input corpus through the hot path: the calibrate Lambda handler with a real-shaped event.

Quarantined elements must land in the hot quarantine zone with the decoder's reason (and their array
index), never in `batchItemFailures` (a poison record must not block its shard); accepted readings
must reach the calibrated stream exactly once, and the downstream stages must take all of them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest

from airlake.calibration import load_calibrator
from airlake.hot.outputs import MemoryLake, MemoryNotifier, MemoryStream
from airlake.hot.pipeline import AggregateStage, CalibrateStage, ClassifyStage, parse_records
from airlake.hot.state import InMemoryStateStore
from lambdas.calibrate import handler as calibrate_handler
from tests.hot.conftest import FakeContext, kinesis_event, seqnos
from tests.reliability.conftest import CORPUS

NO_MODELS = Path("/nonexistent-models")  # the built-in fleet calibration


@pytest.fixture(scope="module")
def hot_run() -> tuple[dict[str, Any], dict[str, Any], MemoryStream, MemoryLake]:
    """The whole corpus as one Kinesis batch (one record per case) through the calibrate handler."""
    stream, lake = MemoryStream(), MemoryLake()
    calibrate_handler.set_stage(CalibrateStage(load_calibrator(NO_MODELS), stream, lake))
    event = kinesis_event([case.payload for case in CORPUS.cases], arrival_ms=CORPUS.received_ms)
    try:
        response = calibrate_handler.handler(event, FakeContext())
    finally:
        calibrate_handler.set_stage(None)
    return event, response, stream, lake


def test_no_corpus_record_is_a_batch_item_failure(hot_run: Any) -> None:
    _event, response, _stream, _lake = hot_run
    assert response == {"batchItemFailures": []}


def test_every_quarantined_element_is_in_the_hot_quarantine_with_its_reason_and_index(hot_run: Any) -> None:
    event, _response, _stream, lake = hot_run
    by_record: dict[str, list[tuple[int | None, str]]] = {}
    for doc in lake.docs("quarantine"):
        assert (doc["stage"], doc["arrival"]) == ("calibrate", "2026-03-10T13:00:00.000Z")
        by_record.setdefault(doc["sequence_number"], []).append((doc["index"], doc["reason"]))
    expected: dict[str, list[tuple[int | None, str]]] = {}
    for case, seqno in zip(CORPUS.cases, seqnos(event), strict=True):
        per_element = _is_array_element(case.payload)
        elements = [
            (i if per_element else None, e.reason)
            for i, e in enumerate(case.expect)
            if e.outcome == "quarantined" and e.reason is not None
        ]
        if elements:
            expected[seqno] = elements
    assert {k: sorted(v, key=repr) for k, v in by_record.items()} == {
        k: sorted(v, key=repr) for k, v in expected.items()
    }


def _is_array_element(payload: bytes) -> bool:
    """Whether the decoder judges this payload element by element (a non-empty array within limits)."""
    try:
        parsed = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return False
    return type(parsed) is list and 0 < len(parsed) <= 500


def test_every_accepted_reading_reaches_the_calibrated_stream_once_with_its_channels(hot_run: Any) -> None:
    _event, _response, stream, _lake = hot_run
    # a calibrated record holds one reading, or a device's readings of the batch as a JSON array
    out = [doc for _key, data in stream.records for doc in _docs(orjson.loads(data))]
    keys = Counter((doc["device_id"], doc["ts"], doc["seq"]) for doc in out)
    expected = Counter(key for case in CORPUS.cases for key in case.accepted_keys)
    assert keys == expected
    assert max(keys.values()) == 1
    # the partition key is the device, and the raw channels travel with the calibrated ones
    assert all(key == doc["device_id"] for key, data in stream.records for doc in _docs(orjson.loads(data)))
    assert all({"co", "nox", "no2"} >= set(doc["calibrated"]) for doc in out)
    sixty_four = next(doc for doc in out if len(doc["channels"]) >= 64)
    assert {f"c{i:02d}" for i in range(64)} <= set(sixty_four["channels"])


def test_the_calibrated_corpus_is_taken_whole_by_aggregate_and_classify(hot_run: Any) -> None:
    # Given the calibrated stream's records, delivered to the next two stages
    _event, _response, stream, _lake = hot_run
    calibrated = kinesis_event([data for _key, data in stream.records], arrival_ms=CORPUS.received_ms)
    readings = sum(len(_docs(orjson.loads(data))) for _key, data in stream.records)
    # When aggregate and classify process them
    aggregate = AggregateStage(InMemoryStateStore(), MemoryLake(), clock=lambda: CORPUS.received_ms / 1000)
    classify = ClassifyStage(
        InMemoryStateStore(), MemoryLake(), MemoryNotifier(), clock=lambda: CORPUS.received_ms / 1000
    )
    agg = aggregate.process(parse_records(calibrated))
    cls = classify.process(parse_records(calibrated))
    # Then nothing is quarantined or failed there, and every reading is applied (none lost)
    assert (agg.failed, dict(agg.quarantined), cls.failed, dict(cls.quarantined)) == (set(), {}, set(), {})
    assert agg.counts["accepted"] + agg.counts["late"] == readings
    assert cls.counts["applied"] == readings


def _docs(payload: Any) -> list[Any]:
    return payload if isinstance(payload, list) else [payload]
