"""Derive the comma-separated UCI Air Quality CSV the `ml` commands read.

The vendored original (`data/uci_air_quality/AirQualityUCI.csv`) is semicolon separated with decimal
commas, `-200` for missing, `Date` as DD/MM/YYYY and `Time` as HH.MM.SS, two empty trailing columns
and trailing empty rows. The clean file keeps the original measurement column names, puts an
ISO-8601 `Timestamp` first (the station's local clock, written without an offset, as in the source;
the `ml` commands read offset-less timestamps as UTC, which keeps the hour of day local) and leaves
missing values empty.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

ORIGINAL = Path("data/uci_air_quality/AirQualityUCI.csv")
CLEAN = Path("data/uci_air_quality/AirQualityUCI_clean.csv")

# Raw UCI column -> wire channel / calibrated output name, used for the fleet artifacts.
WIRE_NAMES: dict[str, str] = {
    "PT08.S1(CO)": "mox_co",
    "PT08.S2(NMHC)": "mox_nmhc",
    "PT08.S3(NOx)": "mox_nox",
    "PT08.S4(NO2)": "mox_no2",
    "PT08.S5(O3)": "mox_o3",
    "T": "temperature",
    "RH": "humidity",
    "AH": "abs_humidity",
    "CO(GT)": "co",
    "NOx(GT)": "nox",
    "NO2(GT)": "no2",
}
SENSOR_COLUMNS: tuple[str, ...] = (
    "PT08.S1(CO)",
    "PT08.S2(NMHC)",
    "PT08.S3(NOx)",
    "PT08.S4(NO2)",
    "PT08.S5(O3)",
    "T",
    "RH",
    "AH",
)


def clean_uci(original: Path = ORIGINAL) -> pd.DataFrame:
    """The original table with a `Timestamp` column, NaN for -200, no empty rows or columns."""
    from airlake.uci import load_uci

    frame = load_uci(original).reset_index()
    frame.insert(0, "Timestamp", frame.pop("timestamp").dt.strftime("%Y-%m-%dT%H:%M:%S"))
    return frame


def write_clean(original: Path = ORIGINAL, destination: Path = CLEAN) -> int:
    frame = clean_uci(original)
    destination.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(destination, index=False, float_format="%.10g", lineterminator="\n")
    return len(frame)
