"""ML benchmark: training time on ~100k rows, and hot-path scoring cost per reading.

1. Generates a 100,000-row hourly calibration CSV (10 devices x 10,000 hours; three metal-oxide
   responses with a power-law, temperature-dependent link to a reference gas, slow drift, 3% missing)
   and times `airlake ml train-calibration` end to end (read, feature design and computation, model
   selection over every calibration candidate with three forward-chaining folds, the winner's
   sub-window and day-screened twins where they apply (up to 20,000 training rows, so not here),
   refit, export), with and without temporal features. Baseline in the same run: a plain ridge regression fit on the raw
   columns of the same rows (no features, no selection). Target: under 60 s.
2. Times `LoadedModel.predict_one` per reading for the shipped fleet NOx model (gradient-boosted
   trees evaluated in pure Python) against the same model's scikit-learn `predict` per row.

Prints one JSON line per figure: {"bench", "value", "unit", "baseline", "ratio"}.
Usage: python benchmarks/bench_ml.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
import pandas as pd


def synthetic(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    devices = 10
    per = rows // devices
    frames = []
    for device in range(devices):
        hours = np.arange(per)
        gas = np.exp(rng.normal(0.5, 0.6, per) + 0.4 * np.sin(2 * np.pi * hours / 24))
        temperature = 15 + 8 * np.sin(2 * np.pi * hours / (24 * 365)) + rng.normal(0, 1, per)
        drift = 1 + 0.3 * hours / per
        frame = pd.DataFrame(
            {
                "timestamp": pd.date_range("2025-01-01", periods=per, freq="h", tz="UTC").strftime(
                    "%Y-%m-%dT%H:%M:%SZ"
                ),
                "device_id": f"dev-{device:02d}",
                "s1": 900 * gas**0.45 * drift * (1 + 0.01 * (temperature - 20)) + rng.normal(0, 10, per),
                "s2": 1200 * gas**0.3 + rng.normal(0, 20, per),
                "s3": 700 / gas**0.2 + rng.normal(0, 15, per),
                "temperature": temperature,
                "humidity": 50 + rng.normal(0, 10, per),
                "ref": gas,
            }
        )
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    mask = rng.random(out.shape) < 0.03
    mask[:, :2] = False
    return out.mask(mask)


def emit(bench: str, value: float, unit: str, baseline: float) -> None:
    print(
        json.dumps(
            {
                "bench": bench,
                "value": round(value, 4),
                "unit": unit,
                "baseline": round(baseline, 4),
                "ratio": round(value / baseline, 4) if baseline else None,
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()

    from sklearn.linear_model import Ridge

    from airlake.ml import pipeline
    from airlake.ml.runtime import load_artifact
    from airlake.ml.train import linear_pipeline

    with tempfile.TemporaryDirectory() as scratch:
        csv_path = Path(scratch) / "train.csv"
        frame = synthetic(args.rows)
        frame.to_csv(csv_path, index=False)
        rows = frame["ref"].notna().to_numpy()
        raw = frame[["s1", "s2", "s3", "temperature", "humidity"]].to_numpy()[rows]
        started = time.perf_counter()
        linear_pipeline(Ridge()).fit(raw, frame["ref"].to_numpy()[rows])
        baseline = time.perf_counter() - started
        for name, temporal in (("row_only", False), ("temporal", True)):
            started = time.perf_counter()
            pipeline.train_calibration(
                csv_path,
                target="ref",
                model_out=Path(scratch) / name,
                features=["s1", "s2", "s3", "temperature", "humidity"],
                timestamp="timestamp" if temporal else None,
                group="device_id" if temporal else None,
            )
            emit(
                f"ml_train_calibration_{name}_{args.rows}_rows", time.perf_counter() - started, "s", baseline
            )

    registry = json.loads(Path("models/registry.json").read_text())
    model_dir = Path("models") / registry["calibration"]["fleet"]["nox"]
    model = load_artifact(model_dir)
    clean = pd.read_csv("data/uci_air_quality/AirQualityUCI_clean.csv").head(500)
    wire = {
        "PT08.S1(CO)": "mox_co", "PT08.S2(NMHC)": "mox_nmhc", "PT08.S3(NOx)": "mox_nox",
        "PT08.S4(NO2)": "mox_no2", "PT08.S5(O3)": "mox_o3", "T": "temperature", "RH": "humidity",
        "AH": "abs_humidity",
    }  # fmt: skip
    readings = clean.rename(columns=wire)[list(model.inputs)].dropna().to_dict("records")
    started = time.perf_counter()
    for row in readings:
        model.predict_one(row)
    per_row = (time.perf_counter() - started) / len(readings)
    # Baseline: what the hot path would pay with scikit-learn, one reading per call.
    from airlake.ml.features import compute_matrix

    matrix = compute_matrix(pd.DataFrame(readings), list(model.pipeline.specs))
    from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: F401  (import cost not timed)

    estimator = _refit_like(model, matrix)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # one thread, like the runtime (OpenMP spin-up per call is worse)
        started = time.perf_counter()
        for i in range(len(matrix)):
            estimator.predict(matrix[i : i + 1])
        sk_per_row = (time.perf_counter() - started) / len(matrix)
    emit("ml_hot_path_predict_one_per_reading", per_row * 1e6, "us", sk_per_row * 1e6)
    return 0


def _refit_like(model: object, matrix: np.ndarray) -> object:
    """A scikit-learn regressor of the same size as the shipped model, for the per-call baseline."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    from airlake.ml.train import HGB_BINS, HGB_ITERATIONS

    target = np.nan_to_num(matrix[:, 0])
    return HistGradientBoostingRegressor(max_iter=HGB_ITERATIONS, max_bins=HGB_BINS).fit(
        np.nan_to_num(matrix), target
    )


if __name__ == "__main__":
    raise SystemExit(main())
