"""Small synthetic fleets for the ML tests: fast, deterministic, with known structure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

START = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday


def event_frame(devices: int = 3, hours: int = 48, seed: int = 1) -> pd.DataFrame:
    """Minute readings per device with labelled episodes: each event lifts its own channels.

    cooking: pm25 and voc up; smoke: pm25 way up; cleaning: voc up; occupancy: co2 up. Episodes
    last 20-60 minutes, so rows come in contiguous runs like real events.
    """
    rng = np.random.default_rng(seed)
    frames = []
    n = hours * 6  # one reading every 10 minutes
    for device in range(devices):
        event = np.array(["none"] * n, dtype=object)
        t = 5
        while t < n - 6:
            kind = rng.choice(["cooking", "smoke", "cleaning", "occupancy"])
            length = int(rng.integers(2, 7))
            event[t : t + length] = kind
            t += length + int(rng.integers(6, 20))
        co2 = 450 + rng.normal(0, 15, n) + np.where(event == "occupancy", 500, 0)
        pm25 = (
            8 + rng.gamma(2, 2, n) + np.where(event == "cooking", 60, 0) + np.where(event == "smoke", 250, 0)
        )
        voc = (
            120
            + rng.normal(0, 10, n)
            + np.where(event == "cooking", 200, 0)
            + np.where(event == "cleaning", 600, 0)
        )
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": [(START + pd.Timedelta(minutes=10 * i)).isoformat() for i in range(n)],
                    "device_id": f"dev-{device}",
                    "co2": co2.round(1),
                    "pm25": pm25.round(2),
                    "voc": voc.round(1),
                    "temperature": (21 + rng.normal(0, 0.5, n)).round(2),
                    "humidity": (40 + rng.normal(0, 3, n)).round(1),
                    "firmware": "1.2.3",
                    "event": event,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def calibration_frame(n: int = 400, seed: int = 2) -> pd.DataFrame:
    """Hourly sensor responses with a power-law, temperature-dependent link to a reference gas."""
    rng = np.random.default_rng(seed)
    gas = np.exp(rng.normal(0.5, 0.6, n))
    temperature = 15 + 10 * np.sin(np.arange(n) / 24 * 2 * np.pi) + rng.normal(0, 1, n)
    humidity = 50 + rng.normal(0, 10, n)
    sensor = 900 * gas**0.45 * (1 + 0.01 * (temperature - 20)) + rng.normal(0, 10, n)
    other = 1200 + 0.3 * sensor + rng.normal(0, 30, n)
    frame = pd.DataFrame(
        {
            "Timestamp": [(START + pd.Timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%S") for i in range(n)],
            "sensor": sensor.round(1),
            "other": other.round(1),
            "T": temperature.round(2),
            "RH": humidity.round(1),
            "site": "lab",
            "ref": gas.round(3),
        }
    )
    frame.loc[rng.random(n) < 0.05, "ref"] = np.nan
    frame.loc[rng.random(n) < 0.03, "other"] = np.nan
    return frame


@pytest.fixture
def events_csv(tmp_path: Path) -> Path:
    path = tmp_path / "events.csv"
    event_frame().to_csv(path, index=False)
    return path


@pytest.fixture
def calibration_csv(tmp_path: Path) -> Path:
    path = tmp_path / "calibration.csv"
    calibration_frame().to_csv(path, index=False)
    return path
