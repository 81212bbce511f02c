"""The derived UCI CSV and the shipped fleet artifacts the hot path loads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from airlake.ml.runtime import load_artifact
from airlake.ml.uci import CLEAN, clean_uci

ORIGINAL_SAMPLE = (
    "Date;Time;CO(GT);PT08.S1(CO);NMHC(GT);C6H6(GT);PT08.S2(NMHC);NOx(GT);PT08.S3(NOx);NO2(GT);"
    "PT08.S4(NO2);PT08.S5(O3);T;RH;AH;;\n"
    "10/03/2004;18.00.00;2,6;1360;150;11,9;1046;166;1056;113;1692;1268;13,6;48,9;0,7578;;\n"
    "10/03/2004;19.00.00;-200;1292;112;9,4;955;103;1174;92;1559;972;13,3;47,7;0,7255;;\n"
    ";;;;;;;;;;;;;;;;\n"
)


def test_clean_uci_parses_decimal_commas_missing_and_time(tmp_path: Path) -> None:
    # Given an excerpt in the original format (with a -200 and a trailing empty row)
    original = tmp_path / "orig.csv"
    original.write_text(ORIGINAL_SAMPLE)
    # When it is cleaned
    frame = clean_uci(original)
    # Then: ISO timestamps first, original names, dot decimals, -200 missing, empty row gone
    assert list(frame.columns[:3]) == ["Timestamp", "CO(GT)", "PT08.S1(CO)"]
    assert frame["Timestamp"].tolist() == ["2004-03-10T18:00:00", "2004-03-10T19:00:00"]
    assert frame["CO(GT)"].iloc[0] == 2.6
    assert math.isnan(frame["CO(GT)"].iloc[1])
    assert frame["AH"].tolist() == [0.7578, 0.7255]


def test_shipped_clean_csv_matches_the_derivation() -> None:
    shipped = pd.read_csv(CLEAN)
    derived = clean_uci()
    assert len(shipped) == 9357
    pd.testing.assert_frame_equal(shipped, derived, check_dtype=False)


def test_registry_points_at_loadable_fleet_models_with_wire_inputs() -> None:
    # Given the shipped registry
    root = Path("models")
    registry = json.loads((root / "registry.json").read_text())
    assert set(registry["calibration"]["fleet"]) == {"co", "nox", "no2"}
    assert registry["calibration"]["devices"] == {}
    reading = {
        "mox_co": 1360.0,
        "mox_nmhc": 1046.0,
        "mox_nox": 1056.0,
        "mox_no2": 1692.0,
        "mox_o3": 1268.0,
        "temperature": 13.6,
        "humidity": 48.9,
        "abs_humidity": 0.7578,
    }
    truth = {"co": 2.6, "nox": 166.0, "no2": 113.0}  # the reference analyser at that hour
    for target, relative in registry["calibration"]["fleet"].items():
        model = load_artifact(root / relative)
        # Then each is a row-only calibration over wire channel names, versioned by its directory
        assert model.kind == "calibration"
        assert not model.temporal
        assert set(model.inputs) == set(reading)
        assert model.metadata["target"] == target
        assert relative.endswith(model.version)
        value = model.predict_one(reading)
        assert isinstance(value, float)
        assert abs(value - truth[target]) < 0.5 * truth[target]
    if registry["classifier"] is not None:
        classifier = load_artifact(root / registry["classifier"])
        assert classifier.kind == "classifier"
        assert "none" in classifier.classes
