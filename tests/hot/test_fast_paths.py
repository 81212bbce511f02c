"""The hot path's fast paths equal the plain definitions they replace, exactly.

Speed-ups that must not change a single output: generated code for model features, trees and
linear models (airlake.ml.runtime), calibration plans and device batches (airlake.calibration),
running merges of sliding windows, folds, averages and merges of all channels at once (generated
kernels), batches assigned to panes a pane at a time, window figures as columns and their records
(airlake.windows), the aggregate stage's decoder, channel-by-channel fault detection and drift
averages (airlake.classification), and `observe` for readings whose features are not needed
(the classify stage's labels). Each test computes both and compares them with `repr`, which tells
floats apart down to the sign of zero.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlake import classification, windows
from airlake.calibration import (
    OUTPUT_DECIMALS,
    TARGETS,
    UCI_ALIASES,
    DirectorySource,
    ModelProvider,
    _aliased,
    builtin_artifact_files,
    load_calibrator,
)
from airlake.classification import DeviceClassState, classify_readings
from airlake.contract import Reading
from airlake.contract.decoder import iso_from_ms
from airlake.contract.limits import CHANNEL_RANGES
from airlake.ml.runtime import FeaturePipeline, LoadedModel, _Linear, _number, _Trees, load_artifact
from airlake.windows import Pane, _Running, _window_channels, window_channels

MODELS = Path(__file__).resolve().parents[2] / "models"
T0_MS = 1_773_144_000_000
WIRE = (
    "co2",
    "pm25",
    "voc",
    "temperature",
    "humidity",
    "abs_humidity",
    "mox_co",
    "mox_nmhc",
    "mox_nox",
    "mox_no2",
    "mox_o3",
)


def same(a: object, b: object) -> bool:
    return repr(a) == repr(b)


def shipped() -> dict[str, LoadedModel]:
    registry = json.loads((MODELS / "registry.json").read_text())
    out = {f"calibration/{t}": load_artifact(MODELS / d) for t, d in registry["calibration"]["fleet"].items()}
    if registry.get("classifier"):
        out["classifier"] = load_artifact(MODELS / registry["classifier"])
    return out


def odd_rows(seed: int, n: int) -> list[tuple[dict[str, Any], int]]:
    """Realistic channels, some missing, zero, negative, integer, non-finite or not numbers."""
    rng = random.Random(seed)
    rows = []
    ts = T0_MS
    for _ in range(n):
        ts += rng.choice([60_000, 60_000, 1, 0, -60_000, 900_000])
        row: dict[str, Any] = {}
        for name in WIRE:
            value: Any = rng.gauss(900.0, 300.0) if name.startswith("mox") else rng.gauss(30.0, 20.0)
            r = rng.random()
            if r < 0.04:
                continue
            if r < 0.07:
                value = rng.choice(
                    [None, 0.0, -0.0, -value, int(value), math.nan, math.inf, str(value), True]
                )
            row[name] = value
        rows.append((row, ts))
    return rows


def reference_vector(
    pipeline: FeaturePipeline, row: Mapping[str, Any], ts_ms: int, state: Any
) -> list[float | None]:
    """The feature vector by the plain definition: `_one` for every spec."""
    values = {name: _number(row.get(name)) for name in pipeline.inputs}
    rates = pipeline._advance(values, ts_ms, state) if pipeline.temporal else {}
    return [pipeline._one(spec, values, rates, ts_ms, state) for spec in pipeline.specs]


def test_generated_features_equal_the_per_spec_definition_and_observe_advances_state_alike() -> None:
    # Given the shipped models (row-only and temporal) and odd rows
    for name, model in shipped().items():
        fast_state, plain_state, observed_state = model.new_state(), model.new_state(), model.new_state()
        for i, (row, ts) in enumerate(odd_rows(1, 600)):
            # When the generated function computes the features, and the plain definition does
            got = model.features(row, ts_ms=ts, state=fast_state)
            expected = reference_vector(model.pipeline, row, ts, plain_state)
            # Then they are identical, and a state fed by `observe` ends where features leave it
            assert same(got, expected), (name, i)
            if i % 3:
                model.observe(row, ts_ms=ts, state=observed_state)
            else:
                assert same(model.features(row, ts_ms=ts, state=observed_state), expected), (name, i)
        assert same(observed_state, fast_state)


def walk_trees(trees: _Trees, x: list[float | None]) -> list[float]:
    """Gradient-boosted trees by walking the node arrays, as exported."""
    out = []
    for k, baseline in enumerate(trees.baseline):
        total = baseline
        for iteration in trees.trees:
            feature, threshold, missing_left, left, right, value = iteration[k]
            node = 0
            while left[node]:
                v = x[feature[node]]
                go_left = v <= threshold[node] if v is not None else bool(missing_left[node])
                node = left[node] if go_left else right[node]
            total += value[node]
        out.append(total)
    return out


def estimators(spec: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [m["estimator"] for m in spec["members"]] if spec["type"] == "blend" else [spec]


def test_generated_trees_and_linear_models_equal_their_plain_evaluation() -> None:
    # Given every tree and linear estimator of the shipped models, and vectors with missing, NaN,
    # infinite and exactly-at-threshold values
    rng = random.Random(2)
    for path in sorted(MODELS.glob("*/*/model.json")) + sorted(MODELS.glob("*/*/*/model.json")):
        for spec in estimators(json.loads(path.read_text())["estimator"]):
            if spec["type"] == "trees":
                trees = _Trees(spec)
                width = 1 + max(f for it in spec["trees"] for t in it for f in t["feature"])
                thresholds = [t for it in spec["trees"] for tree in it for t in tree["threshold"]]
                for _ in range(300):
                    x = [
                        rng.choice(
                            [None, math.nan, math.inf, -math.inf, rng.choice(thresholds), rng.gauss(0, 500)]
                        )
                        for _ in range(width)
                    ]
                    # Then the generated function scores like the node walk
                    assert same(trees.raw(x), walk_trees(trees, x)), path
            else:
                linear = _Linear(spec)
                for _ in range(300):
                    x = [rng.choice([None, rng.gauss(0, 500), 0.0, -0.0]) for _ in spec["fill"]]
                    assert same(linear.raw(x), linear._generic(x)), path
    for target in TARGETS:  # the built-in baseline too
        linear = _Linear(json.loads(builtin_artifact_files(target)["model.json"])["estimator"])
        assert same(linear.raw([1.0, None, -3.5]), linear._generic([1.0, None, -3.5]))


def plain_calibration(
    provider: ModelProvider, device_id: str, channels: Mapping[str, Any]
) -> dict[str, float]:
    """Calibration by its definition: each target's model on its inputs (aliases allowed), clipped
    to the output range, rounded; a target with a missing input is left out."""
    models = provider.models
    out = {}
    for target in TARGETS:
        model = (models.devices.get(device_id) or {}).get(target) or models.fleet.get(target)
        if model is None:
            continue
        row = {}
        for name in model.inputs:
            value = channels.get(name)
            if value is None:
                value = _aliased(channels, name)
            if value is None:
                break
            row[name] = value
        else:
            low, high, _unit = CHANNEL_RANGES[target]
            out[target] = round(min(max(float(model.predict_one(row)), low), high), OUTPUT_DECIMALS[target])
    return out


def uci_named_registry(root: Path) -> None:
    """The built-in baseline as a registry whose models name their inputs by UCI column (aliases)."""
    fleet = {}
    for target in TARGETS:
        files = builtin_artifact_files(target)
        model = json.loads(files["model.json"])
        for feature in model["features"]:
            feature["col"] = UCI_ALIASES.get(feature["col"], feature["col"])
        folder = root / target
        folder.mkdir(parents=True)
        (folder / "model.json").write_text(json.dumps(model))
        (folder / "metadata.json").write_bytes(files["metadata.json"])
        fleet[target] = target
    registry = {"version": "uci", "calibration": {"fleet": fleet}}
    (root / "registry.json").write_text(json.dumps(registry))


@pytest.mark.parametrize("models", ["builtin", "uci_aliases", "shipped"])
def test_calibrating_a_device_batch_equals_calibrating_reading_by_reading(
    models: str, tmp_path: Path
) -> None:
    # Given a calibrator (folded linear models, aliased inputs, or the shipped trees) and readings
    # of several devices, some inputs missing
    if models == "uci_aliases":
        uci_named_registry(tmp_path)
    source = {"builtin": tmp_path, "uci_aliases": tmp_path, "shipped": MODELS}[models]
    calibrator = load_calibrator(DirectorySource(source))
    rng = random.Random(3)
    readings = []
    for row, ts in odd_rows(4, 300):
        channels = {k: v for k, v in row.items() if type(v) in (int, float) and math.isfinite(v)}
        if models == "uci_aliases" and rng.random() < 0.5:
            channels = {UCI_ALIASES.get(k, k): v for k, v in channels.items()}
        readings.append((channels, ts))
    for device in ("d1", "d2"):
        # When a device's readings are calibrated as one batch
        got, version = calibrator.calibrate_device(device, readings)
        # Then each equals the plain per-reading calibration, and calibrate_channels agrees
        assert version == calibrator.version
        for (channels, ts), values in zip(readings, got, strict=True):
            expected = plain_calibration(calibrator.provider, device, channels)
            assert same(values, expected)
            assert same(calibrator.calibrate_channels(device, channels, ts)[0], expected)


PANE_MS = 300_000
STATS = st.fixed_dictionaries(
    {},
    optional={
        name: st.tuples(
            st.integers(1, 20), st.floats(-1e6, 1e6), st.floats(-1e3, 1e3), st.floats(-1e3, 1e3)
        ).map(lambda t: [float(t[0]), t[1], min(t[2], t[3]), max(t[2], t[3])])
        for name in ("co2", "pm25", "t")
    },
)


@settings(max_examples=200, deadline=None)
@given(panes=st.lists(STATS, min_size=1, max_size=30))
def test_sliding_windows_merged_as_they_run_equal_windows_merged_from_scratch(
    panes: list[dict[str, list[float]]],
) -> None:
    # Given closed panes, some empty, with channels that come and go
    closed = {i * PANE_MS: Pane(i * PANE_MS, stats) for i, stats in enumerate(panes)}
    running = _Running()
    for end in range(PANE_MS, (len(panes) + 12) * PANE_MS, PANE_MS):
        for length in (PANE_MS, 12 * PANE_MS):
            # When a window is computed extending the previous one's merge, and from scratch
            got = _window_channels(
                end - length, end, closed, PANE_MS, 60_000, running if length > PANE_MS else None
            )
            expected = _window_channels(end - length, end, closed, PANE_MS, 60_000)
            # Then they are identical
            assert same(got, expected)


BASE = {"co2": 800.0, "pm25": 20.0, "voc": 400.0, "humidity": 50.0, "co": 8.0, "nox": 200.0}


def batch_of(rng: random.Random, start: int, n: int, layouts: int) -> list[Reading]:
    """Readings with events, spikes, out-of-range values and stuck channels (flatlines)."""
    names = ["co2", "pm25", "voc", "temperature", "humidity", "mox_co", "co", "nox", "no2", "other"]
    shapes = [rng.sample(names, rng.randint(1, len(names))) for _ in range(layouts)]
    stuck = set(rng.sample(names, 3))
    out = []
    ts = start
    for i in range(n):
        ts += rng.choice([60_000, 60_000, 60_000, 0, 420_000])
        channels = {}
        for name in rng.choice(shapes):
            base = BASE.get(name, 190.0)
            r = rng.random()
            if r < 0.3 or (name in stuck and r > 0.05):
                value = base
            elif r < 0.4:
                value = base * rng.choice([3, 10, -1, 100])
            else:
                value = rng.gauss(base, base / 3)
            channels[name] = int(value) if r > 0.97 else value
        out.append(Reading("d", ts, i % 3, channels))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_channel_by_channel_detection_equals_reading_by_reading(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given batches with one channel layout (the channel-by-channel path) over a few batches
    rng = random.Random(seed)
    batches = []
    ts = T0_MS
    for _ in range(4):
        batches.append(batch_of(rng, ts, rng.randint(1, 80), layouts=1))
        ts = batches[-1][-1].ts_ms
    fast_state, fast_entry = DeviceClassState(), {"step_ms": 60_000} if seed % 2 else {}
    fast = [classify_readings(fast_state, fast_entry, "d", b) for b in batches]
    # When the same batches run with the detectors forced reading by reading
    monkeypatch.setattr(classification, "_detect_faults", lambda *_args: None)
    plain_state, plain_entry = DeviceClassState(), {"step_ms": 60_000} if seed % 2 else {}
    plain = [classify_readings(plain_state, plain_entry, "d", b) for b in batches]
    # Then transitions, counts, state and roster entry (drift averages included) are identical
    assert same(fast, plain)
    assert same(fast_state.to_doc(), plain_state.to_doc())
    assert json.dumps(fast_entry) == json.dumps(plain_entry)


def plain_drift(entry: dict[str, Any], readings: list[Reading], tau: float) -> None:
    for reading in readings:
        averages = entry.setdefault("ema", {})
        for name in classification.DRIFT_TOLERANCE:
            value = reading.channels.get(name)
            if value is None:
                continue
            track = averages.get(name)
            if track is None:
                averages[name] = [value, reading.ts_ms]
            elif reading.ts_ms > track[1]:
                track[0] += (1.0 - math.exp(-(reading.ts_ms - track[1]) / tau)) * (value - track[0])
                track[1] = reading.ts_ms


@pytest.mark.parametrize("seed", range(8))
def test_drift_averages_channel_by_channel_equal_reading_by_reading(seed: int) -> None:
    # Given readings of mixed layouts (channels appear late, come and go)
    rng = random.Random(seed)
    readings = batch_of(rng, T0_MS, 60, layouts=3)
    times = classification.FaultConfig().for_step(None)
    existing = {"ema": {"nox": [150.0, T0_MS + 120_000]}} if seed % 2 else {"last": T0_MS}
    got, expected = json.loads(json.dumps(existing)), json.loads(json.dumps(existing))
    # When both compute the averages
    classification._drift_averages(got.setdefault("ema", {}), readings, times)
    plain_drift(expected, readings, times.drift_tau_ms)
    # Then values, times and the order the channels appear in are identical
    assert json.dumps(got) == json.dumps(expected) and same(got, expected)


@pytest.mark.parametrize("seed", range(10))
def test_drift_medians_from_the_ranked_index_equal_medians_of_the_peer_lists(seed: int) -> None:
    # Given a roster of sites with tied, signed-zero, stale and missing averages
    rng = random.Random(seed)
    roster: dict[str, dict[str, Any]] = {}
    for d in range(rng.randint(1, 60)):
        ema = {}
        for name in classification.DRIFT_TOLERANCE:
            if rng.random() < 0.9:
                value = rng.choice([rng.gauss(300.0, 200.0), 0.0, -0.0, 250.0, float(rng.randint(0, 3))])
                ema[name] = [value, T0_MS - rng.choice([0, 0, 0, 60_000, 5_400_000])]
        roster[f"d{d}"] = {"site": rng.choice(["a", "b", "unknown"]), "last": T0_MS, "ema": ema}
    fast_index = classification.peer_index(roster)
    plain_index = dict(fast_index)  # a plain dict: check_drift takes the peer lists as they are
    for (site, name), group in fast_index.items():  # the medians themselves
        ranks = fast_index.ranks((site, name))
        assert ranks is not None
        for device_id in [*roster, "absent"]:
            peers = [v for other, v, _t in group if other != device_id]
            if peers:
                median = classification._median_without(ranks, ranks.places.get(device_id))
                assert same(median, statistics.median(peers))
    for device_id in roster:
        fast_state, plain_state = DeviceClassState(), DeviceClassState()
        for _ in range(3):  # repeated, so episodes open, hold and clear
            # When drift is checked from the ranked index and from the plain peer lists
            fast = classification.check_drift(fast_state, roster, device_id, index=fast_index)
            plain = classification.check_drift(plain_state, roster, device_id, index=plain_index)
            # Then transitions and episodes are identical
            assert same(fast, plain)
            assert same(fast_state.to_doc(), plain_state.to_doc())


# --- The aggregate stage's window path (airlake.windows: tables, kernels, Columns, the encoder) ---

CHANNELS = ("co2", "pm25", "voc", "t", "rh", "co", "nox", "no2")


def odd_value(rng: random.Random) -> float:
    """Realistic values, with integers, zeros of both signs, ties and large magnitudes."""
    r = rng.random()
    if r < 0.05:
        return rng.choice([0.0, -0.0])
    if r < 0.12:
        return rng.randint(-5, 900)
    if r < 0.18:
        return 412.5  # ties for min and max
    if r < 0.2:
        return rng.choice([1e-7, 3.5e17, -2.25e-12])  # exponent notation in JSON
    return rng.gauss(400.0, 150.0)


def layout_rows(
    rng: random.Random, n: int, *, mixed: bool, layout: tuple[str, ...] = CHANNELS
) -> list[dict[str, float]]:
    """Channel dicts: one layout (the fast paths), or layouts that come and go (their fallbacks)."""
    layouts = [CHANNELS, CHANNELS[::-1], CHANNELS[:3], ("co2", "t")] if mixed else [layout]
    return [{name: odd_value(rng) for name in rng.choice(layouts)} for _ in range(n)]


@pytest.mark.parametrize("seed", range(40))
def test_folding_a_pane_all_channels_at_once_equals_folding_channel_by_channel(seed: int) -> None:
    # Given rows of one layout or several, in sizes around and beyond the straight-line kernels'
    # limit, folded into an empty pane or into one that holds earlier readings
    rng = random.Random(seed)
    first = layout_rows(rng, rng.choice([1, 2, 5, 16, 17, 40]), mixed=seed % 4 == 3)
    second = layout_rows(rng, rng.choice([1, 3, 12]), mixed=seed % 5 == 4)
    fast: dict[str, list[float]] = {}
    plain: dict[str, list[float]] = {}
    for rows in (first, second):
        # When the fast fold and the plain one add them
        windows._fold(fast, rows)
        windows._fold_plain(plain, rows)
        # Then the stats are identical, order of channels included
        assert same(fast, plain)


@pytest.mark.parametrize("seed", range(30))
def test_updating_all_averages_with_one_kernel_equals_channel_by_channel(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given readings of one layout, some at equal times, averages absent or last updated together
    rng = random.Random(seed)
    rows = layout_rows(rng, rng.randint(1, 60), mixed=False)
    times, ts = [], T0_MS
    for _ in rows:
        ts += rng.choice([0, 1, 60_000, 60_000, 900_000]) if seed % 3 else 60_000
        times.append(ts)
    existing: dict[str, list[float]] = {}
    if seed % 2:
        existing = {name: [odd_value(rng) * 1.0, float(T0_MS + 30_000)] for name in CHANNELS}
    tau = 900_000.0
    fast = {k: list(v) for k, v in existing.items()}
    table = windows._table(rows)
    assert table is not None
    # When the kernel updates them all at once, and the per-channel path does
    assert windows._update_ema_together(fast, times, table, tau)
    plain = {k: list(v) for k, v in existing.items()}
    monkeypatch.setattr(windows, "_update_ema_together", lambda *_args: False)
    windows._update_ema(plain, times, rows, tau)
    # Then values and times are identical
    assert same(fast, plain)


def plain_plan(times: list[int], last: float, skip: int, tau: float) -> tuple[list[bool], list[float], float]:
    mask, factors = [False] * skip, []
    for ts in times[skip:]:
        if ts > last:
            factors.append(1.0 - math.exp(-(ts - last) / tau))
            mask.append(True)
            last = ts
        else:
            mask.append(False)
    return mask, factors, last


@pytest.mark.parametrize("seed", range(30))
def test_ema_plans_for_readings_each_later_equal_the_reading_by_reading_plan(seed: int) -> None:
    rng = random.Random(seed)
    times, ts = [], T0_MS
    for _ in range(rng.randint(1, 40)):
        ts += rng.choice([1, 60_000, 60_000, 61_000, 900_000] + ([0] if seed % 2 else []))
        times.append(ts)
    for last, skip in ((float(times[0]), 1), (float(T0_MS), 0), (float(times[-1]), 0)):
        assert same(
            windows._ema_plan(times, last, skip, 900_000.0, {}), plain_plan(times, last, skip, 900_000.0)
        )


def readings_of(rng: random.Random, batches: int, *, mixed: bool) -> list[list[Reading]]:
    """Batches of one device: in and out of order, duplicates, redeliveries, late readings, gaps."""
    out: list[list[Reading]] = []
    ts, seq = T0_MS + rng.randrange(0, 600_000), 0
    seen: list[Reading] = []
    for _ in range(batches):
        batch = []
        layout = rng.choice([CHANNELS, CHANNELS, CHANNELS[:5], ("rh", *CHANNELS)])  # one per batch
        for channels in layout_rows(rng, rng.randint(0, 70), mixed=mixed, layout=layout):
            ts += rng.choice(
                [60_000, 60_000, 60_000, 0, 1, 30_000, 900_000, 7_200_000 if rng.random() < 0.05 else 1]
            )
            seq += 1
            at = ts - rng.choice([100_000, 600_000, 3_600_000]) if rng.random() < 0.06 else ts
            batch.append(Reading("d", at, seq % 4 if rng.random() < 0.05 else seq, channels))
        if seen and rng.random() < 0.4:
            batch += rng.sample(seen, min(len(seen), rng.randint(1, 20)))  # redelivered
        rng.shuffle(batch)
        seen += batch
        out.append(batch)
    return out


CONFIGS = (
    windows.WindowConfig(),
    windows.WindowConfig(
        specs=(
            windows.WindowSpec("t15", 15 * 60_000, 15 * 60_000),
            windows.WindowSpec("s30_10", 30 * 60_000, 10 * 60_000),
            windows.WindowSpec("t5", 5 * 60_000, 5 * 60_000),
        ),
        allowed_lateness_ms=7 * 60_000,
        ema_tau_ms=5 * 60_000,
    ),
)


def keys_known_in_order(state: windows.DeviceWindows) -> bool:
    """Every pane's remembered key order, where it has one, is its keys sorted (what to_doc writes)."""
    panes = [*state.open_panes.values(), *state.closed_panes.values()]
    return all(p.ordered_keys is None or p.ordered_keys == sorted(p.keys) for p in panes)


