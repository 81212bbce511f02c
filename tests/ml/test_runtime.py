"""The hot-path runtime evaluates exported artifacts exactly like scikit-learn does."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import HuberRegressor, LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from airlake.ml.export import export_estimator, write_artifact
from airlake.ml.runtime import ArtifactError, load_artifact, load_artifact_files
from airlake.ml.train import FittedBlend, Log1pTarget, SubWindowEnsemble, huber_pipeline, recent_rows

FEATURES = [{"op": "raw", "col": "a"}, {"op": "raw", "col": "b"}, {"op": "raw", "col": "c"}]


def _linear(model: Ridge | LogisticRegression) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", model),
        ]
    )


def _data(n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    x = rng.normal(size=(n, 3)) * [1.0, 10.0, 0.1] + [0.0, 50.0, 1.0]
    y = 2.0 * x[:, 0] - 0.3 * x[:, 1] + np.sin(5 * x[:, 2]) + rng.normal(scale=0.1, size=n)
    labels = np.where(x[:, 0] > 0.5, "smoke", np.where(x[:, 1] > 55, "cooking", "none"))
    x[rng.random(size=x.shape) < 0.05] = np.nan  # missing values take the learned path
    return x, y, labels


def _rows(x: np.ndarray) -> list[dict[str, float | None]]:
    return [{k: (None if math.isnan(v) else float(v)) for k, v in zip("abc", r, strict=True)} for r in x]


def _artifact(tmp_path: Path, estimator: object, kind: str, classes: list[str] | None) -> Path:
    write_artifact(
        tmp_path,
        kind=kind,
        name="t",
        features=FEATURES,
        estimator_spec=export_estimator(estimator),
        classes=classes,
        target_transform=None,
        metadata={"target": "y"},
    )
    return tmp_path


REGRESSORS = {
    "ridge": lambda: _linear(Ridge(alpha=1.0)),
    "huber": lambda: _linear(HuberRegressor(alpha=0.5, max_iter=500)),
    "hgb": lambda: HistGradientBoostingRegressor(max_iter=30, random_state=0),
    "blend": lambda: VotingRegressor(
        [("r", _linear(Ridge())), ("g", HistGradientBoostingRegressor(max_iter=20, random_state=0))],
        weights=[0.3, 0.7],
    ),
}
CLASSIFIERS = {
    "logistic": lambda: _linear(LogisticRegression(max_iter=500)),
    "hgb": lambda: HistGradientBoostingClassifier(max_iter=20, random_state=0),
    "blend": lambda: VotingClassifier(
        [
            ("l", _linear(LogisticRegression(max_iter=500))),
            ("g", HistGradientBoostingClassifier(max_iter=10)),
        ],
        voting="soft",
    ),
}


@pytest.mark.parametrize("family", sorted(REGRESSORS))
def test_runtime_regression_equals_sklearn(tmp_path: Path, family: str) -> None:
    # Given a fitted regressor exported as an artifact
    x, y, _ = _data()
    estimator = REGRESSORS[family]().fit(x, y)
    model = load_artifact(_artifact(tmp_path, estimator, "calibration", None))
    # When the runtime scores every row one at a time
    got = np.array([model.predict_one(row) for row in _rows(x)], dtype=float)
    # Then it equals scikit-learn to 1e-6, missing values included
    np.testing.assert_allclose(got, estimator.predict(x), rtol=0, atol=1e-6)
    assert model.kind == "calibration"
    assert model.inputs == ("a", "b", "c")
    assert model.new_state() is None


@pytest.mark.parametrize("family", sorted(CLASSIFIERS))
@pytest.mark.parametrize("n_classes", [2, 3])
def test_runtime_classifier_equals_sklearn(tmp_path: Path, family: str, n_classes: int) -> None:
    # Given a fitted classifier (binary and multiclass) exported as an artifact
    x, _, labels = _data()
    if n_classes == 2:
        labels = np.where(labels == "none", "none", "event")
    estimator = CLASSIFIERS[family]().fit(x, labels)
    classes = [str(c) for c in estimator.classes_]
    model = load_artifact(_artifact(tmp_path, estimator, "classifier", classes))
    rows = _rows(x)
    # When the runtime scores every row
    got = [model.predict_one(row) for row in rows]
    proba = np.array([list(model.predict_proba_one(row).values()) for row in rows])
    # Then labels and probabilities equal scikit-learn's
    assert got == list(estimator.predict(x))
    np.testing.assert_allclose(proba, estimator.predict_proba(x), rtol=0, atol=1e-6)


def test_load_from_files_mapping_equals_directory(tmp_path: Path) -> None:
    # Given an artifact directory and the same files as bytes (how S3 delivers them)
    x, y, _ = _data(50)
    _artifact(tmp_path, _linear(Ridge()).fit(x, y), "calibration", None)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    # When both are loaded
    from_dir, from_files = load_artifact(tmp_path), load_artifact_files(files)
    # Then they are the same model
    assert from_dir.version == from_files.version
    assert from_dir.version.startswith("t-")
    assert from_dir.predict_one({"a": 1, "b": 2, "c": 3}) == from_files.predict_one({"a": 1, "b": 2, "c": 3})


def test_missing_or_foreign_artifact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"no metadata\.json"):
        load_artifact(tmp_path)
    with pytest.raises(ArtifactError, match=r"no model\.json"):
        load_artifact_files({"metadata.json": b"{}"})
    bad = json.dumps({"format": "other/v9"}).encode()
    with pytest.raises(ArtifactError, match=r"unsupported artifact format 'other/v9'"):
        load_artifact_files({"metadata.json": bad, "model.json": bad})


def test_runtime_module_imports_only_the_standard_library() -> None:
    # Given a fresh interpreter, when the runtime is imported, then no heavy library comes with it
    code = (
        "import sys, airlake.ml.runtime; "
        "print(sorted(m for m in ('numpy','pandas','sklearn','scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"


def test_trees_that_split_on_missingness_export_exactly(tmp_path: Path) -> None:
    # Given a feature that is missing exactly when the target is high (a "missing vs present" split,
    # whose threshold scikit-learn stores as +inf)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 3))
    y = rng.normal(size=200)
    x[y > 0.5, 0] = np.nan
    estimator = HistGradientBoostingRegressor(max_iter=10, random_state=0).fit(x, y)
    thresholds = np.concatenate([p.nodes["num_threshold"] for it in estimator._predictors for p in it])
    assert np.isinf(thresholds).any()
    # When exported and evaluated by the runtime, then it equals scikit-learn
    model = load_artifact(_artifact(tmp_path, estimator, "calibration", None))
    got = np.array([model.predict_one(row) for row in _rows(x)], dtype=float)
    np.testing.assert_allclose(got, estimator.predict(x), rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "family", ["log_ridge", "log_blend", "robust_log_blend", "log_huber", "robust_huber_log_blend"]
)
def test_runtime_log_target_members_equal_sklearn(tmp_path: Path, family: str) -> None:
    # Given a skewed non-negative target and models fitted to log1p(y), alone or blended with
    # members on the original scale
    x, y, _ = _data()
    y = np.exp(y / 8.0)
    log_ridge = Log1pTarget(_linear(Ridge(alpha=1.0)))
    log_huber = Log1pTarget(huber_pipeline(np.log1p(y)))  # as train's `huber_log` member
    estimator = {
        "log_ridge": log_ridge,
        "log_blend": VotingRegressor(
            [("log", log_ridge), ("g", HistGradientBoostingRegressor(max_iter=20, random_state=0))]
        ),
        "robust_log_blend": VotingRegressor(
            [
                ("huber", huber_pipeline(y)),
                ("g", HistGradientBoostingRegressor(max_iter=20, random_state=0)),
                ("log", log_ridge),
            ],
            weights=[1 / 3, 1 / 3, 1 / 3],
        ),
        "log_huber": log_huber,
        "robust_huber_log_blend": VotingRegressor(
            [
                ("huber", huber_pipeline(y)),
                ("g", HistGradientBoostingRegressor(max_iter=20, random_state=0)),
                ("log", log_huber),
            ],
            weights=[1 / 3, 1 / 3, 1 / 3],
        ),
    }[family].fit(x, y)
    model = load_artifact(_artifact(tmp_path, estimator, "calibration", None))
    # When the runtime scores the training rows and rows far outside the training range
    far = x.copy()
    far[:50, 0] = 40.0  # drives the log-scale output past its clip, both ways
    far[50:100, 0] = -40.0
    for rows in (x, far):
        got = np.array([model.predict_one(row) for row in _rows(rows)], dtype=float)
        # Then it equals scikit-learn (clip, then expm1) to 1e-6
        np.testing.assert_allclose(got, estimator.predict(rows), rtol=1e-9, atol=1e-6)
    # and the clip holds: no prediction beyond e times the largest training target
    assert np.isfinite(got).all() and got.max() <= np.exp(np.log1p(y.max()) + 1.0)
    # and a lone log-target model is a one-member blend, so model-level `target_transform` stays unset
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["target_transform"] is None and spec["estimator"]["type"] == "blend"


@pytest.mark.parametrize("family", ["huber_log", "robust_huber_log_blend", "hgb"])
def test_runtime_sub_window_ensemble_equals_sklearn(tmp_path: Path, family: str) -> None:
    # Given a family fitted on every row and again on the latest half of the span (train's
    # `+recent` twin: linear members only), with a log-target member, boosting and missing values
    x, y, _ = _data()
    y = np.exp(y / 8.0)
    ts = np.arange(len(y), dtype=np.int64) * 3_600_000
    recent = recent_rows(ts)

    def make(target: np.ndarray) -> object:
        log_huber = Log1pTarget(huber_pipeline(np.log1p(target)))
        if family == "huber_log":
            return log_huber
        if family == "hgb":
            return HistGradientBoostingRegressor(max_iter=20, max_leaf_nodes=7, random_state=0)
        return VotingRegressor(
            [
                ("huber", huber_pipeline(target)),
                ("g", HistGradientBoostingRegressor(max_iter=20, max_leaf_nodes=7, random_state=0)),
                ("log", log_huber),
            ],
            weights=[1 / 3, 1 / 3, 1 / 3],
        )

    estimator = SubWindowEnsemble(make(y), make(y[recent])).fit(x, y, recent=recent)
    full = estimator.full_
    if family == "hgb":
        # (boosting alone has no recent fit: the twin predicts as the full fit)
        assert estimator.recent_ is full
        np.testing.assert_array_equal(estimator.predict(x), full.predict(x))
    else:
        # (the two parts differ: the recent one's linear members saw half the rows)
        assert not np.allclose(full.predict(x), estimator.recent_.predict(x))
    if family == "robust_huber_log_blend":
        # (in the recent part, boosting is the full part's own fit, the linear members are refit,
        # each member keeping its blend weight)
        members = estimator.recent_.members
        assert isinstance(estimator.recent_, FittedBlend) and members[1] is full.estimators_[1]
        assert members[0] is not full.estimators_[0] and members[2] is not full.estimators_[2]
        huber_recent = huber_pipeline(y[recent]).fit(x[recent], y[recent])
        log_recent = Log1pTarget(huber_pipeline(np.log1p(y[recent]))).fit(x[recent], y[recent])
        by_hand = (
            (full.estimators_[0].predict(x) + huber_recent.predict(x)) / 6
            + full.estimators_[1].predict(x) / 3
            + (full.estimators_[2].predict(x) + log_recent.predict(x)) / 6
        )
        np.testing.assert_allclose(estimator.predict(x), by_hand, rtol=1e-9, atol=1e-9)
    model = load_artifact(_artifact(tmp_path, estimator, "calibration", None))
    # When the runtime scores the training rows and rows past the log members' clip
    far = x.copy()
    far[:50, 0] = 40.0
    for rows in (x, far):
        got = np.array([model.predict_one(row) for row in _rows(rows)], dtype=float)
        # Then it equals scikit-learn to 1e-6
        np.testing.assert_allclose(got, estimator.predict(rows), rtol=1e-9, atol=1e-6)
    # and it is a blend of the two parts, half each (boosting alone: its trees), no new estimator
    # kind for the hot path
    spec = json.loads((tmp_path / "model.json").read_text())["estimator"]
    if family == "hgb":
        assert spec["type"] == "trees"
    else:
        assert spec["type"] == "blend" and [m["weight"] for m in spec["members"]] == [0.5, 0.5]
    # and fitting needs the recent-row mask
    with pytest.raises(ValueError, match="recent-row mask"):
        SubWindowEnsemble(make(y), make(y)).fit(x, y)
