"""Calibration: the documented baseline, per-device overrides, and refresh on a new pointer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from airlake.calibration import BUILTIN_LINEAR, BUILTIN_VERSION, OUTPUT_DECIMALS, load_calibrator

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
