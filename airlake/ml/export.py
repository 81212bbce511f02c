"""Exact export of fitted scikit-learn estimators into the `model.json` form `runtime.py` evaluates.

Only the families we ship are exported; anything else raises, so an unexportable model can never be
written as an artifact:

* `Pipeline(SimpleImputer, StandardScaler, Ridge | HuberRegressor | LogisticRegression)` -> `linear`
* `HistGradientBoostingRegressor | HistGradientBoostingClassifier` (numeric features) -> `trees`
* `VotingRegressor | VotingClassifier(voting="soft")` over the above -> `blend`
* `train.Log1pTarget` (a regressor fitted to log1p(y)) -> a blend member with `target_transform`
  "log1p" and its `clip`; alone, a blend of that one member (so the model-level `target_transform`
  keeps meaning "the whole output", and row-only linear fast paths never mistake it for plain linear)
* `train.SubWindowEnsemble` (a candidate fitted on all rows and on the recent ones) -> a blend of
  its two fitted parts, weight 1/2 each (each part itself a blend, a log-target member or a model;
  the recent part of a blend is a `train.FittedBlend` whose boosting member is the full part's);
  a candidate without a linear member has no recent fit and exports as its full part
* `train.FittedBlend` (fitted members, fixed weights) -> `blend`
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
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

from airlake.ml.runtime import FORMAT_ID, METADATA_FILE, MODEL_FILE
from airlake.ml.train import FittedBlend, Log1pTarget, SubWindowEnsemble

_MAX = float(np.finfo(np.float64).max)


def _floats(values: Any) -> list[float]:
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def export_estimator(estimator: Any) -> dict[str, Any]:
    """The runtime spec of one fitted estimator (see module docstring for what is supported)."""
    if isinstance(estimator, Pipeline):
        steps = dict(estimator.steps)
        imputer, scaler, model = steps.get("impute"), steps.get("scale"), steps.get("model")
        if not (
            isinstance(imputer, SimpleImputer)
            and isinstance(scaler, StandardScaler)
            and isinstance(model, Ridge | HuberRegressor | LogisticRegression)
        ):
            raise TypeError(f"cannot export pipeline {estimator!r}")
        coef = np.atleast_2d(np.asarray(model.coef_, dtype=np.float64))
        n = coef.shape[1]
        scale = scaler.scale_ if scaler.scale_ is not None else np.ones(n)
        mean = scaler.mean_ if scaler.mean_ is not None else np.zeros(n)
        return {
            "type": "linear",
            "fill": _floats(imputer.statistics_),
            "mean": _floats(mean),
            "scale": _floats(scale),
            "coef": [_floats(row) for row in coef],
            "intercept": _floats(np.atleast_1d(model.intercept_)),
        }
    if isinstance(estimator, HistGradientBoostingRegressor | HistGradientBoostingClassifier):
        if estimator.is_categorical_ is not None and bool(np.any(estimator.is_categorical_)):
            raise TypeError("categorical HGB features are not exportable")
        trees = []
        for iteration in estimator._predictors:
            exported = []
            for predictor in iteration:
                nodes = predictor.nodes
                leaf = nodes["is_leaf"].astype(bool)
                exported.append(
                    {
                        "feature": [int(v) for v in np.where(leaf, 0, nodes["feature_idx"])],
                        # A split of "missing vs present" has threshold +inf; JSON has no inf, and
                        # the largest float compares the same way with every finite value.
                        "threshold": _floats(
                            np.nan_to_num(
                                np.where(leaf, 0.0, nodes["num_threshold"]), posinf=_MAX, neginf=-_MAX
                            )
                        ),
                        "missing_left": [int(v) for v in np.where(leaf, 0, nodes["missing_go_to_left"])],
                        "left": [int(v) for v in np.where(leaf, 0, nodes["left"])],
                        "right": [int(v) for v in np.where(leaf, 0, nodes["right"])],
                        "value": _floats(np.where(leaf, nodes["value"], 0.0)),
                    }
                )
            trees.append(exported)
        return {"type": "trees", "baseline": _floats(estimator._baseline_prediction), "trees": trees}
    if isinstance(estimator, Log1pTarget):
        return {"type": "blend", "members": [_member(estimator, 1.0)]}
    if isinstance(estimator, SubWindowEnsemble):
        if estimator.recent_ is estimator.full_:  # nothing refit on the recent rows (boosting alone)
            return export_estimator(estimator.full_)
        return {"type": "blend", "members": [_member(estimator.full_, 0.5), _member(estimator.recent_, 0.5)]}
    if isinstance(estimator, FittedBlend):
        total = float(sum(estimator.weights))
        return {
            "type": "blend",
            "members": [
                _member(m, float(w) / total)
                for w, m in zip(estimator.weights, estimator.members, strict=True)
            ],
        }
    if isinstance(estimator, VotingRegressor | VotingClassifier):
        if isinstance(estimator, VotingClassifier) and estimator.voting != "soft":
            raise TypeError("only soft voting is exportable")
        members = estimator.estimators_
        weights = estimator.weights if estimator.weights is not None else [1.0] * len(members)
        total = float(sum(weights))
        return {
            "type": "blend",
            "members": [_member(m, float(w) / total) for w, m in zip(weights, members, strict=True)],
        }
    raise TypeError(f"cannot export {type(estimator).__name__}")


def _member(estimator: Any, weight: float) -> dict[str, Any]:
    if isinstance(estimator, Log1pTarget):
        return {
            "weight": weight,
            "estimator": export_estimator(estimator.regressor_),
            "target_transform": "log1p",
            "clip": [float(estimator.clip_[0]), float(estimator.clip_[1])],
        }
    return {"weight": weight, "estimator": export_estimator(estimator)}


def library_versions() -> dict[str, str]:
    import pandas
    import sklearn

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "pandas": pandas.__version__,
    }


def _dumps(doc: Mapping[str, Any]) -> bytes:
    # repr-exact floats, sorted keys: the same model always gives the same bytes.
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def write_artifact(
    directory: Path,
    *,
    kind: str,
    name: str,
    features: Sequence[Mapping[str, Any]],
    estimator_spec: Mapping[str, Any],
    classes: Sequence[str] | None,
    target_transform: str | None,
    metadata: Mapping[str, Any],
) -> str:
    """Write `model.json` and `metadata.json`; returns the version id.

    The version id is `<name>-<first 12 hex of sha256(model.json)>`: identical models get identical
    ids (and bytes), and any change to the model changes the id.
    """
    model_doc = {
        "format": FORMAT_ID,
        "kind": kind,
        "features": [dict(f) for f in features],
        "classes": list(classes) if classes is not None else None,
        "target_transform": target_transform,
        "estimator": dict(estimator_spec),
    }
    model_bytes = _dumps(model_doc)
    version = f"{name}-{hashlib.sha256(model_bytes).hexdigest()[:12]}"
    meta = {
        "format": FORMAT_ID,
        "kind": kind,
        "version": version,
        **metadata,
        "features": [dict(f) for f in features],
        "classes": list(classes) if classes is not None else None,
        "library_versions": library_versions(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MODEL_FILE).write_bytes(model_bytes)
    (directory / METADATA_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return version
