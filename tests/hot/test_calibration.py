"""Calibration: the documented baseline, per-device overrides, and refresh on a new pointer."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airlake.calibration import (
    BUILTIN_LINEAR,
    BUILTIN_VERSION,
    OUTPUT_DECIMALS,
    FastLinear,
    FoldedFeatureLinear,
    load_calibrator,
)
from airlake.contract.limits import CHANNEL_RANGES

UCI = Path(__file__).resolve().parents[2] / "data" / "uci_air_quality" / "AirQualityUCI.csv"
COLUMNS = {
    "co": ("CO(GT)", "PT08.S1(CO)"),
    "nox": ("NOx(GT)", "PT08.S3(NOx)"),
    "no2": ("NO2(GT)", "PT08.S4(NO2)"),
}
MEANS = {"mox_co": 1110.580746, "mox_nox": 824.533261, "mox_no2": 1452.011362}


def test_builtin_baseline_is_the_least_squares_fit_of_the_vendored_data() -> None:
    # Given the vendored UCI CSV (-200 = missing)
    frame = pd.read_csv(UCI, sep=";", decimal=",").iloc[:, :15].replace(-200, np.nan)
    for target, (reference, sensor) in COLUMNS.items():
        # When each reference is regressed on its sensor, T and RH (standardised inputs)
        data = frame[[sensor, "T", "RH", reference]].dropna()
        x = data[[sensor, "T", "RH"]].to_numpy()
        z = (x - x.mean(0)) / x.std(0)
        coef, *_ = np.linalg.lstsq(np.c_[np.ones(len(z)), z], data[reference].to_numpy(), rcond=None)
        # Then the shipped numbers are that fit
        _inputs, means, scales, intercept, slopes = BUILTIN_LINEAR[target]
        np.testing.assert_allclose(x.mean(0), means, rtol=1e-6)
        np.testing.assert_allclose(x.std(0), scales, rtol=1e-6)
        np.testing.assert_allclose(coef, [intercept, *slopes], rtol=1e-5)


def test_baseline_at_the_training_means_returns_the_intercepts_and_omits_missing_targets() -> None:
    # Given no registry (an empty models folder) and a reading at the training means without mox_no2
    calibrator = load_calibrator(Path("/nonexistent-models"))
    channels = {"mox_co": MEANS["mox_co"], "mox_nox": MEANS["mox_nox"], "temperature": 17.770425,
                "humidity": 49.060076, "co2": 600.0}  # fmt: skip
    # When calibrated
    values, version = calibrator.calibrate_channels("d1", channels, 0)
    # Then co is its intercept (2.129711) to the output's two decimals and no2 (its input missing)
    # is absent
    assert version == BUILTIN_VERSION
    assert set(values) == {"co", "nox"}
    assert values["co"] == 2.13


def test_negative_predictions_are_clipped_to_the_physical_range() -> None:
    calibrator = load_calibrator(Path("/nonexistent-models"))
    values, _ = calibrator.calibrate_channels(
        "d1", {"mox_co": 100.0, "temperature": 20.0, "humidity": 50.0}, 0
    )
    assert values == {"co": 0.0}


def _linear(directory: Path, column: str, slope: float, version: str) -> None:
    directory.mkdir(parents=True)
    model = {"format": "airlake.model/v1", "kind": "calibration", "features": [{"op": "raw", "col": column}],
             "classes": None, "target_transform": None,
             "estimator": {"type": "linear", "fill": [0.0], "mean": [0.0], "scale": [1.0], "coef": [[slope]],
                           "intercept": [0.0]}}  # fmt: skip
    (directory / "model.json").write_text(json.dumps(model))
    metadata = {"format": "airlake.model/v1", "kind": "calibration", "version": version}
    (directory / "metadata.json").write_text(json.dumps(metadata))


def test_device_override_and_refresh_when_the_pointer_changes(tmp_path: Path) -> None:
    # Given a registry v1: fleet co = 2 x mox_co, device d7 overrides co = 3 x mox_co
    _linear(tmp_path / "co_fleet_v1", "mox_co", 2.0, "co-fleet-1")
    _linear(tmp_path / "co_d7_v1", "mox_co", 3.0, "co-d7-1")
    _linear(tmp_path / "co_fleet_v2", "mox_co", 5.0, "co-fleet-2")
    registry = {
        "version": "v1",
        "calibration": {"fleet": {"co": "co_fleet_v1"}, "devices": {"d7": {"co": "co_d7_v1"}}},
    }
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    now = [1000.0]
    calibrator = load_calibrator(tmp_path, refresh_seconds=60, clock=lambda: now[0])
    # Then the override applies to d7 only
    assert calibrator.calibrate_channels("d1", {"mox_co": 1.5}, 0) == ({"co": 3.0}, "v1")
    assert calibrator.calibrate_channels("d7", {"mox_co": 1.5}, 0) == ({"co": 4.5}, "v1")
    # When the registry is replaced by v2 (fleet co = 5 x mox_co, no override)
    registry = {"version": "v2", "calibration": {"fleet": {"co": "co_fleet_v2"}}}
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    # Then nothing changes before the check interval, and v2 is used after it
    now[0] += 59
    assert calibrator.calibrate_channels("d7", {"mox_co": 1.5}, 0) == ({"co": 4.5}, "v1")
    now[0] += 1
    assert calibrator.calibrate_channels("d7", {"mox_co": 1.5}, 0) == ({"co": 7.5}, "v2")


def test_folded_linear_path_agrees_with_the_runtime_evaluator() -> None:
    # Given the baseline models, scored by the folded fast path and by airlake.ml.runtime directly
    calibrator = load_calibrator(Path("/nonexistent-models"))
    models = calibrator.provider.models
    assert set(map(id, models.fleet.values())) == set(models.fast)
    channels = {"mox_co": 1350.0, "mox_nox": 640.0, "mox_no2": 1720.0, "temperature": 9.5, "humidity": 71.0}
    fast, _ = calibrator.calibrate_channels("d1", channels, 0)
    # Then both agree once rounded to the output's decimals
    for target, model in models.fleet.items():
        assert fast[target] == round(max(0.0, float(model.predict_one(channels))), OUTPUT_DECIMALS[target])


MODELS = Path(__file__).resolve().parents[2] / "models"
UCI_CHANNELS = (
    "mox_co",
    "mox_nmhc",
    "mox_nox",
    "mox_no2",
    "mox_o3",
    "temperature",
    "humidity",
    "abs_humidity",
)


def _plain(calibrator: Any, channels: dict[str, float]) -> dict[str, float]:
    """Calibration by definition: each fleet model through airlake.ml.runtime, clipped, rounded."""
    out = {}
    for target, model in calibrator.provider.models.fleet.items():
        if all(channels.get(name) is not None for name in model.inputs):
            low, high, _unit = CHANNEL_RANGES[target]
            out[target] = round(
                min(max(float(model.predict_one(channels)), low), high), OUTPUT_DECIMALS[target]
            )
    return out


def _odd_readings(seed: int, n: int) -> list[dict[str, float]]:
    """Plausible channels with the cases the features special-case: zeros (no log, ratio over
    zero), integers, a missing input."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        row: dict[str, float] = {name: round(rng.uniform(0, 2500), 1) for name in UCI_CHANNELS[:5]}
        row |= {"temperature": round(rng.uniform(-10, 40), 2), "humidity": round(rng.uniform(5, 95), 2),
                "abs_humidity": round(rng.uniform(0.1, 2.5), 4)}  # fmt: skip
        roll = rng.random()
        if roll < 0.1:
            row[rng.choice(UCI_CHANNELS)] = 0.0
        elif roll < 0.2:
            row[rng.choice(UCI_CHANNELS)] = rng.randint(0, 3000)
        elif roll < 0.25:
            del row[rng.choice(UCI_CHANNELS)]
        rows.append(row)
    return rows


