"""Feature pipeline: causal by construction, identical in training and on the hot path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from airlake.ml.features import compute_matrix, design_features
from airlake.ml.runtime import FeaturePipeline
from tests.ml.conftest import event_frame

HOUR_MS = 3_600_000
T0 = 1_767_571_200_000  # 2026-01-05T00:00:00Z, a Monday


def _temporal_inputs(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    ts = pd.to_datetime(frame["timestamp"], utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    return ts, frame["device_id"].to_numpy()


def test_changing_the_future_never_changes_past_features() -> None:
    # Given a multi-device frame and its temporal feature matrix
    frame = event_frame(devices=2, hours=12)
    columns = ["co2", "pm25", "voc", "temperature", "humidity"]
    specs = design_features(frame, columns, temporal=True)
    ts, groups = _temporal_inputs(frame)
    before = compute_matrix(frame, specs, timestamp_ms=ts, groups=groups)
    # When every reading after a cut-off time is replaced by wild values
    cut = np.sort(ts)[len(ts) // 2]
    future = ts > cut
    changed = frame.copy()
    rng = np.random.default_rng(0)
    for column in columns:
        changed.loc[future, column] = rng.uniform(1, 5000, int(future.sum()))
    after = compute_matrix(changed, specs, timestamp_ms=ts, groups=groups)
    # Then the features of every row at or before the cut-off are bit-for-bit unchanged
    np.testing.assert_array_equal(after[~future], before[~future])
    # (and the change did reach the future rows, so the test can fail)
    assert not np.allclose(np.nan_to_num(after[future]), np.nan_to_num(before[future]))


def test_row_order_in_the_file_does_not_matter_only_event_time_does() -> None:
    # Given the same readings shuffled in the file
    frame = event_frame(devices=2, hours=6)
    specs = design_features(frame, ["co2", "pm25"], temporal=True)
    ts, groups = _temporal_inputs(frame)
    base = compute_matrix(frame, specs, timestamp_ms=ts, groups=groups)
    perm = np.random.default_rng(3).permutation(len(frame))
    shuffled = compute_matrix(
        frame.iloc[perm].reset_index(drop=True), specs, timestamp_ms=ts[perm], groups=groups[perm]
    )
    # Then each row gets the same features wherever it sits
    np.testing.assert_array_equal(shuffled, base[perm])


def test_groups_do_not_share_state() -> None:
    # Given two devices with interleaved readings
    frame = event_frame(devices=2, hours=4)
    specs = [{"op": "ewm", "col": "co2", "halflife_s": 3600}]
    ts, groups = _temporal_inputs(frame)
    both = compute_matrix(frame, specs, timestamp_ms=ts, groups=groups)
    only0 = frame["device_id"] == "dev-0"
    alone = compute_matrix(
        frame[only0].reset_index(drop=True),
        specs,
        timestamp_ms=ts[only0.to_numpy()],
        groups=groups[only0.to_numpy()],
    )
    # Then device 0's features do not depend on device 1's readings
    np.testing.assert_array_equal(both[only0.to_numpy()], alone)


def test_temporal_ops_exact_values() -> None:
    # Given readings at 0 h, 1 h and 3 h (a gap), with a missing value at 1 h for `b`
    pipeline = FeaturePipeline(
        [
            {"op": "rate", "col": "a"},
            {"op": "ewm", "col": "a", "halflife_s": 3600},
            {"op": "ewm_dev", "col": "a", "halflife_s": 3600},
            {"op": "hour_sin"},
            {"op": "weekend"},
            {"op": "ratio", "a": "a", "b": "b"},
            {"op": "log", "col": "b"},
        ]
    )
    state = pipeline.new_state()
    # When they are fed in order
    first = pipeline.transform({"a": 10.0, "b": 2.0}, ts_ms=T0, state=state)
    second = pipeline.transform({"a": 20.0, "b": None}, ts_ms=T0 + HOUR_MS, state=state)
    third = pipeline.transform({"a": 20.0, "b": 0.0}, ts_ms=T0 + 3 * HOUR_MS, state=state)
    # Then: no rate without history; half-life 1 h moves the mean halfway per hour; 3 h in, sin(pi/4)
    assert first == [None, 10.0, 0.0, 0.0, 0.0, 5.0, math.log(2.0)]
    assert second == [10.0, 15.0, 5.0, math.sin(2 * math.pi / 24), 0.0, None, None]
    assert third[0] == 0.0  # (20 - 20) / 2 h
    assert third[1] == pytest.approx(15.0 + 0.75 * 5.0)  # two half-lives: 3/4 of the way
    assert third[3] == pytest.approx(math.sin(2 * math.pi * 3 / 24))
    assert third[5:] == [None, None]  # division by zero and log(0) are missing, not inf


def test_late_row_is_scored_but_does_not_rewind_the_state() -> None:
    pipeline = FeaturePipeline([{"op": "ewm", "col": "a", "halflife_s": 3600}, {"op": "rate", "col": "a"}])
    state = pipeline.new_state()
    pipeline.transform({"a": 10.0}, ts_ms=T0 + HOUR_MS, state=state)
    # When a reading older than the newest arrives
    late = pipeline.transform({"a": 50.0}, ts_ms=T0, state=state)
    # Then it is scored from the current state, which it leaves untouched
    assert late == [10.0, None]
    assert pipeline.transform({"a": 10.0}, ts_ms=T0 + 2 * HOUR_MS, state=state) == [10.0, 0.0]


def test_weekend_flag_follows_utc_calendar() -> None:
    pipeline = FeaturePipeline([{"op": "weekend"}])
    days = [
        pipeline.transform({}, ts_ms=T0 + d * 24 * HOUR_MS, state=pipeline.new_state())[0] for d in range(7)
    ]
    assert days == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]  # Monday .. Sunday


def test_temporal_model_refuses_rows_without_time_or_state() -> None:
    pipeline = FeaturePipeline([{"op": "rate", "col": "a"}])
    with pytest.raises(ValueError, match="pass ts_ms"):
        pipeline.transform({"a": 1.0}, state=pipeline.new_state())
    with pytest.raises(ValueError, match="pass state"):
        pipeline.transform({"a": 1.0}, ts_ms=T0)


def test_design_is_generic_and_only_logs_positive_columns() -> None:
    # Given a CSV with a sensor, an environment channel and a column with negatives
    frame = pd.DataFrame(
        {
            "s1": [100.0, 200.0, 300.0],
            "s2": [5.0, 6.0, 7.0],
            "Temp": [20.0, 21.0, 22.0],
            "offset": [-1.0, 0.0, 1.0],
        }
    )
    specs = design_features(frame, list(frame.columns), temporal=False)
    ops = [(s["op"], s.get("col") or (s["a"], s["b"])) for s in specs]
    # Then logs for positive non-environment columns, one ratio, temperature compensation terms
    assert ops == [
        ("raw", "s1"), ("raw", "s2"), ("raw", "Temp"), ("raw", "offset"),
        ("log", "s1"), ("log", "s2"),
        ("ratio", ("s1", "s2")),
        ("logmul", ("s1", "Temp")), ("logmul", ("s2", "Temp")),
    ]  # fmt: skip
