"""The three stages end to end with in-memory state and outputs: quarantine, redelivery, failures."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from jsonschema import Draft202012Validator

from airlake.calibration import DirectorySource, ModelProvider, load_calibrator
from airlake.hot.outputs import MemoryLake, MemoryNotifier, MemoryStream
from airlake.hot.pipeline import (
    AggregateStage,
    CalibrateStage,
    ClassifyStage,
    latest_aggregates,
    parse_records,
)
from airlake.hot.state import InMemoryStateStore, Key, Write
from airlake.windows import window_channels
from tests.hot.conftest import MIN, T0_MS, kinesis_event, load_event, reading, seqnos

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "alert.v1.json").read_text())
NO_MODELS = Path("/nonexistent-models")


def test_calibrate_quarantines_bad_records_and_forwards_calibrated_readings() -> None:
    # Given the real-shaped event: two good readings, one truncated JSON, one negative CO2
    event = load_event("kinesis_readings.json")
    stream, lake = MemoryStream(), MemoryLake()
    stage = CalibrateStage(load_calibrator(NO_MODELS), stream, lake)
    # When processed
    outcome = stage.process(parse_records(event))
    # Then bad input is quarantined with its reason, record and arrival, and is not a failure
    assert outcome.failed == set()
    assert dict(outcome.quarantined) == {"invalid_json": 1, "out_of_range": 1}
    quarantine = lake.docs("quarantine")
    assert [(q["reason"], q["sequence_number"], q["arrival"]) for q in quarantine] == [
        ("invalid_json", seqnos(event)[2], "2026-03-10T12:00:30.000Z"),
        ("out_of_range", seqnos(event)[3], "2026-03-10T12:00:30.000Z"),
    ]
    assert quarantine[0]["raw_text"] == '{"device_id": "site1-dev-003", "ts": 17736'
    # And each good reading goes out keyed by device, with raw and calibrated channels and the version
    assert [key for key, _ in stream.records] == ["site1-dev-001", "site1-dev-002"]
    first = orjson.loads(stream.records[0][1])
    assert first["calibrated"] == ["co", "no2", "nox"]
    assert first["model_version"] == "builtin-linear-uci-v1"
    assert first["channels"]["mox_co"] == 1180.0
    # co = 2.129711 + 1.295641 z(mox_co=1180) - 0.115697 z(T=21.3) - 0.192706 z(RH=44) = 2.550833
    # (the UCI baseline), kept to co's two output decimals
    assert first["channels"]["co"] == 2.55


def test_calibrate_reports_only_the_records_the_stream_refused() -> None:
    # Given a stream that refuses the second entry even after retries
    event = load_event("kinesis_readings.json")
    stage = CalibrateStage(load_calibrator(NO_MODELS), MemoryStream(fail_indexes={1}), MemoryLake())
    # Then only the record of that device fails
    assert stage.process(parse_records(event)).failed == {seqnos(event)[1]}


def _calibrated(device: str, minutes: list[int], co2: float = 600.0) -> list[dict[str, Any]]:
    return [reading(device, m * MIN, 1000 + m, co2=co2, co=1.0) for m in minutes]


def test_aggregate_batches_state_io_and_a_redelivered_batch_emits_nothing_new() -> None:
    # Given two devices sending a reading a minute for 10 minutes
    store, lake = InMemoryStateStore(), MemoryLake()
    stage = AggregateStage(store, lake, clock=lambda: 1_800_000_000.0)
    event = kinesis_event(_calibrated("a", list(range(10))) + _calibrated("b", list(range(10))))
    # When the batch is processed
    outcome = stage.process(parse_records(event))
    # Then state I/O was one batched read and one batched write for the whole batch
    assert (store.get_calls, store.put_calls) == (1, 1)
    assert outcome.failed == set()
    windows = [
        (a["device_id"], a["window"], a["start"], window_channels(a)["co2"]["count"])
        for a in lake.docs("aggregates")
    ]
    # (watermark 12:07: only [12:00, 12:05) closed, and the sliding hour ending at 12:05)
    assert windows == [
        ("a", "tumbling_5m", "2026-03-10T12:00:00.000Z", 5),
        ("a", "sliding_1h_5m", "2026-03-10T11:05:00.000Z", 5),
        ("b", "tumbling_5m", "2026-03-10T12:00:00.000Z", 5),
        ("b", "sliding_1h_5m", "2026-03-10T11:05:00.000Z", 5),
    ]
    objects = dict(lake.objects)
    # When the same batch is delivered again
    again = stage.process(parse_records(event))
    # Then no new aggregate and no new object: everything was a duplicate
    assert (again.counts["aggregates"], again.counts["duplicates"], again.failed) == (0, 20, set())
    assert lake.objects == objects


def test_aggregate_routes_too_late_readings_to_the_late_zone() -> None:
    store, lake = InMemoryStateStore(), MemoryLake()
    stage = AggregateStage(store, lake)
    stage.process(parse_records(kinesis_event(_calibrated("a", [0, 1, 12]))))
    # When a reading for the closed [12:00, 12:05) pane arrives
    late = kinesis_event([reading("a", 2 * MIN, 5, co2=700.0)], arrival_ms=T0_MS + 13 * MIN)
    outcome = stage.process(parse_records(late))
    # Then it is counted and routed, not aggregated
    assert outcome.counts["late"] == 1
    assert [(d["device_id"], d["seq"], d["reason"]) for d in lake.docs("late")] == [("a", 5, "too_late")]


def test_classify_publishes_one_raise_with_attributes_and_a_redelivery_publishes_nothing() -> None:
    # Given calibrated readings with CO2 at 1500 ppm from minute 1 to 7
    event = load_event("kinesis_calibrated.json")
    store, lake, notifier = InMemoryStateStore(), MemoryLake(), MemoryNotifier()
    stage = ClassifyStage(store, lake, notifier)
    # When processed twice (a redelivery)
    first = stage.process(parse_records(event))
    second = stage.process(parse_records(event))
    # Then exactly one alert was published, with its filterable attributes
    assert (first.failed, second.failed) == (set(), set())
    assert len(notifier.messages) == 1
    message, attributes = notifier.messages[0]
    alert = json.loads(message)
    assert attributes == {"severity": "warning", "event_type": "co2_high", "device_id": "site1-dev-001",
                          "site": "unknown", "status": "raised", "schema_version": "1"}  # fmt: skip
    assert (alert["episode_start"], alert["at"], alert["peak"]) == (
        "2026-03-10T12:01:00.000Z", "2026-03-10T12:06:00.000Z", 1500.0)  # fmt: skip
    # And the document validates against the published schema, and is in the lake
    assert list(Draft202012Validator(SCHEMA).iter_errors(alert)) == []
    assert lake.docs("alerts") == [alert]


def test_publish_failure_fails_the_device_records_then_the_retry_publishes_once() -> None:
    # Given SNS failing on the first attempt
    event = load_event("kinesis_calibrated.json")
    store, notifier = InMemoryStateStore(), MemoryNotifier(failures_left=1)
    stage = ClassifyStage(store, MemoryLake(), notifier)
    # When processed: the device's records fail and its state is not advanced
    assert stage.process(parse_records(event)).failed == set(seqnos(event))
    assert store.doc("cls#site1-dev-001", "state") is None
    # When Lambda redelivers the batch (SNS is back)
    assert stage.process(parse_records(event)).failed == set()
    # Then the raise was published exactly once
    assert [json.loads(m)["status"] for m, _ in notifier.messages] == ["raised"]


def test_alert_schema_rejects_a_document_without_its_attributes() -> None:
    event = load_event("kinesis_calibrated.json")
    notifier = MemoryNotifier()
    ClassifyStage(InMemoryStateStore(), MemoryLake(), notifier).process(parse_records(event))
    alert = json.loads(notifier.messages[0][0])
    del alert["severity"]
    assert [e.validator for e in Draft202012Validator(SCHEMA).iter_errors(alert)] == ["required"]


class _RacingStore(InMemoryStateStore):
    """Another writer updates device `b` between this batch's read and its write."""

    def put_many(self, writes: Sequence[Write]) -> list[Key]:
        for key in list(self.items):
            if key[0] == "agg#b":
                body, version, expires = self.items[key]
                self.items[key] = (body, version + 1, expires)
        return super().put_many(writes)