def test_shipped_fleet_models_run_as_one_generated_function_equal_to_the_runtime() -> None:
    # Given the shipped fleet calibrations (linear over engineered features: logs, ratios, log x T/RH)
    calibrator = load_calibrator(MODELS)
    models = calibrator.provider.models
    # Then every one has a folded form, so the hot path never falls back to per-model evaluation
    assert all(id(model) in models.fast for model in models.fleet.values())
    assert {type(models.fast[id(m)]) for m in models.fleet.values()} <= {FastLinear, FoldedFeatureLinear}
    # And calibrating readings equals each model's runtime evaluation, clipped and rounded
    readings = _odd_readings(5, 3000)
    got, _version = calibrator.calibrate_device("d1", [(row, 0) for row in readings])
    assert got == [_plain(calibrator, row) for row in readings]
    assert sum(len(values) == 3 for values in got) > 2000  # most readings get all three targets


def test_a_blend_of_linear_members_with_a_log_target_folds_exactly(tmp_path: Path) -> None:
    # Given a registry whose co model blends the shipped co (linear) and nox (log1p member)
    # estimators over the same features, 0.7 / 0.3, and whose no2 model has a top-level log1p
    registry = json.loads((MODELS / "registry.json").read_text())
    co = json.loads((MODELS / registry["calibration"]["fleet"]["co"] / "model.json").read_text())
    nox = json.loads((MODELS / registry["calibration"]["fleet"]["nox"] / "model.json").read_text())
    assert co["features"] == nox["features"] and nox["estimator"]["type"] == "blend"
    log_member = nox["estimator"]["members"][0]
    blend = dict(co, estimator={"type": "blend", "members": [
        {"weight": 0.7, "estimator": co["estimator"]}, {**log_member, "weight": 0.3}]})  # fmt: skip
    scaled = co["estimator"] | {
        "coef": [[c / 10 for c in co["estimator"]["coef"][0]]],
        "intercept": [co["estimator"]["intercept"][0] / 10],
    }
    top_log = dict(co, target_transform="log1p", estimator=scaled)  # a tenth of co's, read as log1p(no2)
    for name, model in (("co", blend), ("no2", top_log), ("nox", nox)):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps(model))
        metadata = json.loads((MODELS / registry["calibration"]["fleet"]["co"] / "metadata.json").read_text())
        (folder / "metadata.json").write_text(json.dumps(metadata | {"version": f"{name}-test"}))
    (tmp_path / "registry.json").write_text(
        json.dumps({"version": "test", "calibration": {"fleet": {t: t for t in ("co", "no2", "nox")}}})
    )
    calibrator = load_calibrator(tmp_path)
    models = calibrator.provider.models
    assert all(type(models.fast.get(id(m))) is FoldedFeatureLinear for m in models.fleet.values())
    # When readings are calibrated, Then the generated plan equals the runtime's blend and expm1
    readings = _odd_readings(11, 2000)
    got, _version = calibrator.calibrate_device("d1", [(row, 0) for row in readings])
    assert got == [_plain(calibrator, row) for row in readings]


