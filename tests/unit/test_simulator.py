"""The fleet simulator: deterministic, labelled, and valid by the contract unless asked not to be."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

import orjson
import pytest

from airlake.contract import Quarantined, Reading, decode
from airlake.simulate import ACCEPT, DUPLICATE, FleetConfig, Simulation
from airlake.simulate.fleet import FIRMWARE_NEW, FIRMWARE_OLD, SENSOR_LIMITS

START = datetime(2026, 9, 1, tzinfo=UTC)
SMALL = FleetConfig(devices=4, days=3, step_s=600, start=START, seed=7)
NOW_MS = 1_800_000_000_000  # after the simulated period: nothing is "in the future"


@pytest.fixture(scope="module")
def small_run() -> tuple[Simulation, list[bytes]]:
    sim = Simulation(SMALL)
    return sim, [record.data for record in sim.records()]


def test_the_same_seed_gives_the_same_bytes_and_labels(small_run: tuple[Simulation, list[bytes]]) -> None:
    again = Simulation(SMALL)
    assert [r.data for r in again.records()] == small_run[1]
    assert again.fleet.labels == small_run[0].fleet.labels


def test_another_seed_gives_other_data(small_run: tuple[Simulation, list[bytes]]) -> None:
    other = Simulation(FleetConfig(devices=4, days=3, step_s=600, start=START, seed=8))
    assert [r.data for r in other.records()][:50] != small_run[1][:50]


def test_every_default_reading_passes_the_contract(small_run: tuple[Simulation, list[bytes]]) -> None:
    results = [result for data in small_run[1] for result in decode(data, received_ms=NOW_MS)]
    assert [r for r in results if isinstance(r, Quarantined)] == []
    assert len(results) == small_run[0].manifest()["readings"]


def test_readings_are_in_event_time_order_with_increasing_seq_per_device(
    small_run: tuple[Simulation, list[bytes]],
) -> None:
    readings = [
        r for data in small_run[1] for r in decode(data, received_ms=NOW_MS) if isinstance(r, Reading)
    ]
    by_device: dict[str, list[Reading]] = {}
    for reading in readings:
        by_device.setdefault(reading.device_id, []).append(reading)
    assert sorted(by_device) == ["aq-0000", "aq-0001", "aq-0002", "aq-0003"]
    for device_readings in by_device.values():
        seqs = [r.seq for r in device_readings]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Globally ordered by device time, up to the +-45 s clock offsets between devices.
    times = [r.ts_ms for r in readings]
    assert all(b - a > -90_000 for a, b in itertools.pairwise(times))


def test_reference_devices_carry_reference_channels_and_others_do_not(
    small_run: tuple[Simulation, list[bytes]],
) -> None:
    channels_by_device: dict[str, set[str]] = {}
    for data in small_run[1]:
        reading = orjson.loads(data)
        channels_by_device.setdefault(reading["device_id"], set()).update(reading["channels"])
    assert "ref_nox" in channels_by_device["aq-0000"]  # every 5th device, from index 0
    assert not any(name.startswith("ref_") for name in channels_by_device["aq-0001"])


def test_injected_faults_show_in_the_data_where_the_labels_say() -> None:
    sim = Simulation(FleetConfig(devices=6, days=10, step_s=300, start=START, seed=3, faults_per_device=4))
    readings = [orjson.loads(r.data) for r in sim.records()]
    faults = [lb for lb in sim.fleet.labels if lb.kind == "fault" and lb.source == "injected"]
    assert {lb.type for lb in faults} >= {"stuck", "flatline", "saturation", "dropout"}
    for label in faults:
        device = next(d for d in sim.fleet.devices if d.device_id == label.device_id)

        def inside(reading: dict[str, object], label: object = label, device: object = device) -> bool:
            ts = reading["ts"]
            ms = ts if isinstance(ts, int) else int(datetime.fromisoformat(str(ts)).timestamp() * 1000)
            true_ms = ms - device.clock_offset_ms  # type: ignore[attr-defined]
            return reading["device_id"] == label.device_id and label.start_ms <= true_ms < label.end_ms  # type: ignore[attr-defined]

        hit = [r for r in readings if inside(r)]
        if label.type == "dropout":
            assert hit == [], label
            continue
        values = [r["channels"][label.channel] for r in hit]
        if label.type == "flatline":
            assert values and set(values) == {0.0}, label
        elif label.type == "stuck":
            assert values and len(set(values)) == 1, label
        elif label.type == "saturation":
            assert values and set(values) == {SENSOR_LIMITS[label.channel]}, label


def test_events_are_labelled_and_raise_their_channels() -> None:
    sim = Simulation(FleetConfig(devices=4, days=5, step_s=300, start=START, seed=11, faults=False))
    list(sim.records())
    kinds = Counter(lb.type for lb in sim.fleet.labels if lb.kind == "event")
    assert sum(kinds.values()) > 0
    assert set(kinds) <= {"cooking", "smoke", "cleaning", "occupancy"}


def test_firmware_rolls_out_during_the_period() -> None:
    sim = Simulation(
        FleetConfig(devices=8, days=20, step_s=3600, start=START, seed=1, faults=False, events=False)
    )
    firmware = Counter(orjson.loads(r.data)["firmware"] for r in sim.records())
    assert set(firmware) == {FIRMWARE_OLD, FIRMWARE_NEW}


def test_malformed_and_resent_records_are_counted_with_the_reason_the_decoder_gives() -> None:
    sim = Simulation(SMALL, malformed_rate=0.2, duplicate_rate=0.1)
    records = list(sim.records())
    manifest = sim.manifest()

    got: Counter[str] = Counter()
    for record in records:
        results = decode(record.data, received_ms=NOW_MS)
        assert len(results) == 1
        outcome = results[0].reason.value if isinstance(results[0], Quarantined) else ACCEPT
        expected = ACCEPT if record.expected == DUPLICATE else record.expected
        assert outcome == expected, record
        got[record.expected] += 1
    assert manifest["records"] == len(records)
    assert manifest["duplicates"] == got[DUPLICATE] > 0
    assert sum(manifest["malformed"].values()) == len(records) - got[ACCEPT] - got[DUPLICATE] > 0
    assert len(manifest["malformed"]) >= 8


def test_devices_that_buffer_upload_arrays_and_every_reading_is_still_counted() -> None:
    one = Simulation(SMALL, duplicate_rate=0.1, malformed_rate=0.05)
    four = Simulation(SMALL, duplicate_rate=0.1, malformed_rate=0.05, upload_every=4)
    singles = list(one.records())
    arrays = list(four.records())

    decoded = [r for record in arrays for r in decode(record.data, received_ms=NOW_MS)]
    manifest = four.manifest()
    assert manifest["records"] == len(arrays) < len(singles)
    assert manifest["elements"] == len(decoded)
    assert manifest["elements"] == manifest["readings"] + manifest["duplicates"] + sum(
        manifest["malformed"].values()
    )
    produced = manifest["readings"] + sum(manifest["malformed"].values())
    assert produced == one.manifest()["readings"] + sum(one.manifest()["malformed"].values())
    assert {len(orjson.loads(r.data)) for r in arrays if r.expected == ACCEPT} <= {1, 2, 3, 4}
    assert {
        orjson.loads(r.data)[0]["device_id"] == r.partition_key for r in arrays if r.expected == ACCEPT
    } == {True}
