"""Feature pipeline: causal by construction, identical in training and on the hot path."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from airlake.ml.features import (
    compute_matrix,
    design_features,
    lag_step_seconds,
    median_interval_seconds,
    volatility_designed,
)
from airlake.ml.runtime import ArtifactError, FeaturePipeline
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
    ts, groups = _temporal_inputs(frame)
    specs = design_features(frame, columns, temporal=True, timestamp_ms=ts, groups=groups)
    # (every kind of temporal feature, lags and rolling means included)
    assert {s["op"] for s in specs} >= {
        "rate",
        "ewm_std",
        "lag",
        "roll_mean",
        "hour_sin",
        "weekend",
        "min_dev",
        "min_logratio",
    }
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


def test_lag_and_rolling_mean_exact_values() -> None:
    # Given hourly readings with a missing value at 2 h and a gap at 5 h
    pipeline = FeaturePipeline(
        [
            {"op": "lag", "col": "a", "lag_s": 3600},
            {"op": "lag", "col": "a", "lag_s": 7200},
            {"op": "roll_mean", "col": "a", "window_s": 10800},
        ]
    )
    state = pipeline.new_state()
    readings = [(0, 1.0), (1, 2.0), (2, None), (3, 4.0), (4, 5.0), (6, 7.0)]
    # When they are fed in order
    got = [pipeline.transform({"a": v}, ts_ms=T0 + h * HOUR_MS, state=state) for h, v in readings]
    # Then a lag is the reading that long ago (missing if that reading is missing: never an older
    # one), and the rolling mean averages the present readings in (t - 3 h, t], the current included
    assert got == [
        [None, None, 1.0],
        [1.0, None, 1.5],
        [2.0, 1.0, 1.5],
        [None, 2.0, 3.0],
        [4.0, None, 4.5],
        [None, 5.0, 6.0],
    ]
    # and a late reading (5 h, after 6 h) is scored from the current state, which it leaves untouched
    assert pipeline.transform({"a": 100.0}, ts_ms=T0 + 5 * HOUR_MS, state=state) == [5.0, None, 5.0]
    assert pipeline.transform({"a": 8.0}, ts_ms=T0 + 7 * HOUR_MS, state=state) == [7.0, None, 7.5]


def test_baseline_removal_exact_values() -> None:
    # Given hourly readings with a missing value at 2 h and a gap at 6 h, and a 3-hour baseline window
    pipeline = FeaturePipeline(
        [
            {"op": "min_dev", "col": "a", "window_s": 10800},
            {"op": "min_logratio", "col": "a", "window_s": 10800},
        ]
    )
    state = pipeline.new_state()
    readings = [(0, 4.0), (1, 2.0), (2, None), (3, 3.0), (4, 5.0), (5, 6.0), (7, 9.0)]
    # When they are fed in order
    got = [pipeline.transform({"a": v}, ts_ms=T0 + h * HOUR_MS, state=state) for h, v in readings]
    # Then each reading is compared with the lowest present reading in (t - 3 h, t], itself included
    assert got == [
        [0.0, 0.0],
        [0.0, 0.0],
        [None, None],  # no reading, no feature
        [1.0, math.log(3.0 / 2.0)],  # the 2.0 at 1 h is still in the window
        [2.0, math.log(5.0 / 3.0)],  # ... and now out of it (1 h is not after 4 h - 3 h)
        [3.0, math.log(6.0 / 3.0)],
        [3.0, math.log(9.0 / 6.0)],  # after the gap: only 6.0 (5 h) and 9.0 are left
    ]
    # and a late reading (6 h, after 7 h) is compared with the lowest queued reading in its own window,
    # and leaves the state untouched
    assert pipeline.transform({"a": 10.0}, ts_ms=T0 + 6 * HOUR_MS, state=state) == [4.0, math.log(10.0 / 6.0)]
    assert pipeline.transform({"a": 8.0}, ts_ms=T0 + 8 * HOUR_MS, state=state) == [0.0, 0.0]  # 6.0 expired
    # and a reading at or below zero has no log ratio (a missing feature, not an error)
    zero = FeaturePipeline([{"op": "min_logratio", "col": "a", "window_s": 3600}])
    assert zero.transform({"a": 0.0}, ts_ms=T0, state=zero.new_state()) == [None]


def test_baseline_removal_matches_a_brute_force_window_minimum() -> None:
    # Given irregular readings with missing values and repeated timestamps
    rng = np.random.default_rng(4)
    ts = T0 + np.sort(rng.integers(0, 72, 400)) * HOUR_MS // 2
    values = rng.lognormal(3.0, 0.5, 400)
    values[rng.random(400) < 0.1] = np.nan
    frame = pd.DataFrame({"a": values})
    specs = [{"op": "min_dev", "col": "a", "window_s": 86400}]
    got = compute_matrix(frame, specs, timestamp_ms=ts)[:, 0]
    # Then the monotonic queue gives exactly the minimum over (t - 24 h, t] of the rows fed so far
    for i in range(400):
        if math.isnan(values[i]):
            assert math.isnan(got[i])
            continue
        seen = values[: i + 1][(ts[: i + 1] > ts[i] - 86_400_000) & ~np.isnan(values[: i + 1])]
        assert got[i] == values[i] - seen.min()


def test_lags_tolerate_jitter_but_not_stale_readings() -> None:
    pipeline = FeaturePipeline([{"op": "lag", "col": "a", "lag_s": 3600}])
    state = pipeline.new_state()
    pipeline.transform({"a": 1.0}, ts_ms=T0, state=state)
    # 61 minutes later: the reading 61 minutes ago stands for "an hour ago"
    assert pipeline.transform({"a": 2.0}, ts_ms=T0 + 61 * 60_000, state=state) == [1.0]
    # 2 h 30 min after the first and 89 minutes after the second: the second
    assert pipeline.transform({"a": 3.0}, ts_ms=T0 + 150 * 60_000, state=state) == [2.0]
    # after a 4-hour gap, an hour ago there was nothing: missing, not the 4-hour-old value
    assert pipeline.transform({"a": 4.0}, ts_ms=T0 + 390 * 60_000, state=state) == [None]


@pytest.mark.parametrize(
    "spec",
    [
        {"op": "lag", "col": "a", "lag_s": 0},
        {"op": "lag", "col": "a", "lag_s": -3600},
        {"op": "lag", "col": "a", "lag_s": float("nan")},
        {"op": "lag", "col": "a", "lag_s": float("inf")},
        {"op": "lag", "col": "a", "lag_s": True},
        {"op": "lag", "col": "a"},
        {"op": "roll_mean", "col": "a", "window_s": 0},
        {"op": "roll_mean", "col": "a", "window_s": -10800},
        {"op": "min_dev", "col": "a", "window_s": 0},
        {"op": "min_dev", "col": "a", "window_s": -86400},
        {"op": "min_dev", "col": "a", "window_s": float("inf")},
        {"op": "min_logratio", "col": "a", "window_s": float("nan")},
        {"op": "min_logratio", "col": "a"},
    ],
)
def test_a_feature_that_would_read_the_future_cannot_be_expressed(spec: dict[str, object]) -> None:
    # A zero or negative lag or window would read the current or a later row: refused at load
    with pytest.raises(ArtifactError, match=r"positive (lag_s|window_s)|finite (lag_s|window_s)"):
        FeaturePipeline([spec])


def test_lag_step_follows_the_sampling_interval() -> None:
    hourly = T0 + np.arange(10) * HOUR_MS
    assert lag_step_seconds(hourly) == 3600
    assert lag_step_seconds(T0 + np.arange(10) * 600_000) == 3600  # 10-minute data: still an hour
    assert lag_step_seconds(T0 + np.arange(10) * 3 * HOUR_MS) == 3 * 3600
    assert lag_step_seconds(None) == 3600
    # two devices reading every 3 h, interleaved: the interval is per device, not 1.5 h
    both = np.concatenate([T0 + np.arange(5) * 3 * HOUR_MS, T0 + HOUR_MS + np.arange(5) * 3 * HOUR_MS])
    assert lag_step_seconds(both, np.array(["a"] * 5 + ["b"] * 5)) == 3 * 3600


def test_volatility_is_designed_only_with_several_readings_per_hour() -> None:
    # Given the same two columns sampled every 10, 20, 30 and 60 minutes
    frame = pd.DataFrame({"co2": np.linspace(400.0, 900.0, 40), "pm25": np.linspace(5.0, 50.0, 40)})

    def volatility(minutes: int) -> list[dict[str, object]]:
        ts = T0 + np.arange(len(frame)) * minutes * 60_000
        specs = design_features(frame, ["co2", "pm25"], temporal=True, timestamp_ms=ts)
        return [s for s in specs if s["op"] == "ewm_std"]

    # Then the 1-hour volatility of every input is designed with at least three readings an hour
    expected = [{"op": "ewm_std", "col": c, "halflife_s": 3600} for c in ("co2", "pm25")]
    assert volatility(10) == expected and volatility(20) == expected
    # and not with fewer (a 1-hour variance of one or two readings is a noisy copy of the rate)
    assert volatility(30) == [] and volatility(60) == []
    # while the rest of the temporal design does not change with it
    ts = T0 + np.arange(len(frame)) * HOUR_MS
    hourly = design_features(frame, ["co2", "pm25"], temporal=True, timestamp_ms=ts)
    assert {s["op"] for s in hourly} >= {"rate", "lag", "roll_mean", "min_dev", "min_logratio", "hour_sin"}
    # and without timestamps to tell, it is kept
    assert volatility_designed(None) and {"ewm_std"} <= {
        s["op"] for s in design_features(frame, ["co2"], temporal=True)
    }
    # and the interval is per group: two devices reading every 10 min, interleaved, are 10-minute data
    both = np.concatenate([T0 + np.arange(6) * 600_000, T0 + 300_000 + np.arange(6) * 600_000])
    groups = np.array(["a"] * 6 + ["b"] * 6)
    assert median_interval_seconds(both, groups) == 600.0 and median_interval_seconds(both) == 300.0
    assert volatility_designed(T0 + np.arange(6) * HOUR_MS, None) is False
    assert median_interval_seconds(np.array([T0, T0])) is None


def test_temporal_design_lags_every_input_and_observe_keeps_their_history() -> None:
    # Given the temporal design of a multi-device frame
    frame = event_frame(devices=1, hours=6)
    ts, _ = _temporal_inputs(frame)
    specs = design_features(frame, ["co2", "pm25"], temporal=True, timestamp_ms=ts)
    # Then each input has lags of one and two sampling steps and a three-step mean
    assert [s for s in specs if s["op"] in {"lag", "roll_mean"}] == [
        {"op": "lag", "col": "co2", "lag_s": 3600},
        {"op": "lag", "col": "co2", "lag_s": 7200},
        {"op": "roll_mean", "col": "co2", "window_s": 10800},
        {"op": "lag", "col": "pm25", "lag_s": 3600},
        {"op": "lag", "col": "pm25", "lag_s": 7200},
        {"op": "roll_mean", "col": "pm25", "window_s": 10800},
    ]
    # and each positive sensor input is compared with its lowest reading of the last day
    assert [s for s in specs if s["op"] in {"min_dev", "min_logratio"}] == [
        {"op": "min_dev", "col": "co2", "window_s": 86400},
        {"op": "min_logratio", "col": "co2", "window_s": 86400},
        {"op": "min_dev", "col": "pm25", "window_s": 86400},
        {"op": "min_logratio", "col": "pm25", "window_s": 86400},
    ]
    # (not temperature or humidity, nor anything without a timestamp)
    with_env = design_features(frame, ["co2", "temperature"], temporal=True, timestamp_ms=ts)
    assert {s["col"] for s in with_env if s["op"] == "min_dev"} == {"co2"}
    assert not {"min_dev", "min_logratio"} & {
        s["op"] for s in design_features(frame, ["co2"], temporal=False)
    }
    # and a state advanced by `observe` gives the same features as one advanced by `transform`
    pipeline = FeaturePipeline(specs)
    fed, observed = pipeline.new_state(), pipeline.new_state()
    rows = frame.to_dict("records")
    for row, t in zip(rows[:-1], ts[:-1].tolist(), strict=True):
        pipeline.transform(row, ts_ms=t, state=fed)
        pipeline.observe(row, ts_ms=t, state=observed)
    last = pipeline.transform(rows[-1], ts_ms=int(ts[-1]), state=fed)
    assert pipeline.transform(rows[-1], ts_ms=int(ts[-1]), state=observed) == last
    assert all(v is not None for v in last)