@pytest.mark.parametrize("seed", range(24))
def test_the_stage_window_path_equals_apply_readings_and_its_records_byte_for_byte(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given batches of one device (one channel layout or several), state saved and loaded between,
    # with the straight-line kernels or (a full kernel cache) without them
    if seed % 6 == 5:
        monkeypatch.setattr(windows, "_KERNELS_CAP", 0)
        monkeypatch.setattr(windows, "_KERNELS", {})
    rng = random.Random(seed)
    config = CONFIGS[seed % 2]
    batches = readings_of(rng, 6, mixed=seed % 3 == 2)
    step = [None, 60_000, 900_000, 30_500][seed % 4]
    plain_doc: dict[str, Any] | None = None
    fast_doc: dict[str, Any] | None = None
    encoder = windows.RecordEncoder()
    for batch in batches:
        plain = windows.DeviceWindows.from_doc("d", plain_doc)
        fast = windows.DeviceWindows.from_doc("d", fast_doc)
        plain.step_ms = fast.step_ms = step
        # When apply_readings and the stage's path (columns, then the encoder) take the batch
        expected = windows.apply_readings(plain, batch, config)
        got = windows.apply_documents(fast, [r.to_dict() for r in batch], config)
        lines = encoder.encode("d", got.windows, fast.latest)
        # Then the records are the same bytes (with the stage's start and end), and so are the
        # counts, the late readings and the state
        for record in expected.emitted:
            record["start"] = iso_from_ms(record["start_ms"])
            record["end"] = iso_from_ms(record["end_ms"])
        assert by_line(lines) == [(e["start_ms"] // DAY_MS, orjson.dumps(e)) for e in expected.emitted]
        assert (got.accepted, got.duplicates) == (expected.accepted, expected.duplicates)
        assert got.late == [r.to_dict() for r in expected.late]
        plain_doc, fast_doc = plain.to_doc(), fast.to_doc()
        assert orjson.dumps(fast_doc) == orjson.dumps(plain_doc)
        assert keys_known_in_order(fast) and keys_known_in_order(plain)
        plain_doc, fast_doc = orjson.loads(orjson.dumps(plain_doc)), orjson.loads(orjson.dumps(fast_doc))


DAY_MS = 86_400_000


def by_line(encoded: list[tuple[int, bytes]]) -> list[tuple[int, bytes]]:
    """The encoder's output a line at a time, with the UTC day it is filed under."""
    return [(start // DAY_MS, line) for start, lines in encoded for line in lines.split(b"\n")]


@pytest.mark.parametrize("odd", ["device_id", "window", "channel"])
def test_json_lines_equal_one_dumps_a_record_grouped_by_day_even_when_a_string_holds_the_separator(
    odd: str,
) -> None:
    # Given records over two UTC days; in one run a device id, window name or channel holds "},{"
    day = T0_MS - T0_MS % DAY_MS
    records = []
    for device, offset in [("a", 0), ("a", 60_000), ("b", DAY_MS - 1), ("b", DAY_MS), ("c", DAY_MS + 5)]:
        record = {
            "device_id": device,
            "window": "w",
            "start_ms": day + offset,
            "channels": ("co2",),
            "means": [1.5],
        }
        if device == "b":
            record |= {"device_id": "b},{c"} if odd == "device_id" else {}
            record |= {"window": "w},{x"} if odd == "window" else {}
            record |= {"channels": ("co2", "x},{y")} if odd == "channel" else {}
        records.append(record)
    # When they are written as JSON lines
    encoded = windows.json_lines(records)
    # Then each run of a day is one item, and its lines are orjson.dumps of each record
    assert [start for start, _lines in encoded] == [day, day + DAY_MS]
    assert by_line(encoded) == [(r["start_ms"] // DAY_MS, orjson.dumps(r)) for r in records]


def float_batches(rng: random.Random, batches: int, *, negative_zero: bool) -> list[list[Reading]]:
    """`readings_of` with every value a float (what the stage gives the array folds), -0.0 only
    when asked: a device's batches, in and out of order, duplicates, redeliveries, late readings."""
    out = []
    for batch in readings_of(rng, batches, mixed=rng.random() < 0.2):
        floats = []
        for reading in batch:
            channels = {name: float(value) for name, value in reading.channels.items()}
            if not negative_zero:
                channels = {name: 0.0 if value == 0.0 else value for name, value in channels.items()}
            floats.append(Reading(reading.device_id, reading.ts_ms, reading.seq, channels))
        out.append(floats)
    return out


@pytest.mark.parametrize("seed", range(16))
def test_folding_many_devices_as_arrays_equals_apply_readings_device_by_device(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given 12 devices' batches (new devices and devices with open panes and averages from earlier
    # batches; one layout or several; -0.0 in some runs), with arrays for any batch size or only
    # for large ones, and in some runs with array steps too dear to take
    if seed % 2 == 0:
        monkeypatch.setattr(windows, "ARRAY_MIN_READINGS", 1)
    if seed % 8 == 3:
        monkeypatch.setattr(windows, "_STEP_VALUES", 10**9)  # the kernels after all
    rng = random.Random(1000 + seed)
    config = CONFIGS[seed % 2]
    devices = [f"d{i}" for i in range(12)]
    per_device = {d: float_batches(rng, 4, negative_zero=seed % 4 == 1) for d in devices}
    plain_docs: dict[str, Any] = dict.fromkeys(devices)
    fast_docs: dict[str, Any] = dict.fromkeys(devices)
    encoder = windows.RecordEncoder()
    for round_ in range(4):
        # When every device's batch goes through one BatchFold (the stage's two passes) and,
        # separately, through apply_readings
        batch = windows.BatchFold()
        accepted = []
        for d in devices:
            readings = [Reading(d, r.ts_ms, r.seq, r.channels) for r in per_device[d][round_]]
            fast = windows.DeviceWindows.from_doc(d, fast_docs[d])
            accepted.append(
                (
                    d,
                    readings,
                    fast,
                    windows.accept_documents(fast, [r.to_dict() for r in readings], config, batch),
                )
            )
        batch.run()
        for d, readings, fast, got in accepted:
            windows.close_documents(fast, config, got)
            lines = encoder.encode(d, got.windows, fast.latest)
            plain = windows.DeviceWindows.from_doc(d, plain_docs[d])
            expected = windows.apply_readings(plain, readings, config)
            for record in expected.emitted:
                record["start"] = iso_from_ms(record["start_ms"])
                record["end"] = iso_from_ms(record["end_ms"])
            # Then each device's records are the same bytes, and so are its counts and its state
            assert by_line(lines) == [(e["start_ms"] // DAY_MS, orjson.dumps(e)) for e in expected.emitted]
            assert (got.accepted, got.duplicates) == (expected.accepted, expected.duplicates)
            assert orjson.dumps(fast.to_doc()) == orjson.dumps(plain.to_doc())
            assert same(fast.ema, plain.ema)
            assert keys_known_in_order(fast)
            plain_docs[d] = orjson.loads(orjson.dumps(plain.to_doc()))
            fast_docs[d] = orjson.loads(orjson.dumps(fast.to_doc()))


def _stats_form(doc: dict[str, Any]) -> dict[str, Any]:
    """A device state as it was stored before panes were columns: channel -> [count, sum, min, max]."""
    old = dict(doc)
    for side in ("open", "closed"):
        old[side] = [
            {"start": p["start"], "keys": p["keys"]}
            | {"stats": {n: [c, t, lo, hi] for n, c, t, lo, hi in zip(p["channels"], p["counts"], p["sums"], p["mins"], p["maxes"], strict=True)}}
            for p in doc[side]
        ]  # fmt: skip
    return old


@pytest.mark.parametrize("seed", range(6))
def test_state_stored_with_per_channel_stats_loads_and_continues_as_the_columns_form(seed: int) -> None:
    # Given a device's state after two batches, stored as columns and in the earlier stats form
    rng = random.Random(2000 + seed)
    config = CONFIGS[seed % 2]
    batches = readings_of(rng, 4, mixed=seed % 3 == 2)
    state = windows.DeviceWindows("d")
    for batch in batches[:2]:
        windows.apply_readings(state, batch, config)
    doc = orjson.loads(orjson.dumps(state.to_doc()))
    assert all(
        set(p) == {"start", "channels", "counts", "sums", "mins", "maxes", "keys"}
        for p in doc["open"] + doc["closed"]
    )
    for batch in batches[2:]:
        # When each takes the next batches
        new = windows.DeviceWindows.from_doc("d", doc)
        old = windows.DeviceWindows.from_doc("d", _stats_form(doc))
        got, expected = (
            windows.apply_documents(new, [r.to_dict() for r in batch], config),
            windows.apply_readings(old, batch, config),
        )
        # Then they close the same windows and store the same state
        for record in expected.emitted:
            record["start"], record["end"] = iso_from_ms(record["start_ms"]), iso_from_ms(record["end_ms"])
        lines = windows.RecordEncoder().encode("d", got.windows, new.latest)
        assert by_line(lines) == [(e["start_ms"] // DAY_MS, orjson.dumps(e)) for e in expected.emitted]
        assert orjson.dumps(new.to_doc()) == orjson.dumps(old.to_doc())
        doc = orjson.loads(orjson.dumps(new.to_doc()))


@pytest.mark.parametrize(
    ("devices", "readings", "step_ms", "arrays"), [(40, 20, 60_000, True), (1, 3_000, 1_000, False)]
)
def test_array_steps_are_taken_only_when_they_cover_enough_values(
    devices: int, readings: int, step_ms: int, arrays: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a batch of many devices with a few readings each, or of one device reporting every second
    calls: list[str] = []
    for name in ("_fold_arrays", "_ema_arrays"):
        real = getattr(windows, name)
        monkeypatch.setattr(windows, name, lambda *a, _n=name, _f=real: (calls.append(_n), _f(*a))[1])
    rng = random.Random(7)
    batch = windows.BatchFold()
    states, plain = [], []
    for d in range(devices):
        docs = [
            Reading(f"d{d}", T0_MS + i * step_ms, i, {"co2": rng.gauss(600, 50), "pm25": rng.gauss(9, 2)})
            for i in range(readings)
        ]
        state = windows.DeviceWindows(f"d{d}")
        states.append(
            (state, windows.accept_documents(state, [r.to_dict() for r in docs], CONFIGS[0], batch))
        )
        reference = windows.DeviceWindows(f"d{d}")
        windows.apply_readings(reference, docs, CONFIGS[0])
        plain.append(reference)
    # When the batch's folds run
    batch.run()
    # Then the arrays ran only for the many devices (one step per reading of one device would cost
    # more than the kernels), and every device's state is the same either way
    assert calls == (["_fold_arrays", "_ema_arrays"] if arrays else [])
    for (state, result), reference in zip(states, plain, strict=True):
        windows.close_documents(state, CONFIGS[0], result)
        state.latest = reference.latest = {}
        assert orjson.dumps(state.to_doc()) == orjson.dumps(reference.to_doc())
        assert same(state.ema, reference.ema)


def test_array_folds_take_the_stage_batch_and_leave_integer_devices_to_the_kernels(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a calibrated batch of 30 devices x 20 readings, one device sending integers
    from airlake.hot.outputs import MemoryLake
    from airlake.hot.pipeline import AggregateStage, parse_records
    from airlake.hot.state import InMemoryStateStore
    from tests.hot.conftest import kinesis_event

    runs: list[int] = []
    real = windows._run_arrays
    monkeypatch.setattr(
        windows, "_run_arrays", lambda names, group: (runs.append(len(group.devices)), real(names, group))[1]
    )
    docs = [
        {"device_id": f"dev-{d:02d}", "ts": T0_MS + i * 60_000, "seq": i,
         "channels": {"co2": (400 + i) if d == 7 else 400.5 + i, "pm25": 3.25 * d + i}}
        for d in range(30)
        for i in range(20)
    ]  # fmt: skip
    lake = MemoryLake()
    # When the aggregate stage takes it
    outcome = AggregateStage(InMemoryStateStore(), lake).process(parse_records(kinesis_event(docs)))
    # Then one array fold ran over the 29 float devices, and every device's windows came out
    assert runs == [29]
    assert outcome.counts["accepted"] == 600 and outcome.failed == set()
    assert {a["device_id"] for a in lake.docs("aggregates")} == {f"dev-{d:02d}" for d in range(30)}


@settings(max_examples=200, deadline=None)
@given(panes=st.lists(STATS, min_size=1, max_size=30))
def test_window_columns_merged_as_they_run_equal_the_plain_window_figures(
    panes: list[dict[str, list[float]]],
) -> None:
    # Given closed panes, some empty, with channels that come and go
    closed = {i * PANE_MS: Pane(i * PANE_MS, stats) for i, stats in enumerate(panes)}
    starts = sorted(s for s, p in closed.items() if p.stats)
    running = windows._Running()
    encoder = windows.RecordEncoder()
    for end in range(PANE_MS, (len(panes) + 12) * PANE_MS, PANE_MS):
        for length in (PANE_MS, 12 * PANE_MS):
            # When a window's Columns are merged (extending the previous one's) and encoded
            columns = windows._window_columns(
                end - length,
                end,
                closed,
                PANE_MS,
                60_000,
                running if length > PANE_MS else None,
                starts=starts,
            )
            expected = _window_channels(end - length, end, closed, PANE_MS, 60_000)
            if expected is None:
                assert columns is None
                continue
            assert columns is not None
            expected_count = max(1, length // 60_000)
            ((_start, line),) = encoder.encode("d", [("w", end - length, end, expected_count, columns)], {})
            # Then the channels are those of the plain definition
            assert same(window_channels(orjson.loads(line)), orjson.loads(orjson.dumps(expected)))


def calibrated_payloads(rng: random.Random) -> list[bytes]:
    """Calibrated-stream records: arrays and single objects, and every way of being malformed."""
    out = []
    for i in range(60):
        docs = []
        for j in range(rng.randint(1, 6)):
            doc: dict[str, Any] = {
                "device_id": f"dev-{rng.randint(0, 3)}" if rng.random() < 0.1 else f"dev-{i % 4}",
                "ts": T0_MS + 60_000 * j,
                "seq": j,
                "channels": {"co2": odd_value(rng), "pm25": odd_value(rng)},
                "firmware": "2.4.1",
                "model": "AL-100",
                "report_interval_s": rng.choice([60, 30.5, 0, "x"]),
            }
            r = rng.random()
            if r < 0.03:
                del doc[rng.choice(["device_id", "ts", "seq", "channels", "firmware"])]
            elif r < 0.06:
                doc[rng.choice(["device_id", "ts", "seq", "channels", "model"])] = rng.choice(
                    [None, "1", 1.5, True, {}]
                )
            elif r < 0.09:
                doc["channels"]["co2"] = rng.choice([True, None, "400", [1]])
            elif r < 0.1:
                doc["channels"] = {}
            docs.append(doc)
        r = rng.random()
        if r < 0.03:
            out.append(b"{not json")
        elif r < 0.05:
            out.append(b"[]")
        elif r < 0.07:
            out.append(orjson.dumps([docs[0], 7]))
        else:
            out.append(orjson.dumps(docs[0] if len(docs) == 1 and rng.random() < 0.5 else docs))
    return out


def fields_of(doc: dict[str, Any]) -> tuple[Any, ...]:
    return (doc["device_id"], doc["ts"], doc["seq"], doc["channels"], doc.get("firmware"), doc.get("model"))


@pytest.mark.parametrize("seed", range(10))
def test_decoding_calibrated_records_a_record_at_a_time_equals_reading_by_reading(seed: int) -> None:
    from airlake.hot.pipeline import Outcome, _decode_aggregate, _decode_all, _late_doc, parse_records
    from tests.hot.conftest import kinesis_event

    # Given calibrated-stream records, some malformed in each possible way
    records = parse_records(kinesis_event(calibrated_payloads(random.Random(seed))))
    # When the aggregate stage's decoder and the shared one read them
    fast_outcome, plain_outcome = Outcome(), Outcome()
    fast = _decode_aggregate(records, fast_outcome)
    plain = _decode_all(records, plain_outcome, "aggregate", calibrated=True)
    # Then the readings (as documents), record numbers, intervals, quarantine and counts are identical
    assert same(
        {device: [fields_of(doc) for doc in docs] for device, docs in fast.by_device.items()},
        {
            device: [(r.device_id, r.ts_ms, r.seq, r.channels, r.firmware, r.model) for r in readings]
            for device, readings in plain.by_device.items()
        },
    )
    assert same(
        (fast.seqnos, fast.quarantine, fast.quarantine_seqnos, fast.intervals),
        (plain.seqnos, plain.quarantine, plain.quarantine_seqnos, plain.intervals),
    )
    assert same(fast_outcome, plain_outcome)
    # And a reading routed as too late is written as before
    for device, readings in plain.by_device.items():
        for doc, reading in zip(fast.by_device[device], readings, strict=True):
            expected = {**reading.to_dict(), "reason": "too_late", "closed_until": "x"}
            assert orjson.dumps(_late_doc(doc, "x")) == orjson.dumps(expected)


def raw_payloads(rng: random.Random) -> list[bytes]:
    """Raw-stream records: single readings in wire form (some with extra or null fields, ISO ts),
    arrays, and broken ones, from a few devices seen again and again."""
    out = []
    for i in range(120):
        doc: dict[str, Any] = {
            "device_id": f"raw-{i % 5}",
            "ts": T0_MS + 60_000 * i,
            "seq": i,
            "channels": {"co2": 400.0 + i, "pm25": float(i % 7)},
        }
        if rng.random() < 0.7:
            doc |= {"firmware": "2.4.1", "model": "AL-100"}
        r = rng.random()
        if r < 0.08:
            doc["rssi"] = -70  # an unknown field: not carried on
        elif r < 0.16:
            doc["firmware"] = None
        elif r < 0.24:
            doc["ts"] = "2026-03-10T12:00:00Z"
        elif r < 0.3:
            doc["seq"] = -1
        elif r < 0.36:
            doc["channels"]["co2"] = "400"
        r = rng.random()
        if r < 0.05:
            out.append(b"{not json")
        elif r < 0.15:
            out.append(orjson.dumps([doc, {**doc, "seq": doc["seq"] + 1000}]))
        else:
            out.append(orjson.dumps(doc))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_decoding_raw_records_as_documents_equals_reading_by_reading(seed: int) -> None:
    from airlake.hot.pipeline import Outcome, _decode_all, _decode_documents, parse_records
    from tests.hot.conftest import kinesis_event

    # Given raw-stream records of every shape, decoded twice (the second time, every device id and
    # channel layout is known, so the wire-form path is taken where it applies)
    records = parse_records(kinesis_event(raw_payloads(random.Random(seed)), arrival_ms=T0_MS + 130 * 60_000))
    _decode_documents(records, Outcome())
    # When the calibrate stage's decoder and the shared one read them
    fast_outcome, plain_outcome = Outcome(), Outcome()
    fast = _decode_documents(records, fast_outcome)
    plain = _decode_all(records, plain_outcome, "calibrate")
    # Then each reading's document is Reading.to_dict() (nothing else carried on), and the record
    # numbers, quarantine and counts are identical
    assert dict(fast.by_device) == {
        device: [r.to_dict() for r in readings] for device, readings in plain.by_device.items()
    }
    assert sum(map(len, fast.by_device.values())) > 100
    assert same(
        (fast.seqnos, fast.quarantine, fast.quarantine_seqnos),
        (plain.seqnos, plain.quarantine, plain.quarantine_seqnos),
    )
    assert same(fast_outcome, plain_outcome)
