"""The `ml` commands end to end on small synthetic CSVs: artifacts, predictions, errors, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airlake.cli import main
from airlake.ml import export, pipeline, train
from airlake.ml.runtime import load_artifact
from tests.ml.conftest import calibration_frame, event_frame


@pytest.fixture(autouse=True)
def _small_boosting(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fewer boosting rounds: the tests check behaviour, the benchmark checks the real settings."""
    monkeypatch.setattr(train, "HGB_ITERATIONS", 15)


def test_train_calibration_predict_round_trip(calibration_csv: Path, tmp_path: Path) -> None:
    # Given a CSV with a reference column, a text column and missing values
    model_dir, out = tmp_path / "model", tmp_path / "pred.csv"
    # When a calibration is trained (row-only) and applied with predict
    assert (
        main(
            [
                "ml",
                "train-calibration",
                "--input",
                str(calibration_csv),
                "--target",
                "ref",
                "--model-out",
                str(model_dir),
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "ml",
                "predict",
                "--model",
                str(model_dir),
                "--input",
                str(calibration_csv),
                "--output",
                str(out),
            ]
        )
        == 0
    )
    # Then the output is the input, same order, plus a prediction equal to the runtime's
    source, scored = pd.read_csv(calibration_csv), pd.read_csv(out)
    assert list(scored.columns) == [*source.columns, "prediction"]
    pd.testing.assert_frame_equal(scored[source.columns], source)
    model = load_artifact(model_dir)
    expected = [model.predict_one(row) for row in source.to_dict("records")]
    np.testing.assert_allclose(scored["prediction"], expected, rtol=1e-12)
    # and the metadata records the inputs (text column excluded), the comparison and the validation
    meta = model.metadata
    assert meta["inputs"] == ["sensor", "other", "T", "RH"]
    assert meta["input_report"]["excluded_columns"] == {"Timestamp": "not numeric", "site": "not numeric"}
    assert set(meta["model_comparison"]) == set(train.CALIBRATION_CANDIDATES)
    assert meta["validation"]["strategy"] == "contiguous blocks in file order"
    assert meta["target"] == "ref"
    assert meta["screened_out_rows"] == 0  # no timestamp, no day screening
    # and the winner is the candidate with the lowest validation RMSE
    comparison = meta["model_comparison"]
    assert meta["model"] == min(comparison, key=lambda name: comparison[name]["rmse"])
    assert meta["validation"]["metrics"] == comparison[meta["model"]]


def test_training_is_deterministic(calibration_csv: Path, tmp_path: Path) -> None:
    # Given the same CSV and seed, when trained twice with temporal features
    versions = [
        pipeline.train_calibration(
            calibration_csv, target="ref", model_out=tmp_path / f"m{i}", timestamp="Timestamp", seed=7
        )
        for i in range(2)
    ]
    # Then the model bytes and the version id are identical
    assert versions[0] == versions[1]
    assert (tmp_path / "m0" / "model.json").read_bytes() == (tmp_path / "m1" / "model.json").read_bytes()


@pytest.mark.parametrize("family", ["blend", "robust_log_blend", "robust_huber_log_blend"])
def test_temporal_hot_path_equals_sklearn_on_the_training_stream(
    calibration_csv: Path, tmp_path: Path, family: str
) -> None:
    # Given a temporal calibration artifact (lags, rolling means and baseline removal included)
    pipeline.train_calibration(
        calibration_csv, target="ref", model_out=tmp_path / "m", timestamp="Timestamp", candidates=(family,)
    )
    model = load_artifact(tmp_path / "m")
    assert model.temporal
    frame = pd.read_csv(calibration_csv)
    # When the hot path scores the readings one by one in event time, with one state
    state = model.new_state()
    ts = pd.to_datetime(frame["Timestamp"], utc=True).astype("datetime64[ms, UTC]").astype("int64")
    hot = [
        model.predict_one(row, ts_ms=int(t), state=state)
        for row, t in zip(frame.to_dict("records"), ts, strict=True)
    ]
    # Then it equals the batch `predict` command
    pipeline.predict(tmp_path / "m", calibration_csv, tmp_path / "p.csv")
    np.testing.assert_allclose(hot, pd.read_csv(tmp_path / "p.csv")["prediction"], rtol=0, atol=1e-6)
    # and the model is the requested family on lagged, rolling and baseline-removed inputs
    assert model.metadata["model"] == family
    assert {"lag", "roll_mean", "min_dev", "min_logratio"} <= {spec["op"] for spec in model.pipeline.specs}


