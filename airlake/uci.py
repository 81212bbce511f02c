"""The vendored UCI Air Quality dataset (De Vito et al., 2008): loading and channel names.

The file ships in `data/uci_air_quality/` (see SOURCE.md there for provenance and the licence
caveat). It is hourly, semicolon-separated with decimal commas, and marks missing values -200.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    import pandas as pd

UCI_CSV: Final = Path(__file__).resolve().parent.parent / "data" / "uci_air_quality" / "AirQualityUCI.csv"
MISSING: Final = -200

# UCI column -> Airlake wire channel. PT08.* are the low-cost metal-oxide sensor responses;
# (GT) columns are the co-located reference analyser's hourly concentrations.
CHANNELS: Final[dict[str, str]] = {
    "PT08.S1(CO)": "mox_co",
    "PT08.S2(NMHC)": "mox_nmhc",
    "PT08.S3(NOx)": "mox_nox",
    "PT08.S4(NO2)": "mox_no2",
    "PT08.S5(O3)": "mox_o3",
    "T": "temperature",
    "RH": "humidity",
    "AH": "abs_humidity",
    "CO(GT)": "ref_co",
    "NOx(GT)": "ref_nox",
    "NO2(GT)": "ref_no2",
    "C6H6(GT)": "ref_c6h6",
}


def load_uci(path: Path = UCI_CSV) -> pd.DataFrame:
    """The hourly table indexed by its naive local timestamp, original column names, NaN for -200."""
    import numpy as np
    import pandas as pd

    frame = pd.read_csv(path, sep=";", decimal=",").dropna(how="all", axis=1).dropna(how="all")
    frame.index = pd.to_datetime(frame["Date"] + " " + frame["Time"], format="%d/%m/%Y %H.%M.%S")
    frame.index.name = "timestamp"
    frame = frame.drop(columns=["Date", "Time"]).astype("float64")
    return frame.replace(float(MISSING), np.nan)


def load_uci_channels(path: Path = UCI_CSV) -> pd.DataFrame:
    """The same table with Airlake channel names (NMHC(GT) is dropped: 90% missing)."""
    return load_uci(path)[list(CHANNELS)].rename(columns=CHANNELS)
