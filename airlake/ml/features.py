"""Feature design (which features to build) and feature computation (the matrix to train on).

Design is generic, driven by the columns of whatever CSV the user brings:

* every numeric input as is (`raw`);
* `log` of inputs that are strictly positive in the training data: metal-oxide and other chemiresistive
  sensors respond roughly as a power law of concentration, so log-response is close to linear in
  log-concentration;
* `ratio` between pairs of positive sensor channels: cross-sensitivity and common-mode drift (a whole
  array heating up or ageing together) largely cancel in ratios;
* `logmul` of each positive sensor channel with each environment channel (temperature, humidity,
  absolute humidity, recognised by name): the sensitivity of metal oxides to their target gas
  changes with temperature and water vapour, which is a product term, not an additive one;
* with a timestamp (temporal context, per group): time of day and weekend (traffic and occupancy
  follow the clock), rate of change per hour (events start with a steep rise, and a sensor's
  response lags the gas), a 1-hour event-time exponentially weighted volatility (only when the data
  has at least three readings per hour, see `volatility_designed`), and each input's
  value one and two sampling steps ago (`lag`) and its mean over the last three steps
  (`roll_mean`): a metal oxide sensor's response trails the gas it reports, and an hourly
  reference is an average over the hour. The step is the data's median sampling interval, at
  least an hour; and for each positive sensor channel, baseline removal against its own lowest
  reading of the last 24 hours, as a difference (`min_dev`) and as a log ratio (`min_logratio`, the
  usual R/R0 response of a metal oxide): a chemiresistor's clean-air baseline wanders with
  temperature, humidity and age, and the daily minimum tracks it (urban air and rooms return near
  background at least once a day). These are extra features next to the raw readings, not
  replacements. Exponentially weighted baselines (`ewm`, `ewm_dev`) are supported by the runtime
  but not designed in by default: on the UCI walk-forward backtest, 3-hour and 2-day baselines
  replacing the inputs lowered R² for every target.

Computation goes through `airlake.ml.runtime.FeaturePipeline`, the very code the hot path runs,
walking each group in event-time order with a fresh state. So features are identical in training
and in production, and no feature can read a later row: the pipeline only ever sees rows one at a
time, oldest first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from airlake.ml.runtime import FeaturePipeline

FeatureSpec = dict[str, Any]

_ENV_PATTERN = re.compile(r"^(t|rh|ah|temp|temperature|humidity|abs_humidity|.*humid.*|.*temp.*)$", re.I)
_MAX_RATIO_COLUMNS = 6
_MAX_LOGMUL_SENSORS = 8
_MIN_LAG_STEP_S = 3600
# Baseline window of `min_dev` / `min_logratio`: a day (a daily cycle is what brings the air back
# to background), or three sampling steps if those are longer, so the window always holds several.
_BASELINE_WINDOW_S = 86_400
# Volatility (`ewm_std`, half-life an hour) is designed only if the median sampling interval leaves at
# least this many readings per half-life. A variance needs several readings: with hourly data the
# 1-hour half-life halves the running variance at every reading (var <- var / 2 + d**2 / 4, d the
# reading minus the running mean), so it follows the last two or three readings only, a noisy,
# heavy-tailed transform of the `rate` already designed (UCI, hourly: see airlake/ml/README.md).
_VOLATILITY_HALFLIFE_S = 3600
_VOLATILITY_MIN_READINGS = 3


def is_environment(column: str) -> bool:
    """Temperature and humidity channels, whatever a deployment calls them."""
    return bool(_ENV_PATTERN.match(column.strip()))


def design_features(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    temporal: bool,
    engineered: bool = True,
    timestamp_ms: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> list[FeatureSpec]:
    """The feature specs for these input columns, chosen from the training frame only.

    `timestamp_ms` (and `groups`) set the lag step (see `lag_step_seconds`); without them it is an hour.
    """
    specs: list[FeatureSpec] = [{"op": "raw", "col": c} for c in columns]
    if not engineered:
        return specs
    env = [c for c in columns if is_environment(c)]
    positive = []
    for column in columns:
        values = frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
        finite = values[np.isfinite(values)]
        if finite.size and float(finite.min()) > 0.0 and column not in env and np.unique(finite).size > 2:
            positive.append(column)
    specs += [{"op": "log", "col": c} for c in positive]
    ratio_cols = positive[:_MAX_RATIO_COLUMNS]
    specs += [{"op": "ratio", "a": a, "b": b} for i, a in enumerate(ratio_cols) for b in ratio_cols[i + 1 :]]
    specs += [{"op": "logmul", "a": a, "b": e} for a in positive[:_MAX_LOGMUL_SENSORS] for e in env]
    if temporal:
        specs += [{"op": "hour_sin"}, {"op": "hour_cos"}, {"op": "weekend"}]
        volatility = volatility_designed(timestamp_ms, groups)
        for column in columns:
            specs.append({"op": "rate", "col": column})
            if volatility:
                specs.append({"op": "ewm_std", "col": column, "halflife_s": _VOLATILITY_HALFLIFE_S})
        step = lag_step_seconds(timestamp_ms, groups)
        for column in columns:
            specs += [
                {"op": "lag", "col": column, "lag_s": step},
                {"op": "lag", "col": column, "lag_s": 2 * step},
                {"op": "roll_mean", "col": column, "window_s": 3 * step},
            ]
        window = max(_BASELINE_WINDOW_S, 3 * step)
        for column in positive:
            specs += [
                {"op": "min_dev", "col": column, "window_s": window},
                {"op": "min_logratio", "col": column, "window_s": window},
            ]
    return specs


def lag_step_seconds(timestamp_ms: np.ndarray | None, groups: np.ndarray | None = None) -> int:
    """The median interval between consecutive readings of a group, in whole seconds, at least an hour.

    Hourly data lags by 1 h and 2 h; minute data too (an hour is the shortest step worth a feature);
    3-hourly data by 3 h and 6 h, so its lags are not always missing.
    """
    interval = median_interval_seconds(timestamp_ms, groups)
    if interval is None:
        return _MIN_LAG_STEP_S
    return max(_MIN_LAG_STEP_S, round(interval))


def volatility_designed(timestamp_ms: np.ndarray | None, groups: np.ndarray | None = None) -> bool:
    """Whether the 1-hour volatility (`ewm_std`) is worth a feature: at least _VOLATILITY_MIN_READINGS
    readings per half-life at the median sampling interval (10-minute data: yes; hourly: no).
    Without timestamps to tell (a design made for unknown data) it is kept."""
    interval = median_interval_seconds(timestamp_ms, groups)
    return interval is None or interval * _VOLATILITY_MIN_READINGS <= _VOLATILITY_HALFLIFE_S


def median_interval_seconds(
    timestamp_ms: np.ndarray | None, groups: np.ndarray | None = None
) -> float | None:
    """The median positive interval (seconds) between consecutive readings of a group; None if unknown."""
    if timestamp_ms is None or len(timestamp_ms) < 2:
        return None
    ts = np.asarray(timestamp_ms, dtype=np.int64)
    if groups is not None:
        keys = np.asarray([str(g) for g in groups.tolist()])
        order = np.lexsort((ts, keys))
        same = keys[order][1:] == keys[order][:-1]
        gaps = np.diff(ts[order])[same]
    else:
        gaps = np.diff(np.sort(ts))
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return None
    return float(np.median(gaps)) / 1000.0


def feature_name(spec: FeatureSpec) -> str:
    op = spec["op"]
    if op in {"ratio", "logmul"}:
        return f"{op}({spec['a']},{spec['b']})"
    for key in ("halflife_s", "lag_s", "window_s"):
        if key in spec:
            return f"{op}({spec['col']},{int(spec[key])}s)"
    if "col" in spec:
        return f"{op}({spec['col']})"
    return str(op)


def compute_matrix(
    frame: pd.DataFrame,
    specs: Sequence[FeatureSpec],
    *,
    timestamp_ms: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """The feature matrix (rows in the frame's order, NaN for missing) via the hot-path pipeline.

    With temporal specs, `timestamp_ms` (int64 epoch ms per row) is required; rows are fed to one
    state per group in event-time order (ties keep file order), so a row only ever sees rows at or
    before its own event time.
    """
    pipeline = FeaturePipeline(specs)
    inputs = list(pipeline.inputs)
    n = len(frame)
    out = np.full((n, len(pipeline.specs)), np.nan)
    raw = {c: frame[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in inputs}
    # Plain Python rows: the pipeline's per-row cost dominates, so avoid pandas access in the loop.
    columns = [[None if math.isnan(v) else float(v) for v in raw[c].tolist()] for c in inputs]
    rows = (
        [dict(zip(inputs, values, strict=True)) for values in zip(*columns, strict=True)]
        if inputs
        else [{} for _ in range(n)]
    )
    if not pipeline.temporal:
        for i, row in enumerate(rows):
            out[i] = [np.nan if v is None else v for v in pipeline.transform(row)]
        return out
    if timestamp_ms is None:
        raise ValueError("temporal features need timestamps")
    ts = [int(t) for t in timestamp_ms.tolist()]
    group_keys: list[object] = groups.tolist() if groups is not None else [None] * n
    order = sorted(range(n), key=lambda i: (str(group_keys[i]), ts[i], i))
    states: dict[object, Any] = {}
    for i in order:
        key = group_keys[i]
        state = states.get(key)
        if state is None:
            state = states[key] = pipeline.new_state()
        values = pipeline.transform(rows[i], ts_ms=ts[i], state=state)
        out[i] = [np.nan if v is None else v for v in values]
    return out