def test_log_target_candidates_only_for_non_negative_targets() -> None:
    # Given targets with a negative value
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = x @ [1.0, 2.0, -1.0] + rng.normal(scale=0.1, size=200)
    assert y.min() < 0
    # When every candidate is offered, then none fitted to log1p(y) is compared
    fitted = train.fit_calibration(x, y, raw_columns=[0, 1, 2], timestamp_ms=None, groups=None, seed=1)
    assert not {"ridge_log", "huber_log", "robust_log_blend", "robust_huber_log_blend"} & set(
        fitted.comparison
    )
    assert {"huber", "robust_blend"} <= set(fitted.comparison)
    # and asking for a log-target family alone fits its plain counterpart (screened or not)
    for family, plain in (
        ("robust_log_blend", "robust_blend"),
        ("robust_huber_log_blend", "robust_blend"),
        ("huber_log", "huber"),
        ("robust_huber_log_blend+screened", "robust_blend+screened"),
    ):
        alone = train.fit_calibration(
            x, y, raw_columns=[0, 1, 2], timestamp_ms=None, groups=None, seed=1, candidates=(family,)
        )
        assert alone.name == plain


def _corrupted_reference(
    days: int = 21, seed: int = 5
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hourly sensor rows (x), reference (y), event time (ms) and the mask of two days on which the
    reference reads far too high whatever the sensors say (a failing analyser), in the first week."""
    frame = calibration_frame(n=24 * days, seed=seed)
    ts = pd.to_datetime(frame["Timestamp"], utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    x = frame[["sensor", "other", "T", "RH"]].to_numpy(dtype=float)
    y = frame["ref"].to_numpy(dtype=float)
    keep = np.isfinite(y)
    x, y, ts = x[keep], y[keep], ts[keep]
    day = (ts - ts.min()) // 86_400_000
    bad = (day == 2) | (day == 4)
    y = np.where(bad, y + 4.0, y)
    return x, y, ts, bad


def test_day_screening_drops_days_whose_reference_disagrees_with_the_sensors() -> None:
    # Given three weeks of hourly rows where the reference fails on two days, and a row on a failing
    # day with a missing input
    x, y, ts, bad = _corrupted_reference()
    x[np.flatnonzero(bad)[0], 1] = np.nan
    complete = np.isfinite(x).all(axis=1)
    # When the training rows are screened
    keep = train.screen_days(x, y, timestamp_ms=ts, groups=None, raw_columns=[0, 1, 2, 3])
    # Then the failing days' complete rows are left out, the row missing an input is kept, and the
    # other days are all kept
    assert not keep[bad & complete].any()
    assert keep[bad & ~complete].all()
    assert keep[~bad].all()
    # and days are per group: the same calendar days of another device are kept
    groups = np.array(["a"] * len(y))
    both = train.screen_days(
        np.vstack([x, x]),
        np.concatenate([y, np.where(bad, y - 4.0, y)]),
        timestamp_ms=np.concatenate([ts, ts]),
        groups=np.concatenate([groups, np.array(["b"] * len(y))]),
        raw_columns=[0, 1, 2, 3],
    )
    assert not both[: len(y)][bad & complete].any() and both[len(y) :].all()
    # and nothing is screened without a timestamp, or with fewer than a week of days to compare
    assert train.screen_days(x, y, timestamp_ms=None, groups=None, raw_columns=[0, 1, 2, 3]).all()
    short = ts < ts.min() + 6 * 86_400_000
    assert train.screen_days(
        x[short], y[short], timestamp_ms=ts[short], groups=None, raw_columns=[0, 1]
    ).all()


def test_screened_twin_is_validated_and_refit_without_the_failing_days() -> None:
    # Given training rows with two failing reference days
    x, y, ts, bad = _corrupted_reference()
    # When a calibration is selected with forward-chaining validation
    fitted = train.fit_calibration(x, y, raw_columns=[0, 1, 2, 3], timestamp_ms=ts, groups=None, seed=3)
    # Then the winner's screened twin is compared on the same folds, and here it wins: the failing
    # days sit in every fold's training part, and leaving them out helps on the clean validation days
    comparison = fitted.comparison
    plain = [name for name in comparison if name in train.CALIBRATION_CANDIDATES]
    assert set(plain) == set(train.CALIBRATION_CANDIDATES)
    best_plain = min(plain, key=lambda name: (comparison[name]["rmse"], name))
    # (after its sub-window twin, kept only if lower: see the next test)
    recent = best_plain + train.RECENT
    chosen = recent if comparison[recent]["rmse"] < comparison[best_plain]["rmse"] else best_plain
    assert set(comparison) - set(plain) == {recent, chosen + train.SCREENED}
    assert fitted.name == chosen + train.SCREENED
    assert comparison[fitted.name]["rmse"] < comparison[chosen]["rmse"]
    # and the refit leaves out exactly the failing days' rows (those with every input present)
    assert fitted.screened_out == int((bad & np.isfinite(x).all(axis=1)).sum()) > 40
    # and without a timestamp there is no day to screen: no twin
    untimed = train.fit_calibration(x, y, raw_columns=[0, 1, 2, 3], timestamp_ms=None, groups=None, seed=3)
    assert not any(name.endswith(train.SCREENED) for name in untimed.comparison)
    assert not any(train.RECENT in name for name in untimed.comparison)
    assert untimed.screened_out == 0


def three_weeks_hourly() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inputs, reference and event times (ms) of three weeks of hourly rows with a reference."""
    frame = calibration_frame(n=24 * 21, seed=5)
    ts = pd.to_datetime(frame["Timestamp"], utc=True).astype("datetime64[ms, UTC]").astype("int64").to_numpy()
    x = frame[["sensor", "other", "T", "RH"]].to_numpy(dtype=float)
    y = frame["ref"].to_numpy(dtype=float)
    keep = np.isfinite(y)
    return x[keep], y[keep], ts[keep]


def test_sub_window_twin_fits_each_member_on_all_rows_and_on_the_recent_half(tmp_path: Path) -> None:
    # Given three weeks of hourly rows whose sensor baseline drifts steadily (nothing in the inputs
    # tells how far: the latest days describe the next ones best)
    x, y, ts = three_weeks_hourly()
    age = (ts - ts.min()) / (ts.max() - ts.min())
    x[:, 0] = x[:, 0] + 1.5 * np.nanstd(x[:, 0]) * age
    # When a calibration is selected with forward-chaining validation
    fitted = train.fit_calibration(x, y, raw_columns=[0, 1, 2, 3], timestamp_ms=ts, groups=None, seed=3)
    comparison = fitted.comparison
    plain = [name for name in comparison if name in train.CALIBRATION_CANDIDATES]
    best_plain = min(plain, key=lambda name: (comparison[name]["rmse"], name))
    # Then the winner's sub-window twin was validated on the same folds, and here it wins
    twin = best_plain + train.RECENT
    assert comparison[twin]["rmse"] < comparison[best_plain]["rmse"]
    assert train.split_candidate(fitted.name)[:2] == (best_plain, True)
    # and the refit averages the family fitted on every row and on the latest half of the span
    estimator = fitted.estimator
    assert isinstance(estimator, train.SubWindowEnsemble)
    recent = train.recent_rows(ts)
    assert 0.4 * len(y) < recent.sum() < 0.6 * len(y) and recent[np.argmax(ts)] and not recent[np.argmin(ts)]
    if not train.split_candidate(fitted.name)[2]:
        full = train.calibration_estimator(best_plain, y, 3).fit(x, y)
        latest = train.calibration_estimator(best_plain, y[recent], 3).fit(x[recent], y[recent])
        np.testing.assert_allclose(
            estimator.predict(x), 0.5 * full.predict(x) + 0.5 * latest.predict(x), rtol=1e-9, atol=1e-9
        )
    # and its artifact scores like scikit-learn (a blend of the two parts for the runtime)
    model_dir = tmp_path / "recent"
    export.write_artifact(
        model_dir,
        kind="calibration",
        name="recent",
        features=[{"op": "raw", "col": c} for c in ("sensor", "other", "T", "RH")],
        estimator_spec=export.export_estimator(estimator),
        classes=None,
        target_transform=None,
        metadata={"target": "ref"},
    )
    model = load_artifact(model_dir)
    hot = [model.predict_features([None if np.isnan(v) else float(v) for v in row]) for row in x]
    np.testing.assert_allclose(np.asarray(hot, dtype=float), estimator.predict(x), rtol=0, atol=1e-6)
    # and it is deterministic with the seed
    again = train.fit_calibration(x, y, raw_columns=[0, 1, 2, 3], timestamp_ms=ts, groups=None, seed=3)
    assert again.name == fitted.name
    np.testing.assert_array_equal(again.estimator.predict(x), estimator.predict(x))
    # and a twin is parsed back into (base, recent, screened), also by the log-target fallback
    assert train.split_candidate("robust_blend+recent+screened") == ("robust_blend", True, True)
    assert (
        train.fallback_candidate("robust_huber_log_blend+recent+screened") == "robust_blend+recent+screened"
    )
    # and the mask falls back to every row when the recent part is too small to fit
    assert train.recent_rows(np.array([0, 1, 2, 3, 10**9])).all()


def test_sub_window_twin_of_a_blend_refits_only_its_linear_members() -> None:
    # Given three weeks of hourly rows and a blend of Huber and boosting walked forward as its
    # `+recent` twin (a single candidate: no selection, as in a walk-forward refit)
    x, y, ts = three_weeks_hourly()
    fitted = train.fit_calibration(
        x,
        y,
        raw_columns=[0, 1, 2, 3],
        timestamp_ms=ts,
        groups=None,
        seed=3,
        candidates=("robust_blend+recent",),
    )
    estimator = fitted.estimator
    assert fitted.name == "robust_blend+recent" and isinstance(estimator, train.SubWindowEnsemble)
    # Then Huber is fitted on every row and on the recent half, boosting on every row only, and
    # each member keeps half the blend's weight
    recent = train.recent_rows(ts)
    full_huber, full_hgb = estimator.full_.estimators_
    recent_huber, recent_hgb = estimator.recent_.members
    assert recent_hgb is full_hgb
    by_hand = train.huber_pipeline(y[recent]).fit(x[recent], y[recent])
    np.testing.assert_allclose(recent_huber.predict(x), by_hand.predict(x), rtol=1e-9, atol=1e-9)
    expected = 0.25 * full_huber.predict(x) + 0.25 * by_hand.predict(x) + 0.5 * full_hgb.predict(x)
    np.testing.assert_allclose(estimator.predict(x), expected, rtol=1e-9, atol=1e-9)
    # and boosting alone as a `+recent` twin is boosting on every row
    alone = train.fit_calibration(
        x, y, raw_columns=[0, 1, 2, 3], timestamp_ms=ts, groups=None, seed=3, candidates=("hgb+recent",)
    ).estimator
    plain = train.hgb_regressor(3, len(y)).fit(x, y)
    np.testing.assert_array_equal(alone.predict(x), plain.predict(x))
    # and the validation of the twin scores it as the refit predicts (same folds, same form)
    selected = train.fit_calibration(
        x,
        y,
        raw_columns=[0, 1, 2, 3],
        timestamp_ms=ts,
        groups=None,
        seed=3,
        candidates=("robust_blend", "hgb"),
    )
    assert "robust_blend+recent" in selected.comparison
    _, folds = train.make_folds(len(y), timestamp_ms=ts, groups=None)
    rmses = []
    for tr, va in folds:
        twin = train.SubWindowEnsemble(
            train.calibration_estimator("robust_blend", y[tr], 3),
            train.calibration_estimator("robust_blend", y[tr][train.recent_rows(ts[tr])], 3),
        ).fit(x[tr], y[tr], recent=train.recent_rows(ts[tr]))
        rmses.append(train.regression_metrics(y[va], twin.predict(x[va]))["rmse"])
    assert selected.comparison["robust_blend+recent"]["rmse"] == pytest.approx(
        float(np.mean(rmses)), abs=2e-6
    )
    assert set(train.CALIBRATION_MEMBERS) - train.RECENT_REFIT_MEMBERS == {"hgb"}


def test_classifier_on_episodes_with_time_and_group(events_csv: Path, tmp_path: Path) -> None:
    # Given labelled multi-device episodes
    model_dir = tmp_path / "clf"
    # When a temporal classifier is trained per device and applied
    assert (
        main(
            [
                "ml",
                "train-classifier",
                "--input",
                str(events_csv),
                "--label",
                "event",
                "--timestamp",
                "timestamp",
                "--group",
                "device_id",
                "--model-out",
                str(model_dir),
            ]
        )
        == 0
    )
    model = load_artifact(model_dir)
    # Then it knows every class, validated forward in time, and beats the majority-class baseline
    assert model.classes == ("cleaning", "cooking", "none", "occupancy", "smoke")
    assert model.metadata["validation"]["strategy"] == "forward-chaining in event time"
    assert model.metadata["validation"]["metrics"]["macro_f1"] > 0.6
    out = tmp_path / "pred.csv"
    assert (
        main(["ml", "predict", "--model", str(model_dir), "--input", str(events_csv), "--output", str(out)])
        == 0
    )
    scored = pd.read_csv(out)
    accuracy = float((scored["prediction"] == scored["event"]).mean())
    assert accuracy > float((scored["event"] == "none").mean())
    # and the hot path, fed one device in event-time order with its own state, gives the same labels
    device = scored[scored["device_id"] == "dev-1"]
    state = model.new_state()
    ts = pd.to_datetime(device["timestamp"], utc=True).astype("datetime64[ms, UTC]").astype("int64")
    hot = [model.predict_one(row, ts_ms=int(t), state=state)
           for row, t in zip(device.to_dict("records"), ts, strict=True)]  # fmt: skip
    assert hot == device["prediction"].tolist()


def test_self_training_is_validated_and_recorded(tmp_path: Path) -> None:
    # Given few labels (most rows blank) and an unlabelled CSV
    frame = event_frame(devices=2, hours=24, seed=5)
    rng = np.random.default_rng(0)
    frame.loc[rng.random(len(frame)) < 0.7, "event"] = None
    labelled, unlabelled = tmp_path / "l.csv", tmp_path / "u.csv"
    frame.to_csv(labelled, index=False)
    event_frame(devices=1, hours=24, seed=6).drop(columns=["event"]).to_csv(unlabelled, index=False)
    # When trained with --unlabelled
    pipeline.train_classifier(labelled, label="event", model_out=tmp_path / "m", unlabelled_csv=unlabelled)
    meta = load_artifact(tmp_path / "m").metadata
    # Then the self-training variant was compared, and the unlabelled pool counted
    assert any(name.endswith("+self_training") for name in meta["model_comparison"])
    assert meta["unlabelled_rows"] == int(frame["event"].isna().sum()) + 144
    assert meta["input_report"]["dropped"] == {
        "no label 'event' (used as unlabelled)": int(frame["event"].isna().sum())
    }


def test_report_prints_metadata(
    calibration_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pipeline.train_calibration(calibration_csv, target="ref", model_out=tmp_path / "m", features=["sensor"])
    capsys.readouterr()
    assert main(["ml", "report", "--model", str(tmp_path / "m")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["inputs"] == ["sensor"]
    assert printed["format"] == "airlake.model/v1"
    assert printed["version"] == load_artifact(tmp_path / "m").version


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--target", "nope"], "target column 'nope' not in the CSV"),
        (["--target", "ref", "--features", "site"], "feature column 'site' has no numeric values"),
        (["--target", "ref", "--features", "missing"], "feature column 'missing' not in the CSV"),
        (["--target", "ref", "--timestamp", "when"], "timestamp column 'when' not in the CSV"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    calibration_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code = main(
        [
            "ml",
            "train-calibration",
            "--input",
            str(calibration_csv),
            "--model-out",
            str(tmp_path / "m"),
            *argv,
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert message in err[-1]
    assert not (tmp_path / "m").exists()


def test_no_numeric_features_and_too_few_rows_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = tmp_path / "text.csv"
    pd.DataFrame({"name": ["a", "b"] * 20, "ref": np.arange(40.0)}).to_csv(text, index=False)
    few = tmp_path / "few.csv"
    pd.DataFrame({"x": np.arange(10.0), "ref": np.arange(10.0)}).to_csv(few, index=False)
    assert (
        main(
            [
                "ml",
                "train-calibration",
                "--input",
                str(text),
                "--target",
                "ref",
                "--model-out",
                str(tmp_path / "a"),
            ]
        )
        == 2
    )
    assert "no numeric feature columns" in capsys.readouterr().err
    assert (
        main(
            [
                "ml",
                "train-calibration",
                "--input",
                str(few),
                "--target",
                "ref",
                "--model-out",
                str(tmp_path / "b"),
            ]
        )
        == 2
    )
    assert "too few training rows with a target: 10 (need 20)" in capsys.readouterr().err
    assert (
        main(
            [
                "ml",
                "train-classifier",
                "--input",
                str(few),
                "--label",
                "nope",
                "--model-out",
                str(tmp_path / "c"),
            ]
        )
        == 2
    )
    assert "label column 'nope' not in the CSV" in capsys.readouterr().err


def test_na_values_and_constant_columns(tmp_path: Path) -> None:
    # Given -200 as a missing marker, a constant column and an empty column
    frame = calibration_frame(n=120)
    frame.loc[::7, "sensor"] = -200
    frame["constant"] = 3.0
    frame["empty"] = np.nan
    path = tmp_path / "na.csv"
    frame.to_csv(path, index=False)
    pipeline.train_calibration(path, target="ref", model_out=tmp_path / "m", na_values=["-200"])
    meta = load_artifact(tmp_path / "m").metadata
    # Then -200 is missing (not a reading), the empty column is excluded and reported, training works
    assert meta["input_report"]["excluded_columns"]["empty"] == "empty"
    assert "constant" in meta["inputs"]
    model = load_artifact(tmp_path / "m")
    assert isinstance(
        model.predict_one({"sensor": None, "other": 1500.0, "T": 20.0, "RH": 50.0, "constant": 3.0}), float
    )


def test_folds_never_train_on_the_future_or_split_a_group() -> None:
    ts = np.array([5, 1, 4, 2, 3, 8, 7, 6]) * 1000
    _, folds = train.make_folds(len(ts), timestamp_ms=ts, groups=None)
    for tr, va in folds:
        assert ts[tr].max() < ts[va].min()
    groups = np.array(["a", "a", "b", "b", "c", "c", "d", "d"])
    _, folds = train.make_folds(len(groups), timestamp_ms=None, groups=groups)
    for tr, va in folds:
        assert not set(groups[tr]) & set(groups[va])


def test_backtest_walk_forward_never_uses_future_targets(calibration_csv: Path, tmp_path: Path) -> None:
    # Given a backtest over 400 hourly rows, 5-day windows, 2-day steps
    def run(path: Path, out: Path) -> dict[str, object]:
        return pipeline.backtest_calibration(
            path,
            target="ref",
            timestamp="Timestamp",
            window="5D",
            step="2D",
            start="2026-01-11",
            predictions_out=out,
        )

    first = run(calibration_csv, tmp_path / "a.csv")
    # When every target value from 2026-01-15 on is replaced by garbage
    frame = pd.read_csv(calibration_csv)
    frame.loc[(frame["Timestamp"] >= "2026-01-15") & frame["ref"].notna(), "ref"] = 999.0
    changed_csv = tmp_path / "changed.csv"
    frame.to_csv(changed_csv, index=False)
    run(changed_csv, tmp_path / "b.csv")
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    # Then every prediction before that time is identical (steps start 11th, 13th: both end by the 15th)
    early = a["timestamp"] < "2026-01-15"
    assert early.sum() > 40
    pd.testing.assert_series_equal(a.loc[early, "prediction"], b.loc[early, "prediction"])
    assert len(a) == len(b)
    assert not np.allclose(a.loc[~early, "prediction"].to_numpy(), b.loc[~early, "prediction"].to_numpy())
    # and the report has both models' metrics on the same rows, all after --start
    assert list(a.columns) == ["timestamp", "prediction", "actual", "static_prediction"]
    assert a["timestamp"].min() >= "2026-01-11"
    assert first["walk_forward"]["n"] == first["static"]["n"] == len(a)
    assert set(first["walk_forward"]) == {"mae", "rmse", "r2", "n"}
    # and the pre-start replay scored the winning family's day-screened twin too
    selection = first["walk_forward_family_selection"]
    assert isinstance(selection, dict)
    assert sum(name.endswith(train.SCREENED) for name in selection) == 1
    # and the winner's sub-window twin (fitted on the whole window and on its latest half)
    assert sum(name.endswith(train.RECENT) for name in selection) == 1
    assert isinstance(first["walk_forward_screened_out_rows"], int)