def test_aggregate_state_conflict_fails_only_that_devices_records() -> None:
    # Given both devices have state, and a concurrent writer touches b's before our write
    store = _RacingStore()
    stage = AggregateStage(store, MemoryLake())
    stage.process(parse_records(kinesis_event(_calibrated("a", [0]) + _calibrated("b", [0]))))
    event = kinesis_event(_calibrated("a", [1]) + _calibrated("b", [1]), first_seq=10)
    # When the next batch is processed
    outcome = stage.process(parse_records(event))
    # Then only b's record fails (and will be redelivered); a's state advanced
    assert outcome.failed == {seqnos(event)[1]}
    assert outcome.counts["state_conflicts"] == 1


def test_event_type_model_labels_the_alert_and_the_device_registry_names_the_site(tmp_path: Path) -> None:
    # Given a classifier artifact (pm25 far above 20 -> cooking) and a device registry
    clf = tmp_path / "classifier"
    clf.mkdir()
    model = {"format": "airlake.model/v1", "kind": "classifier", "features": [{"op": "raw", "col": "pm25"}],
             "classes": ["occupancy", "cooking"], "target_transform": None,
             "estimator": {"type": "linear", "fill": [0.0], "mean": [0.0], "scale": [1.0], "coef": [[1.0]],
                           "intercept": [-20.0]}}  # fmt: skip
    (clf / "model.json").write_text(json.dumps(model))
    (clf / "metadata.json").write_text(json.dumps({"format": "airlake.model/v1", "kind": "classifier",
                                                   "version": "clf-1"}))  # fmt: skip
    (tmp_path / "registry.json").write_text(
        json.dumps({"version": "r7", "calibration": {}, "classifier": "classifier"})
    )
    (tmp_path / "devices.json").write_text(json.dumps([{"device_id": "k1", "site": "flat-3", "model": "AL-100",
                                                        "installed": "2025-05-01", "reference": False}]))  # fmt: skip
    notifier = MemoryNotifier()
    stage = ClassifyStage(
        InMemoryStateStore(), MemoryLake(), notifier, ModelProvider(DirectorySource(tmp_path))
    )
    # When PM2.5 stays at 40 ug/m3 for 10 minutes
    stage.process(parse_records(kinesis_event([reading("k1", m * MIN, m, pm25=40.0) for m in range(10)])))
    # Then the raise carries the model's label, the registry version and the device's site
    alert = json.loads(notifier.messages[0][0])
    assert (alert["event_type"], alert["label"], alert["model_version"], alert["site"]) == (
        "pm25_high", "cooking", "r7", "flat-3")  # fmt: skip
    assert notifier.messages[0][1]["site"] == "flat-3"


