"""Training with honest model selection: calibration regressors and event classifiers.

Selection never uses a random split. Rows of sensor data come in contiguous episodes and sensors
drift, so a random split leaks an episode's neighbours into its validation and rewards memorising:

* with a timestamp: forward chaining in event time (train on the earliest blocks, validate on the
  next one), `N_SPLITS` folds;
* with a group but no timestamp: grouped folds (a device or episode is never on both sides);
* with neither: contiguous blocks in file order (the file order is the only structure we know).

Candidates (all exportable exactly to the hot-path runtime):

* calibration: `ridge_raw` (ridge on the raw columns: the baseline), `ridge` (ridge on the
  engineered features), `hgb` (histogram gradient boosting on the engineered features), `blend`
  (equal-weight average of `ridge` and `hgb`; its fold predictions are the average of theirs, so it
  costs no extra fits);
* classifier: `logistic` (multinomial, balanced class weights), `hgb` (balanced class weights),
  `blend` (average probabilities); optionally each winner again with self-training over unlabelled
  rows (`self_training`).

The winner (lowest mean validation RMSE, or highest macro F1) is refit on all training rows; the full
comparison goes into the artifact's metadata.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    VotingClassifier,
    VotingRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
)
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from airlake.ml.data import MIN_TRAINING_ROWS, UsageError

N_SPLITS = 3
CALIBRATION_CANDIDATES: tuple[str, ...] = ("ridge_raw", "ridge", "hgb", "blend")
# One OpenMP thread: training shares small machines (CI, a laptop, 2 vCPUs with other jobs), where
# OpenMP's busy-waiting threads slow gradient boosting down by an order of magnitude; one thread is
# also bit-for-bit reproducible.
TRAINING_THREADS = 1
# Boosting rounds and histogram bins: 150 x 63 keeps a refit on a 4-week hourly window well under a
# second, which walk-forward recalibration needs, at no measurable cost in validation error.
HGB_ITERATIONS = 150
HGB_BINS = 63
# Ridge on the engineered features: dozens of correlated columns from a few weeks of data need more
# shrinkage than the raw baseline (alpha=1); 10 won on the UCI walk-forward for all three targets.
RIDGE_ALPHA = 10.0
# Model selection only needs to rank candidates: each fold trains on at most this many rows (the most
# recent ones: with forward chaining those sit right before the validation block). The winner is
# refit on every row. Keeps ~100k-row inputs well under a minute on a shared 2-vCPU machine.
MAX_FOLD_TRAIN_ROWS = 15_000
SELF_TRAINING_CONFIDENCE = 0.9


def linear_pipeline(model: Ridge | LogisticRegression) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("model", model),
        ]
    )


def hgb_regressor(seed: int) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(
        max_iter=HGB_ITERATIONS,
        max_bins=HGB_BINS,
        learning_rate=0.08,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        early_stopping=False,
        random_state=seed,
    )


def hgb_classifier(seed: int) -> HistGradientBoostingClassifier:
    return HistGradientBoostingClassifier(
        max_iter=HGB_ITERATIONS,
        max_bins=HGB_BINS,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        l2_regularization=1.0,
        class_weight="balanced",
        early_stopping=False,
        random_state=seed,
    )


# --------------------------------------------------------------------------------------------
# Folds and metrics
# --------------------------------------------------------------------------------------------


def make_folds(
    n_rows: int, *, timestamp_ms: np.ndarray | None, groups: np.ndarray | None, n_splits: int = N_SPLITS
) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    """(strategy name, [(train positions, validation positions)]) with no random split anywhere."""
    strategy, folds = _folds(n_rows, timestamp_ms=timestamp_ms, groups=groups, n_splits=n_splits)
    return strategy, [(_cap(train, timestamp_ms), valid) for train, valid in folds]


def _cap(train: np.ndarray, timestamp_ms: np.ndarray | None) -> np.ndarray:
    """At most MAX_FOLD_TRAIN_ROWS training rows: the latest in event time, else the last in file order."""
    if len(train) <= MAX_FOLD_TRAIN_ROWS:
        return train
    if timestamp_ms is None:
        return train[-MAX_FOLD_TRAIN_ROWS:]
    latest = np.argsort(timestamp_ms[train], kind="stable")[-MAX_FOLD_TRAIN_ROWS:]
    return np.sort(train[latest])


def _folds(
    n_rows: int, *, timestamp_ms: np.ndarray | None, groups: np.ndarray | None, n_splits: int
) -> tuple[str, list[tuple[np.ndarray, np.ndarray]]]:
    positions = np.arange(n_rows)
    if timestamp_ms is not None:
        order = np.argsort(timestamp_ms, kind="stable")
        blocks = np.array_split(order, n_splits + 1)
        folds = [(np.sort(np.concatenate(blocks[: k + 1])), np.sort(blocks[k + 1])) for k in range(n_splits)]
        return "forward-chaining in event time", folds
    if groups is not None:
        n_groups = len(set(groups.tolist()))
        if n_groups >= 2:
            splitter = GroupKFold(n_splits=min(n_splits, n_groups))
            return "grouped k-fold", [(tr, va) for tr, va in splitter.split(positions, groups=groups)]
    blocks = np.array_split(positions, n_splits)
    folds = [
        (np.concatenate([b for j, b in enumerate(blocks) if j != k]), blocks[k]) for k in range(n_splits)
    ]
    return "contiguous blocks in file order", folds


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    return {
        "mae": float(mean_absolute_error(y, pred)),
        "rmse": float(math.sqrt(mean_squared_error(y, pred))),
        "r2": float(r2_score(y, pred)) if len(y) > 1 else float("nan"),
        "n": len(y),
    }


def classification_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    with warnings.catch_warnings():
        # A validation block may lack a rare class that the model still predicts: expected, scored as is.
        warnings.simplefilter("ignore", UserWarning)
        balanced = float(balanced_accuracy_score(y, pred))
    return {
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
        "balanced_accuracy": balanced,
        "accuracy": float(accuracy_score(y, pred)),
        "n": len(y),
    }


def _mean(metrics: Sequence[dict[str, float]]) -> dict[str, float]:
    keys = metrics[0].keys()
    return {k: round(float(np.mean([m[k] for m in metrics])), 6) for k in keys if k != "n"} | {
        "n": int(sum(m["n"] for m in metrics))
    }


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


@dataclass
class Fitted:
    """The refit winner: estimator, which feature columns (positions in the full matrix) it uses."""

    name: str
    estimator: Any
    columns: list[int]
    comparison: dict[str, dict[str, float]]
    validation: str


def fit_calibration(
    x: np.ndarray,
    y: np.ndarray,
    *,
    raw_columns: Sequence[int],
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    candidates: Sequence[str] = CALIBRATION_CANDIDATES,
) -> Fitted:
    """Select among the calibration candidates by validation RMSE and refit the winner on all rows."""
    with threadpool_limits(limits=TRAINING_THREADS):
        return _fit_calibration(
            x,
            y,
            raw_columns=raw_columns,
            timestamp_ms=timestamp_ms,
            groups=groups,
            seed=seed,
            candidates=candidates,
        )


def _fit_calibration(
    x: np.ndarray,
    y: np.ndarray,
    *,
    raw_columns: Sequence[int],
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    candidates: Sequence[str],
) -> Fitted:
    if len(y) < MIN_TRAINING_ROWS:
        raise UsageError(f"too few training rows with a target: {len(y)} (need {MIN_TRAINING_ROWS})")
    all_columns = list(range(x.shape[1]))
    makers: dict[str, tuple[list[int], Callable[[], Any]]] = {
        "ridge_raw": (list(raw_columns), lambda: linear_pipeline(Ridge(alpha=1.0))),
        "ridge": (all_columns, lambda: linear_pipeline(Ridge(alpha=RIDGE_ALPHA))),
        "hgb": (all_columns, lambda: hgb_regressor(seed)),
    }
    strategy, folds = make_folds(len(y), timestamp_ms=timestamp_ms, groups=groups)
    if len(candidates) == 1:  # nothing to choose: no validation fits (walk-forward refits use this)
        folds, strategy = [], "none (single candidate)"
    fold_metrics: dict[str, list[dict[str, float]]] = {name: [] for name in candidates}
    for train, valid in folds:
        preds: dict[str, np.ndarray] = {}
        for name in candidates:
            if name == "blend":
                continue
            cols, make = makers[name]
            preds[name] = (
                make()
                .fit(x[np.ix_(train, np.asarray(cols))], y[train])
                .predict(x[np.ix_(valid, np.asarray(cols))])
            )
        if "blend" in candidates:
            preds["blend"] = 0.5 * (preds["ridge"] + preds["hgb"])
        for name, pred in preds.items():
            fold_metrics[name].append(regression_metrics(y[valid], pred))
    comparison = {name: _mean(metrics) for name, metrics in fold_metrics.items() if metrics}
    winner = min(candidates, key=lambda name: (comparison[name]["rmse"], name) if comparison else (0.0, name))
    if winner == "blend":
        columns = all_columns
        estimator: Any = VotingRegressor(
            [("ridge", makers["ridge"][1]()), ("hgb", makers["hgb"][1]())], weights=[0.5, 0.5]
        )
    else:
        columns, make = makers[winner]
        estimator = make()
    estimator.fit(x[:, columns], y)
    return Fitted(winner, estimator, columns, comparison, strategy)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def _classifier(name: str, seed: int) -> Any:
    if name == "logistic":
        return linear_pipeline(LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000))
    if name == "hgb":
        return hgb_classifier(seed)
    return VotingClassifier(
        [("logistic", _classifier("logistic", seed)), ("hgb", hgb_classifier(seed))], voting="soft"
    )


def _self_train(estimator: Any, x: np.ndarray, y: np.ndarray, unlabelled: np.ndarray) -> Any:
    """Self-training: add confident pseudo-labels from the unlabelled rows, refit once.

    One round, confidence >= `SELF_TRAINING_CONFIDENCE`. The labelled rows are counted twice so the
    real labels keep the upper hand over pseudo-labels (same effect as half weight for the pseudo
    rows, and it works for every estimator family). Whether it helps at all is decided by
    validation, not assumed.
    """
    first = clone(estimator).fit(x, y)
    if len(unlabelled) == 0:
        return first
    proba = first.predict_proba(unlabelled)
    confident = proba.max(axis=1) >= SELF_TRAINING_CONFIDENCE
    if not confident.any():
        return first
    pseudo = first.classes_[proba[confident].argmax(axis=1)]
    x_all = np.vstack([x, x, unlabelled[confident]])
    y_all = np.concatenate([y, y, pseudo])
    return clone(estimator).fit(x_all, y_all)


def fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    unlabelled: np.ndarray | None = None,
    candidates: Sequence[str] = ("logistic", "hgb", "blend"),
) -> Fitted:
    """Select by mean validation macro F1 (classes are imbalanced) and refit the winner."""
    with threadpool_limits(limits=TRAINING_THREADS):
        return _fit_classifier(
            x,
            y,
            timestamp_ms=timestamp_ms,
            groups=groups,
            seed=seed,
            unlabelled=unlabelled,
            candidates=candidates,
        )


def _fit_classifier(
    x: np.ndarray,
    y: np.ndarray,
    *,
    timestamp_ms: np.ndarray | None,
    groups: np.ndarray | None,
    seed: int,
    unlabelled: np.ndarray | None,
    candidates: Sequence[str],
) -> Fitted:
    if len(y) < MIN_TRAINING_ROWS:
        raise UsageError(f"too few labelled rows: {len(y)} (need {MIN_TRAINING_ROWS})")
    if len(set(y.tolist())) < 2:
        raise UsageError("the label has a single class; a classifier needs at least two")
    strategy, folds = make_folds(len(y), timestamp_ms=timestamp_ms, groups=groups)
    usable = [(tr, va) for tr, va in folds if len(set(y[tr].tolist())) >= 2]
    fold_metrics: dict[str, list[dict[str, float]]] = {name: [] for name in candidates}
    for train, valid in usable:
        proba: dict[str, np.ndarray] = {}
        classes: dict[str, np.ndarray] = {}
        for name in ("logistic", "hgb"):
            model = _classifier(name, seed).fit(x[train], y[train])
            proba[name], classes[name] = model.predict_proba(x[valid]), model.classes_
        proba["blend"] = 0.5 * (proba["logistic"] + proba["hgb"])
        classes["blend"] = classes["hgb"]
        for name in candidates:
            pred = classes[name][proba[name].argmax(axis=1)]
            fold_metrics[name].append(classification_metrics(y[valid], pred))
    comparison = {name: _mean(m) for name, m in fold_metrics.items() if m}
    if not comparison:
        raise UsageError("every validation fold has a single class in its training part; add labelled rows")
    winner = max(comparison, key=lambda name: (comparison[name]["macro_f1"], name))
    estimator = _classifier(winner, seed)
    if unlabelled is not None and len(unlabelled):
        self_metrics = [
            classification_metrics(y[va], _self_train(estimator, x[tr], y[tr], unlabelled).predict(x[va]))
            for tr, va in usable
        ]
        comparison[f"{winner}+self_training"] = _mean(self_metrics)
        if comparison[f"{winner}+self_training"]["macro_f1"] > comparison[winner]["macro_f1"]:
            return Fitted(
                f"{winner}+self_training",
                _self_train(estimator, x, y, unlabelled),
                list(range(x.shape[1])),
                comparison,
                strategy,
            )
    return Fitted(winner, estimator.fit(x, y), list(range(x.shape[1])), comparison, strategy)