def _same(a: Any, b: Any) -> bool:
    """Equal to the bit: repr tells 0.0 from -0.0 and shows every digit."""
    return repr(a) == repr(b)


def test_a_batch_calibrated_as_arrays_equals_one_reading_at_a_time(tmp_path: Path) -> None:
    # Given the shipped fleet calibrations plus a device with its own co model, and a batch of
    # 40 devices whose readings have zeros, integers, missing inputs and UCI (alias) names
    registry = json.loads((MODELS / "registry.json").read_text())
    for target, folder in registry["calibration"]["fleet"].items():
        (tmp_path / target).symlink_to(MODELS / folder)
    _linear(tmp_path / "co_d07", "mox_co", 0.002, "co-d07")
    (tmp_path / "registry.json").write_text(json.dumps({"version": "batch", "calibration": {
        "fleet": {t: t for t in registry["calibration"]["fleet"]}, "devices": {"d07": {"co": "co_d07"}}}}))  # fmt: skip
    calibrator = load_calibrator(tmp_path)
    readings = _odd_readings(23, 1200)
    for row in readings[::97]:
        row["PT08.S1(CO)"] = row.pop("mox_co", 1000.0)  # a wire alias: not taken by the array plan
    batch = {
        f"d{k:02d}": [(row, 1000 * i) for i, row in enumerate(readings[k * 30 : (k + 1) * 30])]
        for k in range(40)
    }
    # When the batch is calibrated at once, and each device alone
    calls = []
    plan = calibrator._entry(calibrator.provider.models, "d00")[2]
    assert plan is not None
    original = plan.function
    object.__setattr__(plan, "function", lambda columns: calls.append(len(columns[0])) or original(columns))
    got, version = calibrator.calibrate_batch(batch)
    # Then the fleet's devices went through the array plan together, in one call
    assert len(calls) == 1 and 1000 < calls[0] < 39 * 30
    # And every reading's result equals the per-reading function's, to the bit
    assert version == "batch" and sorted(got) == sorted(batch)
    for device_id, items in batch.items():
        alone, _ = calibrator.calibrate_device(device_id, items)
        assert len(got[device_id]) == len(alone)
        for a, b in zip(got[device_id], alone, strict=True):
            assert list(a) == list(b) and all(_same(a[t], b[t]) for t in a)
    # And d07 has its own co model
    overridden = [(c, r) for (c, _ts), r in zip(batch["d07"], got["d07"], strict=True) if "mox_co" in c]
    assert overridden and all(_same(r["co"], round(0.002 * c["mox_co"], 2)) for c, r in overridden)


