"""Reporting intervals from the device registry: completeness and fault timings follow each device.

The same 12-hour fault scenario (3 h normal, 3 h silent, 2 h normal, 3 h stuck, 1 h normal) is run
at a 60-s and a 900-s interval: each raises exactly one dropout and one flatline, at the times the
interval implies, and a device reporting steadily raises nothing.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from airlake.calibration import DirectorySource, ModelProvider, interval_ms, load_calibrator
from airlake.classification import FaultConfig, FaultTimes, check_dropouts
from airlake.contract import Reading
from airlake.hot.outputs import MemoryLake, MemoryNotifier, MemoryStream
from airlake.hot.pipeline import AggregateStage, CalibrateStage, ClassifyStage, parse_records
from airlake.hot.state import InMemoryStateStore
from airlake.windows import DeviceWindows, WindowConfig, apply_readings, window_channels
from tests.hot.conftest import MIN, T0_MS, kinesis_event, reading

HOUR = 60 * MIN
SILENT = (3 * HOUR, 6 * HOUR)
STUCK = (8 * HOUR, 11 * HOUR)
SCENARIO_END = 12 * HOUR


def scenario(step_ms: int, *, faulty: bool) -> list[tuple[int, float]]:
    """(offset ms, temperature) of one device; a healthy one changes value on every reading."""
    out = []
    for k in range(SCENARIO_END // step_ms):
        offset = k * step_ms
        if faulty and SILENT[0] <= offset < SILENT[1]:
            continue
        stuck = faulty and STUCK[0] <= offset < STUCK[1]
        out.append((offset, 22.5 if stuck else 21.0 + 0.01 * (k % 10)))
    return out


def calibrated_batches(step_s: int | None, interval_s: int) -> list[list[dict[str, Any]]]:
    """One-hour batches of calibrated records from a faulty and a steady device, both reporting
    every `interval_s`; `step_s` is the interval the calibrate stage stamped (None: not known)."""
    step_ms = interval_s * 1000
    docs = []
    for device, faulty in (("faulty", True), ("steady", False)):
        for seq, (offset, temperature) in enumerate(scenario(step_ms, faulty=faulty)):
            doc = reading(device, offset, seq, temperature=temperature)
            if step_s is not None:
                doc["report_interval_s"] = step_s
            docs.append(doc)
    docs.sort(key=lambda d: (d["ts"], d["device_id"]))
    return [[d for d in docs if hour * HOUR <= d["ts"] - T0_MS < (hour + 1) * HOUR] for hour in range(12)]


def run_classify(
    step_s: int | None, interval_s: int
) -> tuple[list[tuple[str, str, str, int]], ClassifyStage]:
    notifier = MemoryNotifier()
    stage = ClassifyStage(InMemoryStateStore(), MemoryLake(), notifier)
    for batch in calibrated_batches(step_s, interval_s):
        assert stage.process(parse_records(kinesis_event(batch))).failed == set()
    alerts = [json.loads(message) for message, _ in notifier.messages]
    transitions = [
        (a["device_id"], a["event_type"], a["status"], (a["at_ms"] - T0_MS) // MIN) for a in alerts
    ]
    return transitions, stage


@pytest.mark.parametrize(
    ("interval_s", "expected"),
    [
        (
            60,
            [  # last reading 2:59, +5 min; stuck from 8:00, +30 min
                ("faulty", "fault_dropout", "raised", 184),
                ("faulty", "fault_dropout", "cleared", 360),
                ("faulty", "fault_flatline", "raised", 510),
                ("faulty", "fault_flatline", "cleared", 660),
            ],
        ),
        (
            900,
            [  # last reading 2:45, +75 min (5 intervals); stuck from 8:00, +90 min (6 intervals)
                ("faulty", "fault_dropout", "raised", 240),
                ("faulty", "fault_dropout", "cleared", 360),
                ("faulty", "fault_flatline", "raised", 570),
                ("faulty", "fault_flatline", "cleared", 660),
            ],
        ),
    ],
)
def test_the_same_fault_scenario_raises_one_dropout_and_one_flatline_at_either_interval(
    interval_s: int, expected: list[tuple[str, str, str, int]]
) -> None:
    # Given a faulty and a steady device whose calibrated records carry the registry's interval
    # When twelve hourly batches are classified
    transitions, _stage = run_classify(interval_s, interval_s)
    # Then the faulty device raises and clears one dropout and one flatline; the steady one nothing
    assert transitions == expected


def test_a_device_steady_at_15_minutes_is_not_silent_but_it_was_with_the_60_s_default() -> None:
    # Given devices reporting every 900 s whose interval the calibrate stage stamped
    steady = [t for t in run_classify(900, 900)[0] if t[0] == "steady"]
    # Then the steady one raises nothing
    assert steady == []
    # When nothing says the interval (unknown device), the 60-s default applies and is counted
    unknown, stage = run_classify(None, 900)
    assert [t[1:3] for t in unknown if t[0] == "steady"][:2] == [
        ("fault_dropout", "raised"),
        ("fault_dropout", "cleared"),
    ]
    outcome = stage.process(
        parse_records(kinesis_event([reading("steady", SCENARIO_END, 99, temperature=21.0)]))
    )
    assert outcome.counts["default_interval_devices"] == 1


def test_fault_timings_are_the_longer_of_the_wall_duration_and_the_intervals() -> None:
    cfg = FaultConfig()
    # At the 60-s design step every timing is the original one
    assert cfg.for_step(None) == cfg.for_step(60_000) == FaultTimes(
        step_ms=60_000, flatline_ms=30 * MIN, flatline_min_readings=10, out_of_range_min_ms=2 * MIN,
        out_of_range_clear_ms=5 * MIN, spike_clear_ms=10 * MIN, dropout_after_ms=5 * MIN,
        drift_tau_ms=30 * MIN, drift_min_ms=30 * MIN, drift_clear_ms=30 * MIN, peer_fresh_ms=60 * MIN,
    )  # fmt: skip
    # At 15 minutes they are counted in intervals
    assert cfg.for_step(900_000) == FaultTimes(
        step_ms=900_000, flatline_ms=90 * MIN, flatline_min_readings=6, out_of_range_min_ms=30 * MIN,
        out_of_range_clear_ms=75 * MIN, spike_clear_ms=30 * MIN, dropout_after_ms=75 * MIN,
        drift_tau_ms=90 * MIN, drift_min_ms=90 * MIN, drift_clear_ms=90 * MIN, peer_fresh_ms=60 * MIN,
    )  # fmt: skip
    # And at 5 minutes, flatline keeps its 30 minutes but needs 6 readings, not 10
    assert (cfg.for_step(300_000).flatline_ms, cfg.for_step(300_000).flatline_min_readings) == (30 * MIN, 6)


def test_shard_dropout_check_uses_each_devices_own_interval() -> None:
    # Given two devices last seen 20 minutes ago, one reporting every minute, one every 15 minutes
    last = T0_MS
    roster: dict[str, dict[str, Any]] = {
        "fast": {"last": last, "step_ms": 60_000},
        "slow": {"last": last, "step_ms": 900_000},
    }
    # When the shard clock is 20 minutes later
    raised = check_dropouts(roster, last + 20 * MIN)
    # Then only the fast one is silent (20 > 5 min), not the slow one (20 < 75 min)
    assert [(t.device_id, (t.at_ms - T0_MS) // MIN) for t in raised] == [("fast", 5)]
    # And the slow one is, once 75 minutes have passed
    assert [(t.device_id, (t.at_ms - T0_MS) // MIN) for t in check_dropouts(roster, last + 76 * MIN)] == [
        ("slow", 75)
    ]


def summary(emitted: list[dict[str, Any]]) -> list[tuple[str, int, int, int, float]]:
    return [
        (e["window"], (e["start_ms"] - T0_MS) // MIN, e["expected"], c["count"], c["completeness"])
        for e in emitted
        for c in window_channels(e).values()
    ]


def test_complete_windows_at_a_900_s_interval_have_completeness_one() -> None:
    # Given a device with a 900-s interval reporting 12:00 .. 13:15 every 15 minutes
    state = DeviceWindows("d1", step_ms=900_000)
    readings = [Reading("d1", T0_MS + k * 15 * MIN, k, {"co2": 500.0 + k}) for k in range(6)]
    # When the watermark (13:13) closes every pane up to 13:10
    emitted = apply_readings(state, readings, WindowConfig()).emitted
    # Then the hour holds its 4 expected readings, each 5-min window its 1, all complete
    hourly = [s for s in summary(emitted) if s[0] == "tumbling_1h"]
    assert hourly == [("tumbling_1h", 0, 4, 4, 1.0)]
    five = [s for s in summary(emitted) if s[0] == "tumbling_5m"]
    assert five == [("tumbling_5m", m, 1, 1, 1.0) for m in (0, 15, 30, 45, 60)]
    sliding = [s for s in summary(emitted) if s[0] == "sliding_1h_5m" and s[1] >= 0]
    assert sliding == [("sliding_1h_5m", m, 4, 4, 1.0) for m in (0, 5, 10)]
    # And the interval survives the state round trip
    assert DeviceWindows.from_doc("d1", state.to_doc()).step_ms == 900_000


def test_registry_interval_flows_from_calibrate_to_aggregate(tmp_path: Path) -> None:
    # Given a device registry naming one device's 900-s interval (and no models: the baseline runs)
    (tmp_path / "devices.json").write_text(
        json.dumps(
            [{"device_id": "k1", "site": "s1", "report_interval_s": 900}, {"device_id": "k2", "site": "s1"}]
        )
    )
    stream = MemoryStream()
    calibrate = CalibrateStage(load_calibrator(DirectorySource(tmp_path)), stream, MemoryLake())
    raw = [reading(d, k * 15 * MIN, k, co2=600.0) for k in range(6) for d in ("k1", "k2")]
    # When the readings are calibrated
    outcome = calibrate.process(parse_records(kinesis_event(raw)))
    # Then the known device's records carry its interval; the unknown one is counted, not stamped
    docs = [doc for _key, data in stream.records for doc in _docs(json.loads(data))]
    assert {(d["device_id"], d.get("report_interval_s")) for d in docs} == {("k1", 900), ("k2", None)}
    assert outcome.counts["default_interval_devices"] == 1
    # When the calibrated stream is aggregated
    lake = MemoryLake()
    aggregate = AggregateStage(InMemoryStateStore(), lake)
    aggregate.process(parse_records(kinesis_event(docs)))
    # Then k1's hour is complete at 4 expected readings; k2 keeps the 60-s default (60 expected)
    hourly = {
        (a["device_id"], a["expected"], window_channels(a)["co2"]["completeness"])
        for a in lake.docs("aggregates")
        if a["window"] == "tumbling_1h"
    }
    assert hourly == {("k1", 4, 1.0), ("k2", 60, 4 / 60)}


def test_classify_takes_the_interval_from_its_own_registry_when_the_record_lacks_it(tmp_path: Path) -> None:
    # Given classify's registry knows d1 reports every 900 s, and its records carry no interval
    (tmp_path / "devices.json").write_text(json.dumps([{"device_id": "d1", "report_interval_s": 900}]))
    notifier = MemoryNotifier()
    stage = ClassifyStage(
        InMemoryStateStore(), MemoryLake(), notifier, ModelProvider(DirectorySource(tmp_path))
    )
    # When it reports steadily every 15 minutes for 3 hours
    batch = [reading("d1", k * 15 * MIN, k, temperature=21.0 + k / 10) for k in range(12)]
    outcome = stage.process(parse_records(kinesis_event(batch)))
    # Then no dropout (nor anything else) is raised, and no default was needed
    assert (notifier.messages, outcome.counts["default_interval_devices"]) == ([], 0)


@pytest.mark.parametrize(
    ("value", "expected"),
    [(900, 900_000), (0.5, 500), (60.0, 60_000), (0, None), (-60, None), (True, None), ("900", None),
     (math.nan, None), (math.inf, None), (None, None)],
)  # fmt: skip
def test_interval_values_other_than_positive_numbers_fall_back(value: object, expected: int | None) -> None:
    assert interval_ms(value) == expected


def _docs(payload: Any) -> list[Any]:
    """A calibrated record holds one document, or a device's documents as a JSON array."""
    return payload if isinstance(payload, list) else [payload]