def test_latest_per_device_view_holds_the_last_closed_windows_and_averages() -> None:
    store = InMemoryStateStore()
    AggregateStage(store, MemoryLake()).process(
        parse_records(kinesis_event(_calibrated("a", list(range(10)))))
    )
    latest = latest_aggregates(store, ["a", "unknown-device"])
    assert list(latest) == ["a"]
    assert sorted(latest["a"]["windows"]) == ["sliding_1h_5m", "tumbling_5m"]
    assert latest["a"]["windows"]["tumbling_5m"]["end_ms"] == T0_MS + 5 * MIN
    assert latest["a"]["ema"] == {"co2": 600.0, "co": 1.0}


def test_downstream_stages_quarantine_a_foreign_record_on_the_calibrated_stream() -> None:
    # Given the calibrated stream carrying one good reading, one with a string channel, one not JSON
    good = reading("a", 0, 1, co2=600.0)
    bad_channel = reading("a", MIN, 2, co2=600.0) | {"channels": {"co2": "600"}}
    event = kinesis_event([good, bad_channel, b"\x00garbage"], arrival_ms=T0_MS + 2 * MIN)
    aggregate_lake, classify_lake = MemoryLake(), MemoryLake()
    for stage, lake in (
        (AggregateStage(InMemoryStateStore(), aggregate_lake), aggregate_lake),
        (ClassifyStage(InMemoryStateStore(), classify_lake, MemoryNotifier()), classify_lake),
    ):
        # When processed
        outcome = stage.process(parse_records(event))
        # Then the bad two are quarantined with the contract's reasons, nothing fails, the good one counts
        assert (outcome.failed, dict(outcome.quarantined)) == (set(), {"wrong_type": 1, "invalid_json": 1})
        assert [q["sequence_number"] for q in lake.docs("quarantine")] == seqnos(event)[1:]


def test_one_device_clock_running_ahead_does_not_declare_the_others_silent() -> None:
    # Given three devices reporting at 12:00, c with a clock 4 min ahead (within the contract's skew)
    stage = ClassifyStage(InMemoryStateStore(), MemoryLake(), notifier := MemoryNotifier())
    first = [reading("a", 0, 1, temperature=21.0), reading("b", 0, 1, temperature=21.0),
             reading("c", 4 * MIN, 1, temperature=21.0)]  # fmt: skip
    stage.process(parse_records(kinesis_event(first, arrival_ms=T0_MS + 2_000)))
    # When the next batch has a at 12:01:30 and c stamped 12:05:30 (5.5 min after b's last reading)
    batch = [reading("a", 90_000, 2, temperature=21.1), reading("c", 330_000, 2, temperature=21.1)]
    stage.process(parse_records(kinesis_event(batch, arrival_ms=T0_MS + 92_000)))
    # Then b is not declared silent: the shard clock is the (low) median device time, 12:01:30
    assert notifier.messages == []


class _DownStream:
    def put_records(self, records: Sequence[tuple[str, bytes]]) -> list[int]:
        raise ConnectionError("kinesis unreachable")


def test_calibrate_fails_every_forwarded_record_when_the_stream_is_down_but_not_the_quarantined() -> None:
    event = load_event("kinesis_readings.json")
    outcome = CalibrateStage(load_calibrator(NO_MODELS), _DownStream(), MemoryLake()).process(
        parse_records(event)
    )
    assert outcome.failed == set(seqnos(event)[:2])