def test_a_small_batch_and_the_builtin_baseline_give_the_per_reading_results() -> None:
    # Given the built-in linear baseline (FastLinear models) and batches below and above the size
    # from which arrays are used
    from airlake.calibration import VECTOR_MIN_READINGS

    calibrator = load_calibrator(Path("/nonexistent-models"))
    rng = random.Random(3)
    for size in (1, VECTOR_MIN_READINGS - 1, VECTOR_MIN_READINGS, 500):
        rows = [{"mox_co": rng.choice([0, 900, rng.uniform(500, 2000)]), "mox_nox": rng.uniform(300, 1500),
                 "mox_no2": rng.uniform(800, 2200), "temperature": rng.uniform(-5, 35), "humidity": rng.uniform(10, 90)}
                for _ in range(size)]  # fmt: skip
        for row in rows[::7]:
            del row["mox_nox"]
        # When calibrated as one batch of two devices
        batch = {"a": [(r, 0) for r in rows[: size // 2]], "b": [(r, 0) for r in rows[size // 2 :]]}
        got, _ = calibrator.calibrate_batch(batch)
        # Then it equals each reading calibrated alone, to the bit
        for device_id, items in batch.items():
            expected = [calibrator.calibrate_channels(device_id, c, 0)[0] for c, _ts in items]
            assert [list(r) for r in got[device_id]] == [list(r) for r in expected]
            assert all(_same(r[t], e[t]) for r, e in zip(got[device_id], expected, strict=True) for t in r)


def test_spelled_out_rounding_equals_round_on_ties_near_ties_and_random_values(tmp_path: Path) -> None:
    # Given co = 1 x mox_co (rounded to 2 decimals) and nox = 1 x mox_nox (to 1), clipped to [0, high]
    _linear(tmp_path / "co", "mox_co", 1.0, "co-1")
    _linear(tmp_path / "nox", "mox_nox", 1.0, "nox-1")
    (tmp_path / "registry.json").write_text(
        json.dumps({"version": "r", "calibration": {"fleet": {"co": "co", "nox": "nox"}}})
    )
    calibrator = load_calibrator(tmp_path)
    rng = random.Random(5)
    values = [0.0, -0.0, 0.004, 0.005, 0.015, 0.125, 0.135, 1.005, 2.675, 999.995, 1000.0, 0.05, 0.25, 0.35, 9999.95]  # fmt: skip
    values += [v + d for v in (0.005, 0.015, 2.675, 0.05, 0.35) for d in (1e-12, -1e-12, 1e-17)]
    values += [math.nextafter(v, s) for v in values[:15] for s in (0.0, 1e9)]
    values += [rng.uniform(0, 1000) for _ in range(3000)] + [
        round(rng.uniform(0, 100), 3) for _ in range(3000)
    ]
    rows = [{"mox_co": v, "mox_nox": v * 10} for v in values]
    # When calibrated one by one (scalar code) and as a batch (array code)
    alone, _ = calibrator.calibrate_device("d", [(r, 0) for r in rows])
    batch, _ = calibrator.calibrate_batch({"d": [(r, 0) for r in rows]})
    # Then both give exactly round(clipped value, decimals)
    for row, a, b in zip(rows, alone, batch["d"], strict=True):
        co = round(min(max(0.0 + 1.0 * row["mox_co"], 0.0), 1000.0), 2)  # intercept + slope x
        nox = round(min(max(0.0 + 1.0 * row["mox_nox"], 0.0), 10000.0), 1)
        assert _same(a, {"co": co, "nox": nox}) and _same(b, {"co": co, "nox": nox}), row


def test_the_array_path_takes_maths_logs_when_numpys_differ(monkeypatch: Any) -> None:
    # Given numpy's log and expm1 taken as differing from math's (as on x86-64 with AVX-512)
    from airlake import calibration

    monkeypatch.setattr(calibration._VectorOps, "_numpy_agrees", {"log": False, "expm1": False})
    calibrator = load_calibrator(MODELS)
    readings = _odd_readings(31, 600)
    # When a batch is calibrated as arrays
    got, _ = calibrator.calibrate_batch({"d": [(row, 0) for row in readings]})
    # Then it still equals the per-reading function, to the bit
    alone, _ = calibrator.calibrate_device("d", [(row, 0) for row in readings])
    assert all(
        list(a) == list(b) and all(_same(a[t], b[t]) for t in a) for a, b in zip(got["d"], alone, strict=True)
    )
    # And the probe notices a numpy log one ulp off on a fiftieth of the values
    real_log = np.log

    def off_by_an_ulp(x: Any) -> Any:
        out = real_log(x)
        out[::50] = np.nextafter(out[::50], np.inf)
        return out

    monkeypatch.setattr(calibration._VectorOps, "_numpy_agrees", {})
    monkeypatch.setattr(np, "log", off_by_an_ulp)
    assert calibration._VectorOps._agrees("log") is False
